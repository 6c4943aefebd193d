"""The comparison with bitorch, shared by the package's tests and tools/peers.py: the cases (every quantization
over bitorch's parameters), bitorch's module for a case, inputs holding the spec's edge values, and the
conformance rule of shared/spec/SEMANTICS.md (section 7): bit for bit with any NaN matching any NaN, except
SwishSign's backward (within 1e-6*|beta|*|g| + 2^-149, NaN in the same places, as tests/reference.h) and
WeightDoReFa forward outputs that torch's own tanh rounding explains. Needs torch (and bitorch for bitorch_module).
"""

import contextlib
import os

import torch

import bitquant

DIRECTIONS = ("forward", "backward", "backward+cancel")
CANCEL_THRESHOLD = 1.0  # bitorch's layers' default (LayerConfig.gradient_cancellation_threshold)


class Case:
    """One quantization in one direction: the registry name and the bq_params fields that differ from
    bitorch's defaults."""

    def __init__(self, quantizer, direction, **params):
        self.quantizer, self.direction, self.params = quantizer, direction, params

    @property
    def threshold(self):
        return CANCEL_THRESHOLD if self.direction == "backward+cancel" else 0.0

    @property
    def variant(self):
        """The parameters as a suffix in the style of `bitquant bench`'s labels ("[8 bits]"); "" for defaults."""
        p = self.params
        words = []
        if "swish_beta" in p:
            words.append(f"beta {p['swish_beta']:g}")
        if "dorefa_bits" in p:
            words.append(f"{p['dorefa_bits']} bits")
        for field, word in (("progressive_scale", "scale"), ("progressive_alpha", "alpha"),
                            ("progressive_beta", "beta")):
            if field in p:
                words.append(f"{word} {p[field]:g}")
        if p.get("training", 1) == 0:
            words.append("eval")
        if "alpha" in p or "bits" in p:
            words.append(f"alpha {p.get('alpha', 10.0):g}, {p.get('bits', 4)} bits")
        return f"[{', '.join(words)}]" if words else ""

    @property
    def label(self):
        return f"{self.quantizer}.{self.direction}{self.variant}"

    def kernel_params(self):
        """The bitquant.Quantizer keyword arguments of the case."""
        return dict(self.params, cancel_threshold=self.threshold)

    def swish_tolerance_scale(self):
        """1e-6*|beta| for SwishSign's backward (beta 0 means bitorch's default 5), None where bits must match."""
        if self.quantizer != "swishsign" or self.direction == "forward":
            return None
        return 1e-6 * abs(self.params.get("swish_beta") or 5.0)

    def __repr__(self):
        return self.label


# bitorch's parameters over the ranges bitquant accepts, by the bq_params field that carries them. scale 0.02
# gives T ~ 0.24; scale 3 gives T = 1.0 in double, so d = bitorch's EPSILON 1e-7.
PARAMETER_CASES = {
    "swish_beta": [{"swish_beta": b} for b in (0.3, 1.0, 10.0, -1.0)],
    "dorefa_bits": [{"dorefa_bits": b} for b in (2, 4, 8, 16, 24)],
    "progressive_scale": [{"progressive_scale": s} for s in (0.02, 0.05, 0.1, 0.5, 1.0, 3.0)]
    + [{"progressive_scale": 0.1, "progressive_alpha": 2.5, "progressive_beta": 3},
       {"progressive_scale": 0.1, "training": 0}],
    # Pact's named parameters, alpha and bits together: the spec's column (1, 2), its reciprocal trap (3, 3),
    # a small clip at many levels and the widest level count.
    "alpha": [{"alpha": a, "bits": b} for a, b in ((1.0, 2), (3.0, 3), (0.25, 8), (6.0, 1), (10.0, 24))],
}


def quantizer_names():
    """The quantizers of the library's kernel table (bq_quantizer_info_at), in its order."""
    return [info.name for info in bitquant.quantizers()]


def checked_cases():
    """Every quantizer of the library with bitorch's defaults and with the parameter cases of the fields it
    reads, in every direction."""
    variants = []
    for info in bitquant.quantizers():
        variants.append((info.name, {}))
        for field in info.params:
            variants += [(info.name, p) for p in PARAMETER_CASES.get(field, [])]
    return [Case(q, d, **p) for q, p in variants for d in DIRECTIONS]


@contextlib.contextmanager
def quiet():
    """stdout to /dev/null: bitorch's SteHeaviside backward prints a line on every call."""
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        yield


