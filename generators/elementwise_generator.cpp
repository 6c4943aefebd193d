// The Halide generators of every kernel family in generators/kernels.def: the algorithms, written as the
// spec states them. Schedules come from schedules/, their parameters from the build (schedules/*.sched).
#include "Halide.h"

#include <functional>

#include "../schedules/elementwise_schedule.h"
#include "quantize_math.h"

namespace bitquant {
namespace {

using namespace Halide;

// The element types of a kernel's arrays, in_type and out_type (kernels.def's spellings), which the build
// passes per type pair; configure() gives the buffers their storage types (storage_type) and dimensions.
template <typename Derived> class TypedGenerator : public ScheduledGenerator<Derived> {
  public:
    GeneratorParam<std::string> in_type{"in_type", "f32"};
    GeneratorParam<std::string> out_type{"out_type", "f32"};

  protected:
    Element in() const { return element_named(in_type); }
    Element out() const { return element_named(out_type); }
    // For configure(): a buffer of elements e, columns x rows where the output is bit-packed, else 1-D.
    template <typename B> void set_storage(B &buffer, Element e) const {
        buffer.set_type(storage_type(e));
        buffer.set_dimensions(out() == Element::B1 ? 2 : 1);
    }
    Expr widen_in(const Expr &stored) const { return widen(stored, in(), this->get_target()); }
    Expr narrow_out(const Expr &v) const { return narrow(v, out(), this->get_target()); }
};

// The quantizers of the MAP families: quantize(v, p0, p1) in float32 (v is x widened), the conditions on p0/p1
// worth a specialized loop, and negative(v, p0, p1), whether the output is -1 (the bit of a packed output).
template <typename Q> struct Quantizer {
    static std::vector<Expr> specializations(const Expr &, const Expr &) { return {}; }
    static Expr negative(const Expr &v, const Expr &p0, const Expr &p1) { return Q::quantize(v, p0, p1) < 0.0f; }
};

struct Copy : Quantizer<Copy> {
    static Expr quantize(const Expr &v, const Expr &, const Expr &) { return v; }
};

struct Sign : Quantizer<Sign> {
    static Expr quantize(const Expr &v, const Expr &, const Expr &) { return sign_pm1(v); }
    static Expr negative(const Expr &v, const Expr &, const Expr &) { return v < 0.0f; }
};

// SteHeaviside forward: 0, -0 and NaN give -1 (spec section 2).
struct Heaviside : Quantizer<Heaviside> {
    static Expr quantize(const Expr &v, const Expr &, const Expr &) { return select(v > 0.0f, 1.0f, -1.0f); }
    static Expr negative(const Expr &v, const Expr &, const Expr &) { return !(v > 0.0f); }
};

// InputDoReFa forward, p0 = L = 2^bits - 1: round_half_even(clamp(x, 0, 1) * L) / L.
struct InputDoReFa : Quantizer<InputDoReFa> {
    static Expr quantize(const Expr &v, const Expr &p0, const Expr &) {
        return round(clamp_keep_nan(v, 0.0f, 1.0f) * p0) / p0;
    }
};

// WeightDoReFa's elementwise stage, p0 = L, p1 = max|x| over the whole tensor (NaN if any x is NaN).
// max|tanh(x)| = tanh(max|x|) because tanh is monotonic, so the global M needs no second tanh pass.
struct WeightDoReFa : Quantizer<WeightDoReFa> {
    static Expr quantize(const Expr &v, const Expr &p0, const Expr &p1) {
        Expr m = tanh_f32(p1);
        Expr u = tanh_f32(v) / (2.0f * m) + 0.5f;
        return 2.0f * (round(u * p0) / p0) - 1.0f;
    }
};

// ProgressiveSign forward, p0 = (float)d, p1 = training: hardtanh(x / d) when training, else sign.
struct Progressive : Quantizer<Progressive> {
    static Expr quantize(const Expr &v, const Expr &p0, const Expr &p1) {
        return select(p1 != 0.0f, clamp_keep_nan(v / p0, -1.0f, 1.0f), sign_pm1(v));
    }
    static std::vector<Expr> specializations(const Expr &, const Expr &p1) { return {p1 != 0.0f}; }
};

// Pact forward, p0 = s = (1 / alpha) * L (the runtime rounds as bitorch does), p1 = alpha (spec section 4):
// round_half_even(clamp(x, 0, alpha) * s) / s, the clamp as torch's (NaN stays NaN, -0 stays -0).
struct Pact : Quantizer<Pact> {
    static Expr quantize(const Expr &v, const Expr &p0, const Expr &p1) {
        Expr clamped = select(v < 0.0f, 0.0f, select(v > p1, p1, v));
        return round(clamped * p0) / p0;
    }
};

// out(w, r) = word w of row (or plane) r, packed LSB first: bit b is bit(c, r) for column c = 32 w + b, and 0
// past the end of the row, cols. bits(c, r) reads bit() at c clamped into the row (loop partitioning keeps the
// clamp out of the steady state); the last word, when the row ends inside it, is then ANDed with a mask of its
// cols % 32 valid bits, one scalar AND per row rather than a compare per bit. On CPUs the word is the
// concatenation of its 32 bools (concat_bits), which schedule_words computes as one vector compare whose mask is
// the word; on GPUs, where a thread computes a word, the OR of each bit shifted into place.
PackedStages define_packed(Func out, const Expr &cols, const Var &w, const Var &r,
                           const std::function<Expr(const Expr &, const Var &)> &bit, const Target &target) {
    Var c("c");
    Func bits("bits");
    bits(c, r) = bit(clamp(likely(c), 0, cols - 1), r);
    std::vector<Expr> lanes;
    for (int b = 0; b < 32; b++) lanes.push_back(bits(w * 32 + b, r));
    Expr word;
    if (target.has_gpu_feature()) {
        word = u32(0);
        for (int b = 0; b < 32; b++) word = word | select(lanes[b], u32(1u << b), u32(0));
    } else {
        word = concat_bits(lanes);
    }
    Expr tail = (u32(1) << cast<uint32_t>(cols % 32)) - u32(1); // used only where cols % 32 is in 1 .. 31
    out(w, r) = select(likely(w < cols / 32), word, word & tail);
    return {out, bits, w, r, c};
}

// MAP: y(i) = Q::quantize(x(i); p0, p1). x and y are of the types the build gives (in_type, out_type:
// kernels.def's type pairs): x is widened exactly to float32, quantize() runs in float32, and its result is
// rounded once to y's type. A b1 y is the bit-packed output (BIT, uint32 words): both buffers are then 2-D,
// columns x rows, and word w of row r holds, LSB first, whether the outputs of columns 32 w .. 32 w + 31 are -1
// (padding bits 0).
template <typename Q> class Map : public TypedGenerator<Map<Q>> {
  public:
    GeneratorInput<Buffer<void>> x{"x"};
    GeneratorInput<float> p0{"p0"};
    GeneratorInput<float> p1{"p1"};
    GeneratorOutput<Buffer<void>> y{"y"};

    void configure() {
        this->set_storage(x, this->in());
        this->set_storage(y, this->out());
    }

    void generate() {
        if (this->out() == Element::B1) {
            generate_packed();
            return;
        }
        Var i("i");
        y(i) = this->narrow_out(Q::quantize(this->widen_in(x(i)), p0, p1));
        const std::string autoscheduler = this->autoschedule;
        if (autoscheduler.empty()) {
            schedule_elementwise(y, i, x.dim(0).extent(), Q::specializations(p0, p1), this->schedule(),
                                 this->get_target());
            return;
        }
        x.set_estimates({{0, this->n_estimate}});
        p0.set_estimate(1.0f);
        p1.set_estimate(1.0f);
        y.set_estimates({{0, this->n_estimate}});
        autoschedule_elementwise(y, i, x.dim(0).extent(), autoscheduler, this->autoschedule_parallelism,
                                 this->schedule(), this->get_target());
    }

  private:
    // Each row packed (define_packed), a bit where the output is -1.
    void generate_packed() {
        Var w("w"), r("r");
        Expr cols = x.dim(0).extent();
        PackedStages stages = define_packed(y, cols, w, r, [this](const Expr &c, const Var &row) {
            return Q::negative(this->widen_in(x(c, row)), p0, p1);
        }, this->get_target());
        schedule_packed(stages, (cols + 31) / 32, x.dim(1).extent(), Q::specializations(p0, p1), this->schedule(),
                        this->get_target(), this->get_pipeline());
    }
};

// What a backward pass keeps of x (runtime/saved.c): saved(w, p), plane p of 32-element words, holds LSB first
// [|x| <= a_p] for the elements 32 w .. 32 w + 31 (a NaN gives 0; padding bits past n are 0), for the planes
// p < saved.dim(1).extent() (1 or 2) with a_0 = a0, a_1 = a1: define_packed over the n elements, one "row" per
// plane. `value` gives x(i) widened to float32 for an index i in [0, n).
PackedStages define_saved(Func saved, const std::function<Expr(const Expr &)> &value, const Expr &n, const Expr &a0,
                          const Expr &a1, const Var &w, const Target &target) {
    Var p("p");
    return define_packed(saved, n, w, p, [&](const Expr &c, const Var &plane) {
        return abs_le(value(c), select(plane == 0, a0, a1));
    }, target);
}

// SAVE: Map's y, and in the same pass over x the planes of saved that the backward pass needs (define_saved),
// each block of x read once for both (compute_with). x and y are of one type.
template <typename Q> class MapSave : public TypedGenerator<MapSave<Q>> {
  public:
    GeneratorInput<Buffer<void>> x{"x"};
    GeneratorInput<float> p0{"p0"};
    GeneratorInput<float> p1{"p1"};
    GeneratorInput<float> a0{"a0"};
    GeneratorInput<float> a1{"a1"};
    // saved first: Halide computes outputs in this order, and on GPUs, where the two are kernels of their own,
    // saved must have read x before y may overwrite it (in place on device memory).
    GeneratorOutput<Buffer<uint32_t, 2>> saved{"saved"};
    GeneratorOutput<Buffer<void>> y{"y"};

    void configure() {
        this->set_storage(x, this->in());
        this->set_storage(y, this->out());
    }

    void generate() {
        // One Var for y's elements and saved's words: compute_with matches the two loop nests by name.
        Var w("w");
        Expr n = x.dim(0).extent();
        y(w) = this->narrow_out(Q::quantize(this->widen_in(x(w)), p0, p1));
        PackedStages stages =
            define_saved(saved, [this](const Expr &i) { return this->widen_in(x(i)); }, n, a0, a1, w,
                         this->get_target());
        // Every buffer starts at 0 (the runtime describes them so): define_saved clamps to [0, n).
        x.dim(0).set_min(0);
        y.dim(0).set_min(0);
        saved.dim(0).set_min(0);
        schedule_saving(stages, y, n, this->schedule(), this->get_target(), this->get_pipeline());
    }
};

// SAVE_BITS: saved alone, for a forward pass that reads x more than once (WeightDoReFa's): define_saved over
// x of any float type.
class SaveBits : public TypedGenerator<SaveBits> {
  public:
    GeneratorInput<Buffer<void>> x{"x"};
    GeneratorInput<float> a0{"a0"};
    GeneratorInput<float> a1{"a1"};
    GeneratorOutput<Buffer<uint32_t, 2>> saved{"saved"};

