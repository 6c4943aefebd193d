// Quantizers for tests/test_custom.c, compiled by bitquant_add_quantizers as a user's would be: one with two
// parameters read by both passes, one with none. test_custom.c holds their scalar references.
#include "custom_quantizer.h"

namespace {

using Halide::Expr;

// forward: sign(x) * scale + bias (sign: -1 for x < 0, else +1, so NaN gives +1); backward: g * [|x| <= scale]
// (a multiply-mask, false for NaN x).
struct ScaledSign : bitquant::CustomQuantizer {
    std::vector<bitquant::ParamDecl> params() const override {
        return {bitquant::positive_param("scale", 1.0), bitquant::real_param("bias", 0.0, -10.0, 10.0)};
    }
    Expr forward(const Expr &x, const std::vector<Expr> &p) const override {
        return bitquant::sign_pm1(x) * p[0] + p[1];
    }
    Expr backward(const Expr &x, const Expr &g, const std::vector<Expr> &p) const override {
        return g * bitquant::indicator(bitquant::abs_le(x, p[0]));
    }
};

// forward: round half to even; backward: g (straight through).
struct RoundSte : bitquant::CustomQuantizer {
    Expr forward(const Expr &x, const std::vector<Expr> &) const override { return Halide::round(x); }
    Expr backward(const Expr &, const Expr &g, const std::vector<Expr> &) const override { return g; }
};

} // namespace

BITQUANT_REGISTER_QUANTIZER(ScaledSign, scaled_sign)
BITQUANT_REGISTER_QUANTIZER(RoundSte, round_ste)
