// Users' own quantizers: what a quantizer's author writes, compiled by bitquant_add_quantizers (CMake) with the
// same generator stage and schedules as bitquant's built-ins, for every CPU variant of the installed library.
//
//     #include "custom_quantizer.h"
//     struct Ternary : bitquant::CustomQuantizer {
//         std::vector<bitquant::ParamDecl> params() const override {
//             return {bitquant::positive_param("threshold", 0.5)};
//         }
//         Halide::Expr forward(const Halide::Expr &x, const std::vector<Halide::Expr> &p) const override {
//             return Halide::select(x > p[0], 1.0f, Halide::select(x < -p[0], -1.0f, 0.0f));
//         }
//         Halide::Expr backward(const Halide::Expr &, const Halide::Expr &g,
//                               const std::vector<Halide::Expr> &) const override { return g; }
//     };
//     BITQUANT_REGISTER_QUANTIZER(Ternary, ternary)
//
// forward and backward get x (and g) as float32 expressions, one element each, and p[k], the k-th declared
// parameter, as a float32 expression that is the same for every element; they return float32. The kernels are
// compiled with Halide's strict_float, so the expressions keep IEEE NaN, infinity and signed zeros in the order
// written; quantize_math.h has helpers that get bitorch's edge cases right (abs_le, indicator, sign_pm1,
// clamp_keep_nan: Halide turns a float a <= b into !(b < a), which is true for NaN). The backward gets
// QActivation's gradient cancellation fused after it, as the built-ins do (where the caller's
// cancel_threshold > 0: +0 wherever |x| > threshold or x is NaN).
#pragma once

#include "Halide.h"
#include "quantize_math.h"

#include <memory>
#include <string>
#include <vector>

namespace bitquant {

// A named parameter (bq_param_info in bitquant.h): its default and the values bq_create_named accepts.
struct ParamDecl {
    enum class Kind { Real = 0, Positive = 1, Integer = 2 }; // bq_param_kind's values
    std::string name;
    double default_value;
    double min_value, max_value; // for Real and Integer
    Kind kind;
};
// A finite float32 value in [min, max].
inline ParamDecl real_param(const std::string &name, double default_value, double min_value, double max_value) {
    return {name, default_value, min_value, max_value, ParamDecl::Kind::Real};
}
// A finite float32 value > 0.
inline ParamDecl positive_param(const std::string &name, double default_value) {
    return {name, default_value, 0.0, 0.0, ParamDecl::Kind::Positive};
}
// An integer in [min, max] (the kernels see it as a float32).
inline ParamDecl integer_param(const std::string &name, double default_value, double min_value, double max_value) {
    return {name, default_value, min_value, max_value, ParamDecl::Kind::Integer};
}

class CustomQuantizer {
  public:
    virtual ~CustomQuantizer() = default;
    // The named parameters, in the order p[] holds them (at most 15, BQ_MAX_NAMED_PARAMS).
    virtual std::vector<ParamDecl> params() const { return {}; }
    virtual Halide::Expr forward(const Halide::Expr &x, const std::vector<Halide::Expr> &p) const = 0;
    virtual Halide::Expr backward(const Halide::Expr &x, const Halide::Expr &g,
                                  const std::vector<Halide::Expr> &p) const = 0;
};

using QuantizerFactory = std::unique_ptr<CustomQuantizer> (*)();
// Registers a quantizer class under a name with the generator (BITQUANT_REGISTER_QUANTIZER does it at static
// initialization); returns true.
bool register_custom_quantizer(const char *name, QuantizerFactory make);

} // namespace bitquant

// Registers Class (a CustomQuantizer with a default constructor) as the quantizer `name`, the name that
// bq_create then takes (1 to 63 of a-z, 0-9 and _, starting with a letter).
#define BITQUANT_REGISTER_QUANTIZER(Class, name)                                                                     \
    static const bool bitquant_registered_##name = ::bitquant::register_custom_quantizer(                           \
        #name, []() -> std::unique_ptr<::bitquant::CustomQuantizer> { return std::unique_ptr<Class>(new Class); });
