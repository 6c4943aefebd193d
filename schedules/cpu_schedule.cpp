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

} // namespace

void schedule_elementwise(Func out, const Var &i, const Expr &n, const std::vector<Expr> &specializations,
                          const Target &target) {
    for (const Expr &condition : specializations) {
        schedule_sized(out.specialize(condition), i, n, target);
    }
    schedule_sized(out, i, n, target);
}

int reduction_lanes(const Target &target) { return vector_width(target); }

Expr reduction_chunk_blocks(const Expr &blocks, const Target &target) {
    const CpuSchedule s = cpu_schedule_for(target);
    const int lanes = reduction_lanes(target);
    // Never more than the input has: a chunk past the end would re-read the last block for nothing.
    return min(max((blocks + s.tasks - 1) / s.tasks, std::max(1, s.min_chunk / lanes)), max(blocks, 1));
}

void schedule_lane_reduction(Func lane_max, const Var &lane, const Var &chunk, const Expr &n, int lanes,
                             const Target &target) {
    const CpuSchedule s = cpu_schedule_for(target);
    lane_max.compute_root().vectorize(lane, lanes);
    lane_max.update().vectorize(lane, lanes);
    lane_max.update().specialize(n >= s.parallel_min).parallel(chunk);
}

} // namespace bitquant
