// The numerics of bitorch's quantizations as Halide expressions (spec/SEMANTICS.md, sections 1-3).
// Algorithms only: no schedule decisions here. Every kernel is compiled with the strict_float target
// feature, so these expressions keep IEEE NaN, infinity and signed-zero behaviour in the order written.
#pragma once

#include "Halide.h"

#include <string>

namespace bitquant {

using Halide::Expr;

// A uint32 constant (Halide's Expr constructors cannot take one unambiguously).
inline Expr u32(uint32_t v) { return Halide::Internal::make_const(Halide::UInt(32), v); }

// The element types of kernels.def's BQ_DTYPE rows, by their spellings in kernel names (f32, f16, bf16, i8,
// b1), as the build passes them (the generators' in_type and out_type).
enum class Element { F32, F16, BF16, I8, B1 };
Element element_named(const std::string &spelling);

// How an element is stored in a kernel's buffer: float16 and bfloat16 as uint16 bits (as the C API holds
// them), int8 as int8, and b1 as uint32 words of 32 packed signs.
Halide::Type storage_type(Element e);

// Whether float16 converts in hardware on the target: F16C on x86 (vcvtph2ps, vcvtps2ph; AVX-512 at full
// width). Elsewhere widen() and narrow() convert with vectorized integer operations: on SSE4.1 and on AArch64
// (whose fcvtl and fcvtn Halide 21 emits only with its arm_fp16 feature, ARMv8.2's half-precision
// arithmetic, which the baseline neon variant does not assume) Halide's own emulation turns NaNs with low
// payload bits into infinities; its CUDA back end fails on bfloat16 and its OpenCL one needs cl_khr_fp16.
// bfloat16 always converts with integer operations: no CPU target here has instructions for it.
bool native_f16(const Halide::Target &target);

// A stored element widened to float32: exact for float16 and bfloat16, whose values are all float32 values.
Expr widen(const Expr &stored, Element e, const Halide::Target &target);

// A float32 result v as element e in its storage type: for float16 and bfloat16 rounded once, to nearest even
// (NaN stays NaN, signs of zero are kept, overflow gives infinity); for int8, the -1 and +1 outputs of the
// sign-valued quantizers, which are exact.
Expr narrow(const Expr &v, Element e, const Halide::Target &target);

// sign_pm1: -1 if x < 0, else +1, so +0, -0 and NaN give +1 (spec section 1).
inline Expr sign_pm1(const Expr &x) { return select(x < 0.0f, -1.0f, 1.0f); }

// |x| <= t for a threshold t >= +0 that is not NaN, false when x is NaN, as an integer comparison of bit
// patterns: on non-negative floats the integer order is the float order, and NaN sorts above +inf.
// (Halide canonicalizes a float a <= b into !(b < a), which is true for NaN even under strict_float, and
// combining that with !is_nan(a) makes LLVM pack and unpack boolean vectors.)
inline Expr abs_le(const Expr &x, const Expr &t) {
    return (Halide::reinterpret<int32_t>(x) & 0x7fffffff) <= Halide::reinterpret<int32_t>(t);
}

// [c] as a float, for bitorch's multiply-masks (spec section 1, "Masks").
inline Expr indicator(const Expr &c) { return select(c, 1.0f, 0.0f); }

// clamp(x, lo, hi) as torch.clamp and hardtanh do it: NaN stays NaN, -0 stays -0.
inline Expr clamp_keep_nan(const Expr &x, float lo, float hi) { return select(x < lo, lo, select(x > hi, hi, x)); }

// tanh, correctly rounded but for rare inputs: tanh(|x|) = -m / (2 + m) with m = expm1(-2|x|), evaluated in
// double, and the sign of x restored. bitorch's own tanh (Sleef's vector tanhf, glibc's scalar tanhf) is
// within 1-2 ulp of this; the spec found that 1 ulp changes no WeightDoReFa output on its data.
// Vectorizes; Halide's own float tanh is a scalar libm call per lane.
Expr tanh_f32(const Expr &x);

// 2^y for -65 <= y <= 0 (or NaN), to 1e-7 relative: 2^y = 2^k * 2^f with k = round(y), f in [-1/2, 1/2],
// 2^f from a degree-6 minimax polynomial (relative error 1.9e-9, 9.6e-8 evaluated in float32), times 2^k.
// Cheaper than Halide's exp, whose last-bit accuracy SwishSign's tolerance does not need.
Expr exp2_small(const Expr &y);

// Its two halves: the reduction to f and 2^k, and the polynomial 2^f.
struct Exp2Parts {
    Expr f, scale;
};
Exp2Parts exp2_reduce(const Expr &y);
Expr exp2_poly(const Expr &f);

// SwishSign's backward core (dx = core * g), spec section 2, with one exp per element: with a = |beta x|,
// e = exp(-a) and sigma = 1 / (1 + e), tanh(a/2) = 2 sigma - 1 and 1 / (1 + cosh a) = 2 sigma (1 - sigma)
// = 2 sigma (e sigma), so core = num * 2 sigma (e sigma) with bitorch's num = beta (2 - a tanh(a/2)).
// Where torch's cosh overflows (a > 89.41599) its result is num / inf, reproduced exactly, NaN included;
// between 87 and there, a tiny value of bitorch's sign (exp(-a) is taken at 87, where it is still normal).
// i is the output's Var: the exp2 polynomial gets a Func of its own over it (see the definition).
Expr swish_grad_core(const Expr &x, const Expr &beta, const Halide::Var &i);

} // namespace bitquant