    void configure() { set_storage(x, in()); }

    void generate() {
        Var w("w");
        PackedStages stages =
            define_saved(saved, [this](const Expr &i) { return widen_in(x(i)); }, x.dim(0).extent(), a0, a1, w,
                         get_target());
        x.dim(0).set_min(0);
        saved.dim(0).set_min(0);
        schedule_saving(stages, Func(), x.dim(0).extent(), schedule(), get_target(), get_pipeline());
    }
};

// GRAD_SAVED: the backward passes that need only saved's planes (define_saved) of x, mode (runtime/saved.c):
//   0  dx = [plane 0] ? g : +0            a select: gradient cancellation (SteHeaviside's too, at t <= 1)
//   1  dx = g * [plane 0]                 a multiply-mask: SteHeaviside's g * [|x| <= 1], without cancellation
//   2  dx = [plane 1] ? g * [plane 0] : +0  both: SteHeaviside's mask at 1 and cancellation at t > 1
// exactly as the GRAD kernels compute them from x (Ste, SteHeaviside). g and dx are of one type.
class GradSaved : public TypedGenerator<GradSaved> {
  public:
    GeneratorInput<Buffer<uint32_t, 2>> saved{"saved"};
    GeneratorInput<Buffer<void>> g{"g"};
    GeneratorInput<int32_t> mode{"mode"};
    GeneratorOutput<Buffer<void>> dx{"dx"};

