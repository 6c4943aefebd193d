// Two quantizers of this example's own, compiled by bitquant_add_quantizers for every CPU variant of the
// installed bitquant: a ternary quantizer, and bitorch's MixLinearScheduling blend of identity and sign.
#include "custom_quantizer.h"

namespace {

using Halide::Expr;

// ternary: +1 above threshold, -1 below -threshold, else 0 (NaN gives 0); the straight-through backward.
struct Ternary : bitquant::CustomQuantizer {
    std::vector<bitquant::ParamDecl> params() const override {
        return {bitquant::real_param("threshold", 0.5, 0.0, 3.4028234663852886e38)};
    }
    Expr forward(const Expr &x, const std::vector<Expr> &p) const override {
        return Halide::select(x > p[0], 1.0f, Halide::select(x < -p[0], -1.0f, 0.0f));
    }
    Expr backward(const Expr &, const Expr &g, const std::vector<Expr> &) const override { return g; }
};

// sign_blend: MixLinearScheduling([identity, sign]) at factor f, as bitorch computes it,
// y = sign(x) * f + x * (1 - f) (sign: -1 for x < 0, else +1); the backward is what autograd gives through
// that sum with each branch straight-through: g * f + g * (1 - f). f is a float32, 1 - f is taken in float32.
struct SignBlend : bitquant::CustomQuantizer {
    std::vector<bitquant::ParamDecl> params() const override {
        return {bitquant::real_param("factor", 0.0, 0.0, 1.0)};
    }
    Expr forward(const Expr &x, const std::vector<Expr> &p) const override {
        return bitquant::sign_pm1(x) * p[0] + x * (1.0f - p[0]);
    }
    Expr backward(const Expr &, const Expr &g, const std::vector<Expr> &p) const override {
        return g * p[0] + g * (1.0f - p[0]);
    }
};

} // namespace

BITQUANT_REGISTER_QUANTIZER(Ternary, ternary)
BITQUANT_REGISTER_QUANTIZER(SignBlend, sign_blend)
