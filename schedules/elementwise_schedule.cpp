#include "elementwise_schedule.h"

#include <string>

namespace bitquant {

using namespace Halide;

Schedule checked_schedule(const Schedule &s, const Target &target) {
    const bool gpu = target.has_gpu_feature();
    const struct {
        const char *name;
        int value;
        bool needed;
    } params[] = {
        {"vector_multiple", s.vector_multiple, !gpu},
        {"parallel_min", s.parallel_min + 1, !gpu},
        {"tasks", s.tasks, !gpu},
        {"min_chunk", s.min_chunk, !gpu},
        {"unroll", s.unroll, true},
        {"block_size", s.block_size, gpu},
        {"reduction_blocks", s.reduction_blocks, gpu},
    };
    for (const auto &p : params) {
        if (p.needed && p.value <= 0) {
            throw CompileError(std::string("schedule parameter ") + p.name + " is missing or not positive for target " +
                               target.to_string() + ": the build passes every parameter from schedules/<target>.sched");
        }
    }
    return s;
}

namespace {

int vector_width(const Schedule &s, const Target &target) {
    return target.natural_vector_size<float>() * s.vector_multiple;
}

// `unroll` consecutive vectors per iteration of `vectors`, each guarded at the tail.
void unroll_vectors(Stage stage, const Var &vectors, const Schedule &s) {
    if (s.unroll == 1) return;
    Var vo("vo"), vi("vi");
    stage.split(vectors, vo, vi, s.unroll, TailStrategy::GuardWithIf).unroll(vi);
}

void schedule_cpu(Stage stage, const Var &i, const Expr &n, const Schedule &s, const Target &target) {
    const int width = vector_width(s, target);
    // The chunk comes from n at run time (a fixed chunk larger than n runs the whole guarded chunk), and
    // is a whole number of vectors: splitting into vectors first keeps every vector but the last one
    // unpredicated (a chunk of elements would make Halide mask every load and store in it).
    Expr chunk_vectors = max((n / s.tasks + width - 1) / width, std::max(s.min_chunk / width, 1));
    Var vectors("vectors"), lane("lane"), io("io"), ii("ii");
    Stage parallel = stage.specialize(n >= s.parallel_min);
    parallel.split(i, vectors, lane, width, TailStrategy::GuardWithIf)
        .split(vectors, io, ii, chunk_vectors, TailStrategy::GuardWithIf)
        .parallel(io)
        .vectorize(lane);
    unroll_vectors(parallel, ii, s);
    stage.split(i, vectors, lane, width, TailStrategy::GuardWithIf).vectorize(lane);
    unroll_vectors(stage, vectors, s);
}

// A block covers block_size * unroll elements; thread t takes elements t, t + block_size, ... of it, so
// that each of the `unroll` steps is one coalesced access by the whole block.
void schedule_gpu(Stage stage, const Var &i, const Schedule &s) {
    Var block("block"), rest("rest"), step("step"), thread("thread");
    stage.split(i, block, rest, s.block_size * s.unroll, TailStrategy::GuardWithIf)
        .split(rest, step, thread, s.block_size, TailStrategy::GuardWithIf)
        .reorder(step, thread, block)
        .gpu_blocks(block)
        .gpu_threads(thread);
    if (s.unroll > 1) stage.unroll(step);
}

void schedule_one(Stage stage, const Var &i, const Expr &n, const Schedule &s, const Target &target) {
    if (target.has_gpu_feature()) {
        schedule_gpu(stage, i, s);
    } else {
        schedule_cpu(stage, i, n, s, target);
    }
}

} // namespace

void schedule_elementwise(Func out, const Var &i, const Expr &n, const std::vector<Expr> &specializations,
                          const Schedule &s, const Target &target) {
    for (const Expr &condition : specializations) {
        schedule_one(out.specialize(condition), i, n, s, target);
    }
    schedule_one(out, i, n, s, target);
}

namespace {

// Words in blocks of chunk_words, the elements per task of an elementwise kernel; a word is computed inside
// its block. From parallel_min elements up, the blocks run in parallel: blocks of rows where there are
// enough rows, else the blocks of words of each row.
void schedule_packed_cpu(Stage stage, const PackedStages &p, const Expr &words, const Expr &rows, const Schedule &s,
                         const Var &wo, const Var &wi) {
    Expr elements = words * rows * 32;
    Expr chunk_words = max(words * rows / s.tasks + 1, std::max(s.min_chunk / 32, 1));
    Var ro("ro"), ri("ri");
    Stage parallel_rows = stage.specialize(elements >= s.parallel_min && rows >= s.tasks);
    parallel_rows.split(p.w, wo, wi, chunk_words, TailStrategy::GuardWithIf)
        .split(p.r, ro, ri, max(chunk_words / max(words, 1), 1), TailStrategy::GuardWithIf)
        .parallel(ro);
    Stage parallel_words = stage.specialize(elements >= s.parallel_min);
    parallel_words.split(p.w, wo, wi, chunk_words, TailStrategy::GuardWithIf).parallel(wo);
    stage.split(p.w, wo, wi, chunk_words, TailStrategy::GuardWithIf);
}

// Halide stores a Func of bools as bytes and reads a word's 32 of them back one at a time,
// reinterpret<uint32>(concat_vectors(uint1(bits[0]), ..., uint1(bits[31]))), which LLVM does not fold back
// into the compare that wrote them. Read as one vector, reinterpret<uint32>(uint1x32(bits[ramp(0, 1, 32)])),
// the word is that compare's mask: AVX-512 stores it from a mask register (kmovd), AVX2 and SSE4.1 take it
// with pmovmskb, NEON narrows it and adds across lanes. Casting the lanes after the shuffle instead of before
// is exact, whatever the shuffle.
class ReadBoolsAsVector : public Internal::IRMutator {
    using IRMutator::visit;
    Expr visit(const Internal::Reinterpret *op) override {
        const auto *shuffle = op->value.as<Internal::Shuffle>();
        if (!shuffle || !op->value.type().is_bool()) return IRMutator::visit(op);
        std::vector<Expr> stored;
        for (const Expr &lane : shuffle->vectors) {
            const auto *cast = lane.as<Internal::Cast>();
            if (!cast) return IRMutator::visit(op);
            stored.push_back(cast->value);
        }
        Expr vector = Internal::simplify(Internal::Shuffle::make(stored, shuffle->indices));
        return Internal::Reinterpret::make(op->type, Internal::Cast::make(op->value.type(), vector));
    }
};

// The words of a packed output, computed at loop `at` of out: on CPUs the 32 bools of a word one vector, read
// back as one (ReadBoolsAsVector, added to the pipeline); on GPUs each thread's bits are inlined.
void schedule_words(const PackedStages &p, const Var &at, const Target &target, Pipeline pipeline) {
    if (target.has_gpu_feature()) return;
    Func bits = p.bits; // a handle: scheduling it schedules the stage
    bits.compute_at(p.out, at).vectorize(p.c, 32);
    pipeline.add_custom_lowering_pass(new ReadBoolsAsVector);
}

} // namespace

void schedule_packed(const PackedStages &p, const Expr &words, const Expr &rows, const std::vector<Expr> &specializations,
                     const Schedule &s, const Target &target, Pipeline pipeline) {
    Func y = p.out;
    if (target.has_gpu_feature()) {
        Var block("block"), thread("thread");
        y.split(p.w, block, thread, s.block_size, TailStrategy::GuardWithIf).gpu_blocks(block, p.r).gpu_threads(thread);
        return;
    }
    Var wo("wo"), wi("wi");
    schedule_words(p, wi, target, pipeline);
    for (const Expr &condition : specializations) {
        schedule_packed_cpu(y.specialize(condition), p, words, rows, s, wo, wi);
    }
    schedule_packed_cpu(y, p, words, rows, s, wo, wi);
}

void autoschedule_elementwise(Func out, const Var &i, const Expr &n, const std::string &name, int parallelism,
                              const Schedule &s, const Target &target) {
    // The autoscheduler runs here, inside generate(), so that its result can be wrapped: Halide's own
    // autoscheduler= parameter would run it after generate() and leave short lengths failing.
    Internal::Definition definition = out.function().definition();
    Internal::StageSchedule pristine = definition.schedule().get_copy();
    Pipeline(out).apply_autoscheduler(target,
                                      AutoschedulerParams(name, {{"parallelism", std::to_string(parallelism)}}));
    int needed = 1;
    for (const Internal::Split &split : definition.schedule().splits()) {
        if (split.split_type != Internal::Split::SplitVar || split.old_var != i.name()) continue;
        auto factor = Internal::as_const_int(split.factor);
        needed = std::max<int>(needed, factor ? (int)*factor : 1 << 30);
    }
    out.specialize(n >= needed); // a copy of the autoschedule as it is now
    definition.schedule() = pristine;
    schedule_elementwise(out, i, n, {}, s, target);
}

void schedule_saving(const PackedStages &st, Func y, const Expr &n, const Schedule &s, const Target &target,
                     Pipeline pipeline) {
    Func saved = st.out;
    Var wo("wo"), wi("wi");
    schedule_words(st, wi, target, pipeline);
    if (target.has_gpu_feature()) {
        saved.split(st.w, wo, wi, s.block_size, TailStrategy::GuardWithIf)
            .reorder(wi, st.r, wo)
            .gpu_blocks(wo)
            .gpu_threads(wi);
        if (y.defined()) schedule_gpu(y, st.w, s);
        return;
    }
    // compute_with allows no specializations: below parallel_min the chunk is every block, one task.
    const int block = 32 * save_block_words;
    Expr blocks = (n + block - 1) / block;
    Expr per_task = max((blocks + s.tasks - 1) / s.tasks, std::max(s.min_chunk / block, 1));
    Expr chunk = max(select(n < s.parallel_min, blocks, per_task), 1);
    Var wc("wc"), wb("wb"), v("v"), lane("lane");
    saved.split(st.w, wo, wi, save_block_words, TailStrategy::GuardWithIf)
        .split(wo, wc, wb, chunk, TailStrategy::GuardWithIf)
        .reorder(wi, st.r, wb, wc)
        .parallel(wc);
    if (!y.defined()) return;
    y.split(st.w, wo, wi, block, TailStrategy::GuardWithIf)
        .split(wo, wc, wb, chunk, TailStrategy::GuardWithIf)
        .split(wi, v, lane, vector_width(s, target), TailStrategy::GuardWithIf)
        .vectorize(lane)
        .parallel(wc);
    y.compute_with(saved, wb);
}

void schedule_saved_grad(Func out, const Var &i, const Expr &n, const std::vector<Expr> &specializations,
                         const Schedule &s, const Target &target) {
    if (target.has_gpu_feature()) {
        schedule_elementwise(out, i, n, specializations, s, target);
        return;
    }
    const int lanes = std::min(vector_width(s, target), 32);
    Var w("w"), b("b"), wo("wo"), wi("wi"), bo("bo"), lane("lane");
    auto vectors = [&](Stage stage) {
        stage.split(i, w, b, 32, TailStrategy::GuardWithIf)
            .split(b, bo, lane, lanes, TailStrategy::GuardWithIf)
            .vectorize(lane);
    };
    Expr words = (n + 31) / 32;
    Expr chunk = max((words + s.tasks - 1) / s.tasks, std::max(s.min_chunk / 32, 1));
    auto one = [&](Stage stage) {
        Stage parallel = stage.specialize(n >= s.parallel_min);
        vectors(parallel);
        parallel.split(w, wo, wi, chunk, TailStrategy::GuardWithIf).parallel(wo);
        vectors(stage);
    };
    for (const Expr &condition : specializations) {
        one(out.specialize(condition));
    }
    one(out);
}

int reduction_lanes(const Schedule &s, const Target &target) {
    return target.has_gpu_feature() ? s.block_size : vector_width(s, target);
}

Expr reduction_chunk_blocks(const Expr &blocks, const Schedule &s, const Target &target) {
    Expr per_chunk;
    if (target.has_gpu_feature()) {
        per_chunk = max((blocks + s.reduction_blocks - 1) / s.reduction_blocks, 1);
    } else {
        per_chunk = max((blocks + s.tasks - 1) / s.tasks, std::max(1, s.min_chunk / reduction_lanes(s, target)));
    }
    // Never more than the input has: a chunk past the end would re-read the last block for nothing.
    return min(per_chunk, max(blocks, 1));
}

void schedule_abs_max(const AbsMaxStages &stages, const Expr &n, const Schedule &s, const Target &target) {
    const int lanes = reduction_lanes(s, target);
    Func lane_max = stages.lane_max, lane_total = stages.lane_total, result = stages.result;
    const Var &lane = stages.lane, &chunk = stages.chunk;
    lane_max.compute_root();
    lane_total.compute_root();
    if (target.has_gpu_feature()) {
        // One block per chunk, a thread per lane striding through the chunk's blocks (coalesced loads);
        // then one block folds the chunks, and one thread the lanes.
        lane_max.gpu_blocks(chunk).gpu_threads(lane);
        lane_max.update().gpu_blocks(chunk).gpu_threads(lane);
        Var block("block"), thread("thread");
        lane_total.gpu_tile(lane, block, thread, lanes);
        lane_total.update().gpu_tile(lane, block, thread, lanes);
        result.gpu_single_thread();
        result.update().gpu_single_thread();
        return;
    }
    lane_max.vectorize(lane, lanes);
    lane_max.update().vectorize(lane, lanes);
    lane_max.update().specialize(n >= s.parallel_min).parallel(chunk);
    lane_total.vectorize(lane, lanes);
    lane_total.update().vectorize(lane, lanes);
}

void schedule_lane_sum(const AbsMaxStages &stages, int lanes, const Expr &n, const Schedule &s, const Target &target) {
    Func lane_sum = stages.lane_max, lane_total = stages.lane_total, result = stages.result;
    const Var &lane = stages.lane, &block = stages.chunk;
    lane_sum.compute_root();
    lane_total.compute_root();
    if (target.has_gpu_feature()) {
        lane_sum.gpu_blocks(block).gpu_threads(lane);
        lane_sum.update().gpu_blocks(block).gpu_threads(lane);
        Var outer("outer"), thread("thread");
        lane_total.gpu_tile(lane, outer, thread, lanes);
        lane_total.update().gpu_tile(lane, outer, thread, lanes);
        result.gpu_single_thread();
        result.update().gpu_single_thread();
        return;
    }
    lane_sum.bound(lane, 0, lanes).vectorize(lane);
    lane_sum.update().vectorize(lane);
    lane_sum.update().specialize(n >= s.parallel_min).parallel(block);
    lane_total.bound(lane, 0, lanes).vectorize(lane);
    lane_total.update().vectorize(lane);
}

} // namespace bitquant