    void configure() {
        set_storage(g, in());
        set_storage(dx, out());
    }

    void generate() {
        Var i("i");
        // Bit i % 32 of word i / 32: where a vector covers one word's lanes, the word is a broadcast shifted by
        // constants. (Written as word & (1 << i % 32), Halide 21's simplifier recurses without end once the
        // buffers' mins are known.) The plane is clamped to those given: modes 0 and 1 have one, whose bounds
        // must not ask for a second.
        auto bit = [&](int plane) {
            Expr word = saved(i / 32, min(plane, saved.dim(1).max()));
            return ((word >> cast<uint32_t>(i % 32)) & u32(1)) != u32(0);
        };
        Expr gv = widen_in(g(i));
        Expr masked = gv * indicator(bit(0));
        Expr result = select(mode == 0, select(bit(0), gv, 0.0f),
                             select(mode == 1, masked, select(bit(1), masked, 0.0f)));
        dx(i) = narrow_out(strict_float(result));
        // Every buffer starts at 0 (the runtime describes them so), which makes i / 32 one word per vector.
        g.dim(0).set_min(0);
        saved.dim(0).set_min(0);
        dx.dim(0).set_min(0);
        schedule_saved_grad(dx, i, g.dim(0).extent(), {mode == 0, mode == 1, mode == 2}, schedule(), get_target());
    }
};

// WeightDoReFa's forward as a step function. With a correctly rounded tanh, x -> round((tanh(x) / 2M +
// 1/2) L) is non-decreasing, so it equals the number of level thresholds t_j <= x (the runtime finds them
// by bisection, runtime/weightdorefa.c), and the output is that level, 2 (q / L) - 1, as the spec writes it.
// Counting up to 15 thresholds replaces a double-precision tanh per element. x is never NaN here: a NaN
// anywhere makes M NaN, and the runtime then runs the weightdorefa kernel instead.
class WeightDoReFaCount : public TypedGenerator<WeightDoReFaCount> {
  public:
    static constexpr int max_thresholds = 15; // 4 bits
    GeneratorInput<Buffer<void>> x{"x"};
    GeneratorInput<Buffer<float, 1>> thresholds{"thresholds"};
    GeneratorInput<int32_t> levels{"levels"}; // L = 2^bits - 1, at most max_thresholds
    GeneratorOutput<Buffer<void>> y{"y"};

