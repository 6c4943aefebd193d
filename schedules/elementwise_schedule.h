// How bitquant's kernel families are scheduled, per target. The generators call these after writing their
// algorithm; the numbers that matter, per target, are at the top of schedules/elementwise_schedule.cpp.
#pragma once

#include "Halide.h"

#include <vector>

namespace bitquant {

struct CpuSchedule {
    int vector_multiple; // vector width = natural float vector size * this (LLVM unrolls the rest)
    int parallel_min;    // below this many elements the kernel runs on the calling thread alone
    int tasks;           // above it, the work is cut into about this many parallel chunks...
    int min_chunk;       // ...of at least this many elements
};

struct GpuSchedule {
    int block_size;       // threads per block (CUDA) or work-group (OpenCL), one element per thread
    int reduction_blocks; // the abs-max reduction's first pass uses at most this many blocks
};

CpuSchedule cpu_schedule_for(const Halide::Target &target);
GpuSchedule gpu_schedule_for(const Halide::Target &target);

// An elementwise output over [0, n), every tail guarded. On CPUs: vectorized, parallel in chunks computed
// from n at run time; on GPUs: one thread per element. Each condition in `specializations` gets its own
// copy of the loop in which the condition is known to be true (for example "gradient cancellation on").
void schedule_elementwise(Halide::Func out, const Halide::Var &i, const Halide::Expr &n,
                          const std::vector<Halide::Expr> &specializations, const Halide::Target &target);

// The abs-max reduction's stages: per-lane partial maxima lane_max(lane, chunk) over blocks of `lanes`
// elements, their maximum per lane lane_total(lane), and the result.
struct AbsMaxStages {
    Halide::Func lane_max, lane_total, result;
    Halide::Var lane, chunk;
};
void schedule_abs_max(const AbsMaxStages &stages, const Halide::Expr &n, const Halide::Target &target);

// Lanes of the abs-max reduction for a target, and how many blocks of that many elements one chunk of it
// covers, given the number of blocks in the input (the last one may be partial).
int reduction_lanes(const Halide::Target &target);
Halide::Expr reduction_chunk_blocks(const Halide::Expr &blocks, const Halide::Target &target);

} // namespace bitquant