def bitorch_quantization(case):
    """bitorch's quantization module for the case, made as a user would, with the registry's class and its own
    constructor arguments (a module-local ProgressiveSign scale); for pact, which is not in the registry,
    bitorch.layers.pact.Pact with its alpha set."""
    from bitorch import quantizations
    p = case.params
    if case.quantizer == "pact":
        from bitorch.layers.pact import Pact
        module = Pact(bits=p.get("bits", 4))
        with torch.no_grad():
            module.alpha.fill_(p.get("alpha", 10.0))
        return module
    fields = bitquant.quantizer_info(case.quantizer).params
    kwargs = {}
    if "progressive_scale" in fields:
        # With the default use_global_scaling=True every instance reads one config value.
        kwargs = {"use_global_scaling": False, "initial_scale": p.get("progressive_scale"),
                  "alpha": p.get("progressive_alpha"), "beta": p.get("progressive_beta")}
    if "swish_beta" in fields:
        kwargs["beta"] = p.get("swish_beta")
    if "dorefa_bits" in fields:
        kwargs["bits"] = p.get("dorefa_bits")
    module = quantizations.quantization_from_name(case.quantizer)(**kwargs)
    module.train(p.get("training", 1) != 0)
    return module


class _Cancelled(torch.nn.Module):
    """QActivation's forward around a module that QActivation does not take (Pact is not a Quantization):
    bitorch's GradientCancellation, then the module."""

    def __init__(self, module, threshold):
        super().__init__()
        self.module, self.threshold = module, threshold

    def forward(self, x):
        from bitorch.layers.qactivation import GradientCancellation
        return self.module(GradientCancellation.apply(x, self.threshold))


def bitorch_module(case):
    """bitorch_quantization(case), inside QActivation for gradient cancellation where the case has it."""
    from bitorch.layers.qactivation import QActivation
    from bitorch.quantizations import Quantization
    module = bitorch_quantization(case)
    if case.threshold > 0:
        # Only a threshold > 0 means what it says: QActivation turns 0 (its default) into 1.0.
        if isinstance(module, Quantization):
            module = QActivation(module, gradient_cancellation_threshold=case.threshold)
        else:
            module = _Cancelled(module, case.threshold)
    return module


def run_module(module, case, x, g):
    """The case's result of a module: its output for a forward, autograd's dx for grad_y = g otherwise (x is
    taken as a new leaf that requires grad, as in training)."""
    leaf = x.detach().requires_grad_()
    with quiet():
        y = module(leaf)
        if case.direction == "forward":
            return y.detach()
        return torch.autograd.grad(y, leaf, g)[0].detach()


def mismatches(ours, theirs, tolerance=None):
    """Positions where the conformance rule fails: equal bits (so the sign of zero counts), or both NaN, or,
    where a tolerance tensor is given, both not NaN and |ours - theirs| <= tolerance."""
    nan_ours, nan_theirs = ours.isnan(), theirs.isnan()
    ok = (ours.view(torch.int32) == theirs.view(torch.int32)) | (nan_ours & nan_theirs)
    if tolerance is not None:
        ok |= ~nan_ours & ~nan_theirs & ((ours - theirs).abs() <= tolerance)
    return (~ok).nonzero().flatten()


def with_correct_tanh(x, bits):
    """WeightDoReFa's forward in bitorch's exact float32 order, but with tanh correctly rounded (from double)."""
    t = torch.tanh(x.double()).float()
    m = t.abs().max()
    levels = float(2 ** bits - 1)
    return 2.0 * (torch.round((t / (2.0 * m) + 0.5) * levels) / levels) - 1.0


def compare(case, ours, theirs, x, g):
    """(mismatching positions, how many differences torch's tanh explains) of ours against bitorch's result.
    The one known cause of a WeightDoReFa forward difference (README, "Numerics"): torch's float tanh is 1 ulp
    off the correctly rounded one on about 0.1% of inputs, which moves a level where the quantization lands on
    a rounding tie. A difference is explained if bitorch's own formula with a correctly rounded tanh gives
    bitquant's bits."""
    scale = case.swish_tolerance_scale()
    # One subnormal ulp on top, for the final product's rounding (as tests/reference.h's rule).
    bad = mismatches(ours, theirs, None if scale is None else scale * g.abs() + 2.0 ** -149)
    if len(bad) and case.quantizer == "weightdorefa" and case.direction == "forward":
        rounded = with_correct_tanh(x, case.params.get("dorefa_bits", 1))
        if len(mismatches(ours[bad], rounded[bad])) == 0:
            return bad[:0], len(bad)
    return bad, 0


def assert_conforms(case, ours, theirs, x, g, label=None):
    """Asserts the conformance rule (compare) holds at every position, listing up to 5 mismatches if not."""
    bad, _ = compare(case, ours, theirs, x, g)
    assert len(bad) == 0, "\n".join([f"{label or case.label}: {len(bad)} mismatches"]
                                     + examples(bad, x, g, ours, theirs))