    void configure() {
        set_storage(x, in());
        set_storage(y, out());
    }

    void generate() {
        Var i("i");
        Expr v = widen_in(x(i));
        // !(v < t) is v >= t for non-NaN v; thresholds past L count nothing.
        Expr count = 0.0f;
        for (int j = 0; j < max_thresholds; j++)
            count += select(j < levels && !(v < thresholds(j)), 1.0f, 0.0f);
        // At 15 levels, a binary search instead: as the thresholds are sorted, x >= t_j holds for j below the
        // count and fails from it on, so four compares find it, each against the threshold the ones before
        // it select (11 selects). On AVX-512 the loop takes 57 instructions per 32 elements instead of 101,
        // and 4 bits went from 0.82 to 1.1-1.2 of the roofline at 2^20 elements (2 threads), as 3 bits runs.
        Expr base = 0.0f;
        std::vector<Expr> candidates;
        for (int j = 0; j < max_thresholds; j++)
            candidates.push_back(thresholds(j));
        for (int step = (max_thresholds + 1) / 2; step >= 1; step /= 2) {
            // candidates[k] is t_(base + k) for k < 2 step; the next compare is at k = step - 1.
            Expr reached = !(v < candidates[step - 1]);
            base += select(reached, (float)step, 0.0f);
            for (int k = 0; k + 1 < step; k++)
                candidates[k] = select(reached, candidates[step + k], candidates[k]);
        }
        count = select(levels == max_thresholds, base, count);
        Expr fl = cast<float>(levels);
        y(i) = narrow_out(2.0f * (count / fl) - 1.0f);
        thresholds.dim(0).set_min(0).set_extent(max_thresholds);
        std::vector<Expr> specializations;
        for (int l : {1, 3, 7, 15})
            specializations.push_back(levels == l);
        schedule_elementwise(y, i, x.dim(0).extent(), specializations, schedule(), get_target());
    }
};

// WeightDoReFa's elementwise stage at 5 to 10 bits, p0 = L, p1 = M = max |tanh x| (> 0, no NaN anywhere):
// the spec's formula on a float tanh estimate, (1 - e) / (1 + e) with e = exp(-2|x|), whose absolute error is
// below 4e-7. The estimate of u L is then within L (2e-7 / M + 1e-6) + 1e-5 of the exact one (rounding of
// the other steps included), so it rounds to the same level unless it lies that close to a rounding
// boundary. Such elements (about 5e-4 of them at 8 bits and M near 1) get the marker value 2, outside
// [-1, 1], and the runtime computes them exactly (runtime/weightdorefa.c): a float tanh replaces a double one.
// On CPUs the family is built without the strict_float target feature (BITQUANT_CPU_RELAXED_FAMILIES) and
// everything is strict_float() but two Funcs, the exp2 polynomial and u L = ±t (L / 2M) + L / 2, which LLVM
// contracts into FMA: 34 instructions per 16 elements instead of 41 on AVX-512, 0.59 -> 0.41 ns per element
// in cache, and 8 bits at 2^24 elements from 0.72 to 0.80 of the roofline (2 threads). Fused or not, their
// rounding errors stay within the bound (a fused operation rounds once where the bound counts two roundings);
// tests/test_weightdorefa.c checks every float in [2^-24, 22] at 5 to 10 bits against the spec.
class WeightDoReFaEstimate : public TypedGenerator<WeightDoReFaEstimate> {
  public:
    GeneratorInput<Buffer<void>> x{"x"};
    GeneratorInput<float> p0{"p0"};
    GeneratorInput<float> p1{"p1"};
    GeneratorOutput<Buffer<void>> y{"y"};

