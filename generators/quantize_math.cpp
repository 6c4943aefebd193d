#include "quantize_math.h"

namespace bitquant {

using namespace Halide;

namespace {

// expm1(z) for z <= 0 (or NaN): z = k*ln2 + r with |r| <= ln2/2, expm1(z) = 2^k * expm1(r) + (2^k - 1).
// The degree-8 Taylor polynomial of expm1(r) is accurate to 6e-10 relative on that range.
Expr expm1_nonpositive(const Expr &z) {
    Expr k = round(z * 1.44269504088896341f);
    Expr r = (z - k * 0.693145751953125f) - k * 1.42860682030941723e-6f;
    Expr poly = 1.0f / 40320.0f;
    for (float c : {1.0f / 5040.0f, 1.0f / 720.0f, 1.0f / 120.0f, 1.0f / 24.0f, 1.0f / 6.0f, 0.5f}) {
        poly = poly * r + c;
    }
    Expr p = r + (r * r) * poly;
    // Below -17.4, expm1 rounds to -1; there k >= -26, so 2^k is a normal float.
    Expr clamped_k = cast<int32_t>(max(k, -26.0f));
    Expr scale = reinterpret<float>((clamped_k + 127) << 23);
    return select(z < -17.4f, -1.0f, scale * p + (scale - 1.0f));
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
    // Largest float a with coshf(a) finite (glibc); above it torch computes num / inf.
    const float cosh_finite_max = 89.4159851f;
    Expr a = abs(beta * x);
    Expr s = exp(a * -0.5f);  // e = s*s; s itself never underflows where it is used
    Expr e = s * s;
    Expr one_plus_e = 1.0f + e;
    Expr inner = 2.0f * one_plus_e - a * (1.0f - e);
    Expr finite_den = (((beta * inner) * s) * (2.0f * s)) / (one_plus_e * one_plus_e * one_plus_e);
    Expr infinite_den = (beta * (2.0f - a)) * 0.0f;  // num / inf: a signed zero, or NaN if num overflowed
    return select(a > cosh_finite_max, infinite_den, finite_den);
}

}  // namespace bitquant