def show_float(value):
    bits = value.reshape(1).view(torch.int32).item() & 0xFFFFFFFF
    return f"{value.item()!r} (0x{bits:08x})"


def examples(bad, x, g, ours, theirs, limit=5):
    """Up to limit mismatches as text."""
    return [f"x={show_float(x[i])} g={show_float(g[i])}: bitquant {show_float(ours[i])}, "
            f"bitorch {show_float(theirs[i])}" for i in bad[:limit].tolist()]


def edge_inputs(n, seed):
    """x: random values (uniform in [-3, 3], and a quarter spread over every float32 magnitude) with the edge
    values written over its first and last elements (torch's vector bodies and scalar tails differ); g:
    random, 1 under the first edge values (the spec's tables), and specials (+-0, +-inf, NaN) sprinkled in."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.empty(n).uniform_(-3, 3, generator=generator)
    wide = torch.rand(n, generator=generator, dtype=torch.float64) < 0.25
    magnitude = torch.exp2(torch.empty(n, dtype=torch.float64).uniform_(-149, 128, generator=generator))
    signs = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0).double()
    x = torch.where(wide, (signs * magnitude).float(), x)

    inf, nan = float("inf"), float("nan")
    symmetric = [inf, 3.4028234663852886e38, 3e38, 2.0 ** 127, 1.7014117e38, 1.4e37, 1e30, 89.5, 17.9, 2.0, 1.3,
                 1.00000012, 1.0, 0.99999994, 0.5, 0.25, 1e-7, 6e-8, 5.9e-8, 5e-8, 1.1754944e-38, 1e-45, 0.0]
    ties = [(2 * k + 1) / (2 * levels) for levels in (1, 3, 15, 255) for k in range(levels)]
    special = torch.tensor(symmetric + [-v for v in symmetric] + ties + [nan])
    k = min(len(special), n // 2)
    x[:k], x[n - k:] = special[:k], special[:k]

    g = torch.empty(n).uniform_(-2, 2, generator=generator)
    g[:k] = 1.0
    g_special = torch.tensor([0.0, -0.0, inf, -inf, nan, -1e-40])
    sprinkled = g[k:n - k:101]  # a view: writing it writes g
    sprinkled.copy_(g_special.repeat(len(sprinkled) // len(g_special) + 1)[:len(sprinkled)])
    return x, g


# The small bitorch network of the training comparison: (input quantization, weight quantization) per
# configuration, as bitorch's registry names or (name, bq_params) pairs, which the layers get as modules.
NETWORK_CONFIGS = {
    "sign": ("sign", "sign"),
    "approxsign": ("approxsign", "sign"),
    "steheaviside": ("steheaviside", "sign"),
    "dorefa": (("inputdorefa", {"dorefa_bits": 2}), ("weightdorefa", {"dorefa_bits": 2})),
    "swishsign": ("swishsign", "sign"),
}


def _quantization(spec):
    name, params = (spec, {}) if isinstance(spec, str) else spec
    return bitorch_quantization(Case(name, "forward", **params))


def small_network(config, channels=8, hidden=32, size=8, classes=10, seed=0):
    """A float convolution, then QConv2d and QLinear (each with QActivation's gradient cancellation at
    bitorch's default 1.0 on its input, and its weights quantized), between batch norms, for images of
    3 x size x size. The weights come from seed."""
    from bitorch.layers import QConv2d, QLinear
    input_quantization, weight_quantization = NETWORK_CONFIGS[config]
    torch.manual_seed(seed)

    def quantizations():
        return {"input_quantization": _quantization(input_quantization),
                "weight_quantization": _quantization(weight_quantization)}

    return torch.nn.Sequential(
        torch.nn.Conv2d(3, channels, 3, padding=1), torch.nn.BatchNorm2d(channels),
        QConv2d(channels, 2 * channels, 3, padding=1, **quantizations()), torch.nn.BatchNorm2d(2 * channels),
        torch.nn.MaxPool2d(2), torch.nn.Flatten(),
        QLinear(2 * channels * (size // 2) ** 2, hidden, **quantizations()), torch.nn.BatchNorm1d(hidden),
        QLinear(hidden, classes, **quantizations()))


def training_data(batch=16, size=8, classes=10, seed=1):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, 3, size, size, generator=generator)
    return images, torch.randint(0, classes, (batch,), generator=generator)


def train(network, images, labels, steps=20, lr=0.05):
    """steps of SGD with momentum on one batch: the losses, as float32 tensors."""
    optimizer = torch.optim.SGD(network.parameters(), lr=lr, momentum=0.9)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        with quiet():
            loss = torch.nn.functional.cross_entropy(network(images), labels)
            loss.backward()
        optimizer.step()
        losses.append(loss.detach().clone())
    return losses