    void configure() {
        set_storage(x, in());
        set_storage(y, out());
    }

    void generate() {
        Var i("i");
        Expr v = widen_in(x(i));
        // min(|x|, 22) as an integer min of the bits (x is never NaN here): one instruction, where a float
        // min under strict_float is a compare and a blend. Past 22, tanh is 1 in float.
        Expr a = reinterpret<float>(min(reinterpret<int32_t>(v) & 0x7fffffff, reinterpret<int32_t>(Expr(22.0f))));
        Exp2Parts parts = exp2_reduce(a * -2.88539008f); // e^-2|x| = 2^f * scale, f in [-1/2, 1/2]
        Func poly("estimate_exp2_poly"), scaled("estimate_scaled");
        poly(i) = exp2_poly(strict_float(parts.f));
        Expr e = strict_float(poly(i) * parts.scale);
        Expr t = strict_float((1.0f - e) / (1.0f + e));
        scaled(i) = strict_float(select(v < 0.0f, -t, t)) * strict_float(p0 * (0.5f / p1)) + strict_float(0.5f * p0);
        Expr w = scaled(i);
        // round(w), to even, for |w| < 2^22 (here |w| <= L + 1 < 2^11) by adding and subtracting 1.5 * 2^23:
        // LLVM splits a round instruction into 256-bit halves on AVX-512.
        Expr q = (w + 12582912.0f) - 12582912.0f;
        Expr open = abs(w - q) > 0.5f - (p0 * (2e-7f / p1 + 1e-6f) + 1e-5f); // near a half-integer
        y(i) = narrow_out(strict_float(select(open, 2.0f, 2.0f * (q / p0) - 1.0f)));
        schedule_elementwise(y, i, x.dim(0).extent(), {}, schedule(), get_target());
    }
};

// GRAD: dx(i) = f(x(i), g(i); p0), then QActivation's gradient cancellation iff threshold > 0, as a
// select: +0.0 wherever |x| > threshold or x is NaN, whatever g is (spec section 3). The derived class
// supplies gradient(x(i), g(i), i). x, g and dx are of one type (in_type = out_type): x and g are widened
// exactly to float32 and the result is rounded once to dx's type.
template <typename Derived> class GradGenerator : public TypedGenerator<Derived> {
  public:
    GeneratorInput<Buffer<void>> x{"x"};
    GeneratorInput<Buffer<void>> g{"g"};
    GeneratorInput<float> p0{"p0"};
    GeneratorInput<float> threshold{"threshold"};
    GeneratorOutput<Buffer<void>> dx{"dx"};

    void configure() {
        this->set_storage(x, this->in());
        this->set_storage(g, this->in());
        this->set_storage(dx, this->out());
    }

    void generate() {
        Var i("i");
        Expr v = this->widen_in(x(i));
        Expr grad = static_cast<Derived *>(this)->gradient(v, this->widen_in(g(i)), i);
        Expr cancelled = select(abs_le(v, threshold), grad, 0.0f);
        // strict_float() as well as the target feature: a family built without the feature on CPUs
        // (BITQUANT_CPU_RELAXED_FAMILIES) is strict all the same, but for what gradient() puts in a Func.
        dx(i) = this->narrow_out(strict_float(select(threshold > 0.0f, cancelled, grad)));
        const std::string autoscheduler = this->autoschedule;
        if (autoscheduler.empty()) {
            schedule_elementwise(dx, i, x.dim(0).extent(), {threshold > 0.0f}, this->schedule(), this->get_target());
            return;
        }
        x.set_estimates({{0, this->n_estimate}});
        g.set_estimates({{0, this->n_estimate}});
        p0.set_estimate(5.0f);
        threshold.set_estimate(1.0f);
        dx.set_estimates({{0, this->n_estimate}});
        autoschedule_elementwise(dx, i, x.dim(0).extent(), autoscheduler, this->autoschedule_parallelism,
                                 this->schedule(), this->get_target());
    }
};

// The straight-through estimator: the gradient passes unchanged.
class Ste : public GradGenerator<Ste> {
  public:
    Expr gradient(const Expr &, const Expr &gv, const Var &) const { return gv; }
};

// ApproxSign backward, in the spec's order: a multiply-mask, so -0 and NaN appear as bitorch's do.
class ApproxSign : public GradGenerator<ApproxSign> {
  public:
    Expr gradient(const Expr &v, const Expr &gv, const Var &) const {
        Expr a = abs(v);
        Expr slope = 2.0f - 2.0f * a;
        return (slope * indicator(abs_le(v, 1.0f))) * gv;
    }
};

// SteHeaviside backward: g * [|x| <= 1], a multiply-mask.
class SteHeaviside : public GradGenerator<SteHeaviside> {
  public:
    Expr gradient(const Expr &v, const Expr &gv, const Var &) const { return gv * indicator(abs_le(v, 1.0f)); }
};

// SwishSign backward, p0 = beta.
class SwishSign : public GradGenerator<SwishSign> {
  public:
    Expr gradient(const Expr &v, const Expr &gv, const Var &i) const { return swish_grad_core(v, p0, i) * gv; }
};

// Pact backward, p0 = alpha: g * [!(x < 0 || x > alpha)], a multiply-mask in which a NaN x is inside.
class PactBackward : public GradGenerator<PactBackward> {
  public:
    Expr gradient(const Expr &v, const Expr &gv, const Var &) const {
        return gv * indicator(!(v < 0.0f || v > p0));
    }
};

// SUM, Pact's gradient for alpha: sum of g * [x >= alpha] (p0 = alpha), in float64 and in one fixed order on
// every target: element i of the call adds into lane i % 8 of block i / (8 * sum_block_lanes); each lane sums
// its elements in increasing order, the blocks' lanes are added lane by lane in block order, then the 8 lanes
// in order. Every addend is a float32 and there are fewer than 2^31, so the float64 result is within
// (n - 1) 2^-53 sum |g_i| of the exact sum (the runtime then adds the chunks in order and rounds once).
class PactAlpha : public TypedGenerator<PactAlpha> {
  public:
    static constexpr int lanes = 8;
    static constexpr int block_steps = 512; // a block: 512 steps of 8 lanes, 4096 elements
    GeneratorInput<Buffer<float, 1>> x{"x"};
    GeneratorInput<Buffer<float, 1>> g{"g"};
    GeneratorInput<float> p0{"p0"};
    GeneratorOutput<Buffer<double, 0>> sum{"sum"};

