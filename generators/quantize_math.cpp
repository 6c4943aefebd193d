#include "quantize_math.h"

#include <cstring>

namespace bitquant {

using namespace Halide;

namespace {

// A float64 constant, built from its bit pattern: Halide 21's OpenCL code generator prints a FloatImm of
// type double through a float32 (so 6755399441056767.0 would lose its low bits), a bit pattern it prints
// exactly. The CPU and PTX code generators fold it back into the same constant.
Expr f64(double v) {
    uint64_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    return reinterpret<double>(Internal::make_const(UInt(64), bits));
}

// expm1(z) in double for z <= 0 (or NaN): z = k*ln2 + r with |r| <= ln2/2, expm1(z) = 2^k * expm1(r) +
// (2^k - 1), and expm1(r) from its Taylor polynomial to degree 11 (truncation 2e-14 relative).
Expr expm1_nonpositive_f64(const Expr &z) {
    Expr k = round(z * f64(1.4426950408889634));
    Expr r = (z - k * f64(6.93147180369123816490e-01)) - k * f64(1.90821492927058770002e-10);
    // c2 + c3 r + ... + c11 r^9 with c_i = 1/i!, by Estrin's scheme (half the latency of Horner's).
    double c[12] = {1.0, 1.0};
    for (int i = 2; i < 12; i++)
        c[i] = c[i - 1] / i;
    Expr r2 = r * r;
    Expr r4 = r2 * r2;
    Expr r8 = r4 * r4;
    Expr q23 = f64(c[2]) + r * f64(c[3]);
    Expr q45 = f64(c[4]) + r * f64(c[5]);
    Expr q67 = f64(c[6]) + r * f64(c[7]);
    Expr q89 = f64(c[8]) + r * f64(c[9]);
    Expr q1011 = f64(c[10]) + r * f64(c[11]);
    Expr poly = ((q23 + r2 * q45) + r4 * (q67 + r2 * q89)) + r8 * q1011;
    Expr p = r + r2 * poly;
    // 2^k: adding 1.5 * 2^52 + 1023 leaves k + 1023 in the low mantissa bits, and the shift moves them
    // into the exponent field (x86 before AVX-512 has no vector double-to-int64 conversion). Below -40,
    // expm1 rounds to -1 in double; above it k >= -58 and 2^k is a normal double.
    Expr biased = reinterpret<uint64_t>(max(k, f64(-60.0)) + f64(6755399441056767.0));
    Expr scale = reinterpret<double>(biased << 52);
    return select(z < f64(-40.0), f64(-1.0), scale * p + (scale - f64(1.0)));
}

} // namespace

Element element_named(const std::string &spelling) {
    static const std::pair<const char *, Element> names[] = {
        {"f32", Element::F32}, {"f16", Element::F16}, {"bf16", Element::BF16}, {"i8", Element::I8}, {"b1", Element::B1}};
    for (const auto &n : names) {
        if (spelling == n.first) return n.second;
    }
    throw CompileError("unknown element type '" + spelling + "' (known: f32, f16, bf16, i8, b1)");
}

Type storage_type(Element e) {
    switch (e) {
    case Element::F32:
        return Float(32);
    case Element::F16:
    case Element::BF16:
        return UInt(16);
    case Element::I8:
        return Int(8);
    case Element::B1:
        break;
    }
    return UInt(32);
}

bool native_f16(const Target &target) {
    return !target.has_gpu_feature() && target.arch == Target::X86 && target.has_feature(Target::F16C);
}

namespace {

// binary16 bits to float32. Normal numbers move their exponent from bias 15 to 127 and their fraction up 13
// bits; infinities and NaNs keep their fraction (a NaN stays a NaN); subnormals m 2^-24 are computed in
// float, exactly (m < 2^10).
Expr f16_bits_to_float(const Expr &h) {
    Expr u = cast<uint32_t>(h);
    Expr sign = (u & u32(0x8000)) << 16;
    Expr exponent = (u >> 10) & u32(0x1f), fraction = u & u32(0x3ff);
    Expr normal = sign | ((exponent + u32(112)) << 23) | (fraction << 13);
    Expr special = sign | u32(0x7f800000) | (fraction << 13);
    Expr subnormal = sign | reinterpret<uint32_t>(cast<float>(fraction) * 5.9604644775390625e-8f);
    return reinterpret<float>(select(exponent == 0, subnormal, select(exponent == 31, special, normal)));
}

// float32 to binary16 bits, to nearest even. Below 2^-14 (subnormal halves): adding 0.5 puts |v|'s bits of
// weight 2^-24 and up in the low fraction bits of the sum, which the addition rounds to nearest even; then
// the sum's bits less 0.5's are the half's. Normal: the exponent rebiased and 13 fraction bits dropped,
// rounding to nearest even by adding 0xfff plus the last kept bit. From 65520 up, infinity; NaN, a quiet NaN.
Expr float_to_f16_bits(const Expr &v) {
    Expr u = reinterpret<uint32_t>(v);
    Expr sign = (u >> 16) & u32(0x8000);
    Expr a = u & u32(0x7fffffff);
    Expr small = reinterpret<uint32_t>(reinterpret<float>(a) + 0.5f) - u32(0x3f000000);
    Expr normal = (a + u32(0xc8000fff) + ((a >> 13) & u32(1))) >> 13;
    Expr magnitude = select(a > u32(0x7f800000), u32(0x7e00) | ((a >> 13) & u32(0x3ff)),
                            select(a >= u32(0x477ff000), u32(0x7c00), select(a < u32(0x38800000), small, normal)));
    return cast<uint16_t>(sign | magnitude);
}

// float32 to bfloat16 bits, to nearest even: add 0x7fff plus the last kept bit, keep the upper half (a carry
// into the exponent gives the next binade, or infinity); NaN, a quiet NaN.
Expr float_to_bf16_bits(const Expr &v) {
    Expr u = reinterpret<uint32_t>(v);
    Expr rounded = (u + u32(0x7fff) + ((u >> 16) & u32(1))) >> 16;
    return cast<uint16_t>(select((u & u32(0x7fffffff)) > u32(0x7f800000), (u >> 16) | u32(0x40), rounded));
}

} // namespace

Expr widen(const Expr &stored, Element e, const Target &target) {
    switch (e) {
    case Element::F32:
        return stored;
    case Element::BF16:
        return reinterpret<float>(cast<uint32_t>(stored) << 16);
    case Element::F16:
        return native_f16(target) ? cast<float>(reinterpret(Float(16), stored)) : f16_bits_to_float(stored);
    default:
        return cast<float>(stored);
    }
}

Expr narrow(const Expr &v, Element e, const Target &target) {
    switch (e) {
    case Element::F32:
        return v;
    case Element::BF16:
        return float_to_bf16_bits(v);
    case Element::F16:
        return native_f16(target) ? reinterpret<uint16_t>(cast(Float(16), v)) : float_to_f16_bits(v);
    default:
        return cast(storage_type(e), v);
    }
}

Exp2Parts exp2_reduce(const Expr &y) {
    // Adding 1.5 * 2^23 + 127 rounds y + 127 to an integer (to even, as round() does) and leaves it in the
    // low mantissa bits: no round instruction (which LLVM splits into 256-bit halves on AVX-512) and no
    // conversion. Subtracting the constant again gives k exactly, and the shift moves k + 127 into the
    // exponent field: 2^k as a float. A NaN y makes f NaN.
    const float magic = 12583039.0f; // 1.5 * 2^23 + 127
    Expr shifted = y + magic;
    Expr k = shifted - magic;
    return {y - k, reinterpret<float>(reinterpret<int32_t>(shifted) << 23)};
}

Expr exp2_poly(const Expr &f) {
    // Estrin's scheme: shorter dependency chains than Horner's (10% faster here).
    Expr f2 = f * f;
    Expr f4 = f2 * f2;
    Expr p01 = 1.0f + 0.693147182f * f;
    Expr p23 = 0.240226462f + 0.0555032864f * f;
    Expr p45 = 0.00961848907f + 0.00133999309f * f;
    return (p01 + f2 * p23) + f4 * (p45 + f2 * 0.000153458124f);
}

Expr exp2_small(const Expr &y) {
    Exp2Parts parts = exp2_reduce(y);
    return exp2_poly(parts.f) * parts.scale;
}

Expr tanh_f32(const Expr &x) {
    Expr a = cast<double>(abs(x));
    Expr m = expm1_nonpositive_f64(f64(-2.0) * a);
    Expr t = cast<float>(abs(-m / (f64(2.0) + m))); // correctly rounded but for ~1e-14 relative error
    return reinterpret<float>(reinterpret<uint32_t>(t) | (reinterpret<uint32_t>(x) & u32(0x80000000u)));
}

Expr swish_grad_core(const Expr &x, const Expr &beta, const Var &i) {
    // Largest float a with coshf(a) finite (glibc). Above it torch computes num / inf; with s = 0 there,
    // sigma = 1 and w = 0, so num * w is that signed zero, or NaN where num overflowed, as in bitorch.
    const float cosh_finite_max = 89.4159851f;
    Expr a = abs(beta * x);
    // Below it, bitorch's w = 1 / (1 + cosh a) is tiny but not zero (so g = inf gives inf, not NaN), and past
    // a = 87.3 exp(-a) would be subnormal: on Intel CPUs each vector operation with a subnormal lane costs a
    // microcode assist (x in [-30, 30] ran 5x slower). So s is computed from min(a, 87): e stays normal
    // (>= 2^-125.5), w stays positive, and the result, below 1e-33 there, stays far inside the tolerance of
    // 1e-6 * beta. The clamp also keeps the lanes the select discards inside exp2_small's domain. The integer
    // min of the bits is one instruction; it maps a NaN a to 87, and a NaN x still gives NaN through num.
    Expr a_clamped = reinterpret<float>(min(reinterpret<int32_t>(a), reinterpret<int32_t>(Expr(87.0f))));
    // s = exp(-a/2). y = a * (-log2(e)/2) rounds with relative error 6e-8, which moves s by at most
    // 4e-6 relative at a = 87, where the result is below 1e-33.
    // On CPU targets this family is built without the strict_float target feature, and the generator wraps
    // the whole gradient in strict_float() (GradGenerator): everything is strict but this polynomial,
    // defined in a Func of its own so that the wrapping stops at its call. Its input f is always finite
    // (a_clamped is), so LLVM's fast-math assumptions hold for it, and LLVM contracts it into FMA: 20%
    // faster on AVX-512 in cache. Reassociated or fused, it stays well within the tolerance.
    Exp2Parts parts = exp2_reduce(a_clamped * -0.721347520f);
    Func poly("swish_exp2_poly");
    poly(i) = exp2_poly(strict_float(parts.f));
    Expr s = select(a > cosh_finite_max, 0.0f, poly(i) * parts.scale);
    Expr e = s * s; // exp(-a), or exp(-87) past 87
    Expr sigma = 1.0f / (1.0f + e);
    Expr two_sigma = sigma + sigma;
    Expr num = beta * (2.0f - a * (two_sigma - 1.0f)); // tanh(a/2) = 2 sigma - 1; bitx tanh(bx/2) = a tanh(a/2)
    Expr w = two_sigma * (e * sigma);                  // 1 / (1 + cosh a) = 2 sigma (1 - sigma)
    return num * w;
}

} // namespace bitquant
