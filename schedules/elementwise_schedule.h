// How bitquant's kernel families are scheduled, per target. The generators call these after writing their
// algorithm. The numbers come from the schedule files, schedules/<target>.sched, which the build passes to
// each generator as the parameters below.
#pragma once

#include "Halide.h"

#include <string>
#include <vector>

namespace bitquant {

// A kernel family's schedule on one target. 0 means "not given": every parameter its kind of target uses
// must be given (schedule_for checks).
struct Schedule {
    // CPUs
    int vector_multiple = 0; // vector width = natural float vector size * this (LLVM splits the rest)
    int parallel_min = 0;    // below this many elements the kernel runs on the calling thread alone
    int tasks = 0;           // above it, the work is cut into about this many parallel chunks...
    int min_chunk = 0;       // ...of at least this many elements
    // Both: vectors per loop iteration (CPUs), elements per thread (GPUs)
    int unroll = 0;
    // GPUs
    int block_size = 0;       // threads per block (CUDA) or work-group (OpenCL)
    int reduction_blocks = 0; // the abs-max's first pass uses at most this many blocks
};

// The generators' schedule parameters, one GeneratorParam each, for every generator to inherit.
template <typename Derived> class ScheduledGenerator : public Halide::Generator<Derived> {
  public:
    Halide::GeneratorParam<int> vector_multiple{"vector_multiple", 0};
    Halide::GeneratorParam<int> parallel_min{"parallel_min", 0};
    Halide::GeneratorParam<int> tasks{"tasks", 0};
    Halide::GeneratorParam<int> min_chunk{"min_chunk", 0};
    Halide::GeneratorParam<int> unroll{"unroll", 0};
    Halide::GeneratorParam<int> block_size{"block_size", 0};
    Halide::GeneratorParam<int> reduction_blocks{"reduction_blocks", 0};
    // Instead of the hand schedule: a Halide autoscheduler ("Adams2019" or "Mullapudi2016", its plugin
    // loaded with -p), told to expect n_estimate elements and autoschedule_parallelism cores.
    Halide::GeneratorParam<std::string> autoschedule{"autoschedule", ""};
    Halide::GeneratorParam<int> n_estimate{"n_estimate", 1 << 20};
    Halide::GeneratorParam<int> autoschedule_parallelism{"autoschedule_parallelism", 2};

  protected:
    Schedule schedule() const;
};

// Checks that s gives every parameter the target needs, in range; a user error naming the missing one if not.
Schedule checked_schedule(const Schedule &s, const Halide::Target &target);

template <typename Derived> Schedule ScheduledGenerator<Derived>::schedule() const {
    Schedule s;
    s.vector_multiple = vector_multiple;
    s.parallel_min = parallel_min;
    s.tasks = tasks;
    s.min_chunk = min_chunk;
    s.unroll = unroll;
    s.block_size = block_size;
    s.reduction_blocks = reduction_blocks;
    return checked_schedule(s, this->get_target());
}

// An elementwise output over [0, n), every tail guarded. On CPUs: vectorized, parallel in chunks computed
// from n at run time; on GPUs: `unroll` elements per thread. Each condition in `specializations` gets its
// own copy of the loop in which the condition is known to be true (for example "gradient cancellation on").
void schedule_elementwise(Halide::Func out, const Halide::Var &i, const Halide::Expr &n,
                          const std::vector<Halide::Expr> &specializations, const Schedule &s,
                          const Halide::Target &target);

// A bit-packed output out(w, r) over words x rows (or, for saved bits, x planes): word w holds bits(c, r) of
// the columns c = 32 w .. 32 w + 31. schedule_packed: on CPUs the 32 bools of a word are one vector (a compare
// per vector of inputs, its mask the word: see ReadBoolsAsVector, a lowering pass it adds to `pipeline`), the
// rows or else the words of a row are cut into parallel chunks as an elementwise output is, from parallel_min
// elements (32 per word) up; on GPUs a thread computes a word.
struct PackedStages {
    Halide::Func out, bits;
    Halide::Var w, r, c;
};
void schedule_packed(const PackedStages &stages, const Halide::Expr &words, const Halide::Expr &rows,
                     const std::vector<Halide::Expr> &specializations, const Schedule &s, const Halide::Target &target,
                     Halide::Pipeline pipeline);

// The saved planes of a forward pass (generators: define_saved), packed as above with r the plane, and y(w)
// (an elementwise output over the same x, or undefined) with them, in blocks of 32 * save_block_words
// elements: on CPUs each block of x is read for the planes and then again, from the L1 cache, for y
// (compute_with; the planes first, so that y may overwrite x), the blocks cut into parallel chunks from
// parallel_min elements up; on GPUs a thread computes a word of every plane, and y is an elementwise output of
// its own, computed after them. 16 words (512 elements, 2 KiB of float32): at 2^24 on 2 threads SteHeaviside's
// fwd_save ran at 0.96 (1 plane) and 0.92 (2 planes) of its roofline, against 0.88 and 0.80 with 128 words;
// 32 and 64 words were within noise of 16 for one plane, below it for two.
constexpr int save_block_words = 16;
void schedule_saving(const PackedStages &stages, Halide::Func y, const Halide::Expr &n, const Schedule &s,
                     const Halide::Target &target, Halide::Pipeline pipeline);

// An elementwise output out(i) over [0, n) that reads word i / 32 of a saved plane (GRAD_SAVED): on CPUs
// vectors of at most 32 lanes that start at multiples of 32, so that each reads one word, a broadcast.
// Otherwise as schedule_elementwise.
void schedule_saved_grad(Halide::Func out, const Halide::Var &i, const Halide::Expr &n,
                         const std::vector<Halide::Expr> &specializations, const Schedule &s,
                         const Halide::Target &target);

// An elementwise output scheduled by the autoscheduler `name` instead (its estimates must be set). Its
// splits assume n >= their factors (ShiftInwards), so the autoschedule applies only where n is at least the
// largest factor, and smaller n, 0 included, get the hand schedule: every length works.
void autoschedule_elementwise(Halide::Func out, const Halide::Var &i, const Halide::Expr &n, const std::string &name,
                              int parallelism, const Schedule &s, const Halide::Target &target);

// The abs-max reduction's stages: per-lane partial maxima lane_max(lane, chunk) over blocks of `lanes`
// elements, their maximum per lane lane_total(lane), and the result.
struct AbsMaxStages {
    Halide::Func lane_max, lane_total, result;
    Halide::Var lane, chunk;
};
void schedule_abs_max(const AbsMaxStages &stages, const Halide::Expr &n, const Schedule &s,
                      const Halide::Target &target);

// A sum in a fixed order (the generator's algorithm), in the abs-max's stages: lane_max holds the lanes'
// partial sums per block (chunk), lane_total their sums over blocks, result the sum of the lanes. On CPUs the
// `lanes` lanes are one vector and the blocks run in parallel from parallel_min elements up; on GPUs as the
// abs-max. The schedule never changes the order of the additions.
void schedule_lane_sum(const AbsMaxStages &stages, int lanes, const Halide::Expr &n, const Schedule &s,
                       const Halide::Target &target);

// Lanes of the abs-max reduction for a target, and how many blocks of that many elements one chunk of it
// covers, given the number of blocks in the input (the last one may be partial).
int reduction_lanes(const Schedule &s, const Halide::Target &target);
Halide::Expr reduction_chunk_blocks(const Halide::Expr &blocks, const Schedule &s, const Halide::Target &target);

} // namespace bitquant