    void generate() {
        Expr n = x.dim(0).extent();
        Var i("i"), lane("lane"), block("block");
        // Past n, nothing: the index is clamped for the loads, and the addend is 0 there.
        Func addend("addend");
        Expr at = clamp(i, 0, n - 1);
        Expr zero = cast<double>(0.0f);
        // x >= alpha as x > alpha || x == alpha: Halide rewrites a >= b as !(a < b), which a NaN x would pass.
        addend(i) = select(i < n && (x(at) > p0 || x(at) == p0), cast<double>(g(at)), zero);
        Expr blocks = (n + lanes * block_steps - 1) / (lanes * block_steps);
        RDom steps(0, block_steps, "steps");
        Func lane_sum("lane_sum");
        lane_sum(lane, block) = zero;
        lane_sum(lane, block) += addend((block * block_steps + steps) * lanes + lane);
        RDom over_blocks(0, blocks, "over_blocks");
        Func lane_total("lane_total");
        lane_total(lane) = zero;
        lane_total(lane) += lane_sum(lane, over_blocks);
        RDom over_lanes(0, lanes, "over_lanes");
        sum() = zero;
        sum() += lane_total(over_lanes);
        x.dim(0).set_min(0);
        g.dim(0).set_min(0);
        schedule_lane_sum({lane_sum, lane_total, sum, lane, block}, lanes, n, schedule(), get_target());
    }
};

// ABSMAX: the largest |x| as its bit pattern, max_i (bits(x_i) & 0x7fffffff). On non-negative floats the
// integer order is the float order and every NaN sorts above +inf, so the maximum propagates NaN exactly
// as torch.max does, with plain integer max.
class AbsMax : public TypedGenerator<AbsMax> {
  public:
    GeneratorInput<Buffer<void>> x{"x"}; // of any float type (in_type), widened to float32
    GeneratorOutput<Buffer<uint32_t, 0>> bits{"bits"};

