#include "quantize_math.h"

namespace bitquant {

using namespace Halide;

namespace {

// expm1(z) for z <= 0 (or NaN): z = k*ln2 + r with |r| <= ln2/2, expm1(z) = 2^k * expm1(r) + (2^k - 1).
// The degree-8 Taylor polynomial of expm1(r) is accurate to 6e-10 relative on that range.
Expr expm1_nonpositive(const Expr &z) {
    Expr k = round(z * 1.44269504088896341f);
    Expr r = (z - k * 0.693145751953125f) - k * 1.42860682030941723e-6f;
    // c2 + c3 r + ... + c8 r^6 with c_i = 1/i!, by Estrin's scheme (half the latency of Horner's).
    Expr r2 = r * r;
    Expr r4 = r2 * r2;
    Expr q23 = 0.5f + r * (1.0f / 6.0f);
    Expr q45 = 1.0f / 24.0f + r * (1.0f / 120.0f);
    Expr q678 = (1.0f / 720.0f + r * (1.0f / 5040.0f)) + r2 * (1.0f / 40320.0f);
    Expr poly = (q23 + r2 * q45) + r4 * q678;
    Expr p = r + r2 * poly;
    // Below -17.4, expm1 rounds to -1; there k >= -26, so 2^k is a normal float.
    Expr clamped_k = cast<int32_t>(max(k, -26.0f));
    Expr scale = reinterpret<float>((clamped_k + 127) << 23);
    return select(z < -17.4f, -1.0f, scale * p + (scale - 1.0f));
}

// 2^y for -65 <= y <= 0 (or NaN), to 1e-7 relative: 2^y = 2^k * 2^f with k = round(y), f in [-1/2, 1/2],
// 2^f from a degree-6 minimax polynomial (relative error 1.9e-9, 9.6e-8 evaluated in float32), and 2^k
// added to the exponent field. Cheaper than Halide's exp, whose last-bit accuracy SwishSign's tolerance
// does not need.
Expr exp2_small(const Expr &y) {
    Expr k = round(y);
    Expr f = y - k;
    // Estrin's scheme: half the dependent latency of Horner's, which is what limits this kernel.
    Expr f2 = f * f;
    Expr p01 = 1.0f + 0.693147182f * f;
    Expr p23 = 0.240226462f + 0.0555032864f * f;
    Expr p45 = 0.00961848907f + 0.00133999309f * f;
    Expr p456 = p45 + 0.000153458124f * f2;
    Expr poly = p01 + f2 * (p23 + f2 * p456);
    return reinterpret<float>(reinterpret<int32_t>(poly) + (cast<int32_t>(k) << 23));
}

}  // namespace

Expr tanh_f32(const Expr &x) {
    Expr bits = reinterpret<uint32_t>(x);
    Expr ax = abs(x);
    Expr m = expm1_nonpositive(-2.0f * ax);
    Expr t = abs(-m / (2.0f + m));
    return reinterpret<float>(reinterpret<uint32_t>(t) | (bits & u32(0x80000000u)));
}

Expr swish_grad_core(const Expr &x, const Expr &beta) {
    // Largest float a with coshf(a) finite (glibc). Above it torch computes num / inf; with s = 0 the
    // expression below computes exactly that: inner = 2 - a, so (beta * (2 - a)) * 0 * 0 / 1 is a signed
    // zero, or NaN where beta * (2 - a) overflowed, as bitorch's num does.
    const float cosh_finite_max = 89.4159851f;
    Expr a = abs(beta * x);
    // s = exp(-a/2). y = a * (-log2(e)/2) rounds with relative error 6e-8, which moves s by at most
    // 4e-6 relative at a = 89, where the result is below 1e-36 and the tolerance is 1e-6 * beta.
    Expr s = select(a > cosh_finite_max, 0.0f, exp2_small(a * -0.721347520f));
    Expr e = s * s;
    Expr one_plus_e = 1.0f + e;
    Expr inner = 2.0f * one_plus_e - a * (1.0f - e);
    return (((beta * inner) * s) * (2.0f * s)) / (one_plus_e * one_plus_e * one_plus_e);
}

}  // namespace bitquant
