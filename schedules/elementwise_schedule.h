// How bitquant's kernel families are scheduled on CPUs. The generators call these after writing their
// algorithm; the numbers that matter live in schedules/cpu_schedule.cpp, per target.
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

CpuSchedule cpu_schedule_for(const Halide::Target &target);

// An elementwise output over [0, n): vectorized, parallel in chunks computed from n at run time, every
// tail guarded. Each condition in `specializations` gets its own copy of the loop in which the condition
// is known to be true (for example "gradient cancellation on").
void schedule_elementwise(Halide::Func out, const Halide::Var &i, const Halide::Expr &n,
                          const std::vector<Halide::Expr> &specializations, const Halide::Target &target);

// The per-lane partial maxima of an abs-max reduction, laid out as lane_max(lane, chunk).
void schedule_lane_reduction(Halide::Func lane_max, const Halide::Var &lane, const Halide::Var &chunk,
                             const Halide::Expr &n, int lanes, const Halide::Target &target);

// Lanes of the abs-max reduction for a target, and how many blocks of that many elements one parallel
// chunk of it covers, given the number of blocks in the input (the last one may be partial).
int reduction_lanes(const Halide::Target &target);
Halide::Expr reduction_chunk_blocks(const Halide::Expr &blocks, const Halide::Target &target);

} // namespace bitquant