    void configure() { set_storage(x, in()); }

    void generate() {
        const Target target = get_target();
        const Schedule sched = schedule();
        const int lanes = reduction_lanes(sched, target);
        Expr n = x.dim(0).extent();
        // Reading past the end repeats the last element, which cannot change a maximum; Halide's loop
        // partitioning keeps the clamp out of the steady state.
        Func clamped = BoundaryConditions::repeat_edge(x);
        Func magnitude("magnitude");
        Var i("i");
        magnitude(i) = reinterpret<uint32_t>(widen_in(clamped(i))) & u32(0x7fffffffu);

        // Blocks of `lanes` elements (the last one padded by repetition), cut into parallel chunks; a
        // chunk past the last block re-reads that block, which keeps every load dense.
        Expr blocks = (n + lanes - 1) / lanes;
        Expr chunk_blocks = reduction_chunk_blocks(blocks, sched, target);
        Expr chunks = (blocks + chunk_blocks - 1) / chunk_blocks;
        Var lane("lane"), chunk("chunk");
        RDom rb(0, chunk_blocks, "rb");
        Func lane_max("lane_max");
        lane_max(lane, chunk) = cast<uint32_t>(0);
        Expr block = min(chunk * chunk_blocks + rb, blocks - 1);
        lane_max(lane, chunk) = max(lane_max(lane, chunk), magnitude(block * lanes + lane));

        RDom over_chunks(0, chunks, "over_chunks");
        Func lane_total("lane_total");
        lane_total(lane) = cast<uint32_t>(0);
        lane_total(lane) = max(lane_total(lane), lane_max(lane, over_chunks));

        RDom over_lanes(0, lanes, "over_lanes");
        bits() = cast<uint32_t>(0);
        bits() = max(bits(), lane_total(over_lanes));

        schedule_abs_max({lane_max, lane_total, bits, lane, chunk}, n, sched, target);
    }
};

} // namespace
} // namespace bitquant

