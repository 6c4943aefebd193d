#include "elementwise_schedule.h"

namespace bitquant {

using namespace Halide;

// Threads do not pay below about 2^17-2^18 elements on a 2-core AMD EPYC (PERF-NOTES.md). Vector
// multiples: 4 x 8 lanes measured best on AVX2 (Zen 3; x2 and x8 were 5-25% slower on SwishSign); AVX-512
// keeps 32 lanes (2 x 16) and is not measured here (no AVX-512 CPU); SSE4.1 and NEON use 4 x 4 lanes.
CpuSchedule cpu_schedule_for(const Target &target) {
    if (target.has_feature(Target::AVX512_Skylake)) return {2, 1 << 18, 16, 1 << 16};
    return {4, 1 << 18, 16, 1 << 16};
}

// 256 threads (8 warps) per block: full occupancy on every NVIDIA GPU since sm_30, and a multiple of every
// OpenCL device's preferred work-group multiple. Not measured on a GPU yet (none here).
GpuSchedule gpu_schedule_for(const Target &) { return {256, 1024}; }

namespace {

int vector_width(const Target &target) {
    return target.natural_vector_size<float>() * cpu_schedule_for(target).vector_multiple;
}

void schedule_sized(Stage stage, const Var &i, const Expr &n, const Target &target) {
    const CpuSchedule s = cpu_schedule_for(target);
    const int width = vector_width(target);
    // The chunk comes from n at run time (a fixed chunk larger than n runs the whole guarded chunk), and
    // is a whole number of vectors: splitting into vectors first keeps every vector but the last one
    // unpredicated (a chunk of elements would make Halide mask every load and store in it).
    Expr chunk_vectors = max((n / s.tasks + width - 1) / width, s.min_chunk / width);
    Var vectors("vectors"), lane("lane"), io("io"), ii("ii");
    stage.specialize(n >= s.parallel_min)
        .split(i, vectors, lane, width, TailStrategy::GuardWithIf)
        .split(vectors, io, ii, chunk_vectors, TailStrategy::GuardWithIf)
        .parallel(io)
        .vectorize(lane);
    stage.vectorize(i, width, TailStrategy::GuardWithIf);
}

void schedule_gpu(Stage stage, const Var &i, const Target &target) {
    Var block("block"), thread("thread");
    stage.gpu_tile(i, block, thread, gpu_schedule_for(target).block_size, TailStrategy::GuardWithIf);
}

} // namespace

void schedule_elementwise(Func out, const Var &i, const Expr &n, const std::vector<Expr> &specializations,
                          const Target &target) {
    for (const Expr &condition : specializations) {
        if (target.has_gpu_feature()) {
            schedule_gpu(out.specialize(condition), i, target);
        } else {
            schedule_sized(out.specialize(condition), i, n, target);
        }
    }
    if (target.has_gpu_feature()) {
        schedule_gpu(out, i, target);
    } else {
        schedule_sized(out, i, n, target);
    }
}

int reduction_lanes(const Target &target) {
    return target.has_gpu_feature() ? gpu_schedule_for(target).block_size : vector_width(target);
}

Expr reduction_chunk_blocks(const Expr &blocks, const Target &target) {
    Expr per_chunk;
    if (target.has_gpu_feature()) {
        const int chunks = gpu_schedule_for(target).reduction_blocks;
        per_chunk = max((blocks + chunks - 1) / chunks, 1);
    } else {
        const CpuSchedule s = cpu_schedule_for(target);
        per_chunk = max((blocks + s.tasks - 1) / s.tasks, std::max(1, s.min_chunk / reduction_lanes(target)));
    }
    // Never more than the input has: a chunk past the end would re-read the last block for nothing.
    return min(per_chunk, max(blocks, 1));
}

void schedule_abs_max(const AbsMaxStages &stages, const Expr &n, const Target &target) {
    const int lanes = reduction_lanes(target);
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
    const CpuSchedule s = cpu_schedule_for(target);
    lane_max.vectorize(lane, lanes);
    lane_max.update().vectorize(lane, lanes);
    lane_max.update().specialize(n >= s.parallel_min).parallel(chunk);
    lane_total.vectorize(lane, lanes);
    lane_total.update().vectorize(lane, lanes);
}

} // namespace bitquant