HALIDE_REGISTER_GENERATOR(bitquant::Map<bitquant::Copy>, copy)
HALIDE_REGISTER_GENERATOR(bitquant::Map<bitquant::Sign>, sign)
HALIDE_REGISTER_GENERATOR(bitquant::Map<bitquant::Heaviside>, heaviside)
HALIDE_REGISTER_GENERATOR(bitquant::Map<bitquant::InputDoReFa>, inputdorefa)
HALIDE_REGISTER_GENERATOR(bitquant::Map<bitquant::WeightDoReFa>, weightdorefa)
HALIDE_REGISTER_GENERATOR(bitquant::Map<bitquant::Progressive>, progressive)
HALIDE_REGISTER_GENERATOR(bitquant::Map<bitquant::Pact>, pact)
HALIDE_REGISTER_GENERATOR(bitquant::PactBackward, pact_backward)
HALIDE_REGISTER_GENERATOR(bitquant::PactAlpha, pact_alpha)
HALIDE_REGISTER_GENERATOR(bitquant::Ste, ste)
HALIDE_REGISTER_GENERATOR(bitquant::ApproxSign, approxsign)
HALIDE_REGISTER_GENERATOR(bitquant::SteHeaviside, steheaviside)
HALIDE_REGISTER_GENERATOR(bitquant::SwishSign, swishsign)
HALIDE_REGISTER_GENERATOR(bitquant::AbsMax, absmax)
HALIDE_REGISTER_GENERATOR(bitquant::WeightDoReFaCount, weightdorefa_count)
HALIDE_REGISTER_GENERATOR(bitquant::WeightDoReFaEstimate, weightdorefa_estimate)
HALIDE_REGISTER_GENERATOR(bitquant::MapSave<bitquant::Copy>, copy_save)
HALIDE_REGISTER_GENERATOR(bitquant::MapSave<bitquant::Sign>, sign_save)
HALIDE_REGISTER_GENERATOR(bitquant::MapSave<bitquant::Heaviside>, heaviside_save)
HALIDE_REGISTER_GENERATOR(bitquant::MapSave<bitquant::InputDoReFa>, inputdorefa_save)
HALIDE_REGISTER_GENERATOR(bitquant::MapSave<bitquant::Progressive>, progressive_save)
HALIDE_REGISTER_GENERATOR(bitquant::SaveBits, save)
HALIDE_REGISTER_GENERATOR(bitquant::GradSaved, backward_saved)
