"""bitorch on bitquant's kernels, turned on with one line and off with another.

    import bitquant.bitorch
    bitquant.bitorch.patch()         # or: with bitquant.bitorch.patched(): ...
    ...train the bitorch model as before...
    bitquant.bitorch.unpatch()

patch() replaces, at class level, the `quantize` method of bitorch's seven quantizations that compute
something (Sign, ApproxSign, SteHeaviside, SwishSign, InputDoReFa, WeightDoReFa, ProgressiveSign) and
QActivation's `forward`, which then runs its gradient cancellation fused into the quantization's backward, and
the `forward` of bitorch.layers.pact.Pact (bitquant.torch.pact, with its gradient for alpha).
Being class-level, it reaches modules built before the call, deep copies and loaded models, and never gets into
a pickle. Nothing happens on import; patch() and unpatch() are idempotent.

A call goes to the kernels only where they give bitorch's numbers: float32 tensors on the CPU, parameters
the library accepts, and modules whose behaviour is bitorch's own. Everything else is left to bitorch, with
no error: other dtypes and devices (bitorch on CUDA rounds differently from bitorch on the CPU, which
bitquant follows), a ProgressiveSign with a
custom_transform (or a subclass that changes its transform or scale), a subclass that overrides quantize
or forward, modules with forward hooks, and QActivation around anything but these quantizations.
"""

import contextlib
import math
import numbers

CHECKED_VERSIONS = ("0.4.1",)  # the bitorch releases this patch was checked against, bit for bit

_originals = {}  # (class, attribute) -> bitorch's own function, while patched


def _bitorch_version():
    import importlib.metadata
    try:
        return importlib.metadata.version("bitorch")
    except importlib.metadata.PackageNotFoundError:
        import bitorch
        return getattr(bitorch, "__version__", "unknown")


def _finite(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _bits(value):
    """A bit width the kernels have (an int in 1..24), else None."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and 1 <= value <= 24:
        return int(value)
    return None


def _classes():
    """bitorch's classes that the patch reads or replaces, by name."""
    from bitorch import quantizations
    from bitorch.layers.pact import Pact
    from bitorch.layers.qactivation import QActivation
    names = ("ApproxSign", "Identity", "InputDoReFa", "ProgressiveSign", "Sign", "SteHeaviside", "SwishSign",
             "WeightDoReFa", "Quantization")
    return dict({name: getattr(quantizations, name) for name in names}, QActivation=QActivation, Pact=Pact)


def _plans():
    """Per bitorch class: its registry name in bitquant, and the bq_params its instance asks for (None where
    the kernels cannot run it as bitorch does)."""
    c = _classes()
    progressive = c["ProgressiveSign"]

    def swishsign(module):
        return {"swish_beta": float(module.beta)} if _finite(module.beta) else None

    def inputdorefa(module):
        bits = _bits(module.bit_width)
        return None if bits is None else {"dorefa_bits": bits}

    def weightdorefa(module):
        # WeightDoReFa quantizes with its _max_value (2^bits - 1), not bit_width.
        levels = module._max_value
        if not isinstance(levels, numbers.Integral) or levels < 1 or (levels + 1) & levels:
            return None
        bits = _bits((levels + 1).bit_length() - 1)
        return None if bits is None else {"dorefa_bits": bits}

    def progressive_sign(module):
        kind = type(module)
        if module.custom_transform is not None or any(
                getattr(kind, attribute) is not getattr(progressive, attribute)
                for attribute in ("transform", "default_transform", "current_scale")):
            return None
        if not module.training:
            return {"training": 0}
        scale, alpha, beta = module.current_scale, module.alpha, module.beta
        # bitquant reads beta = 0 as bitorch's default 10, where bitorch has already resolved `beta or 10`.
        if not (_finite(scale) and _finite(alpha) and _finite(beta)) or alpha <= 0 or beta == 0:
            return None
        return {"progressive_scale": float(scale), "progressive_alpha": float(alpha),
                "progressive_beta": float(beta), "training": 1}

    return {c["Sign"]: ("sign", lambda m: {}), c["ApproxSign"]: ("approxsign", lambda m: {}),
            c["SteHeaviside"]: ("steheaviside", lambda m: {}), c["SwishSign"]: ("swishsign", swishsign),
            c["InputDoReFa"]: ("inputdorefa", inputdorefa), c["WeightDoReFa"]: ("weightdorefa", weightdorefa),
            progressive: ("progressive_sign", progressive_sign)}


def _runnable(x):
    """float32 CPU tensors: where bitquant's kernels give bitorch's CPU numbers bit for bit. bitorch on CUDA
    rounds differently (torch divides by a scalar as a * (1/b) there, and its tanh differs), so CUDA tensors
    stay with bitorch."""
    import torch
    return isinstance(x, torch.Tensor) and x.dtype == torch.float32 and x.device.type == "cpu"


def _run(x, name, params):
    """bitquant's kernels on x, or None where the library refuses the parameters (bitorch runs it then)."""
    import bitquant
    import bitquant.torch
    try:
        return bitquant.torch.quantize(x, name, **params)
    except bitquant.Error:
        return None


def _patched_quantize(original, name, planner):
    def quantize(self, x):
        params = planner(self) if _runnable(x) else None
        y = None if params is None else _run(x, name, params)
        return original(self, x) if y is None else y
    quantize.__wrapped__ = original
    quantize.__doc__ = original.__doc__
    return quantize


def _hooked(module):
    from torch.nn.modules import module as nn_module
    return bool(module._forward_hooks or module._forward_pre_hooks or nn_module._global_forward_hooks
                or nn_module._global_forward_pre_hooks)


def _patched_qactivation_forward(original, plans):
    c = _classes()
    identity, base_forward = c["Identity"], c["Quantization"].forward

    def forward(self, input_tensor):
        threshold = self.gradient_cancellation_threshold
        activation = self.activation_function
        kind = type(activation)
        plan = None
        if _finite(threshold) and threshold > 0 and _runnable(input_tensor) and kind.forward is base_forward \
                and not _hooked(activation):
            if kind.quantize is identity.quantize:
                plan = ("identity", {})
            else:
                # The class's quantize must be one of ours (a subclass overriding it is left to bitorch).
                for cls, (name, planner) in plans.items():
                    if kind.quantize is cls.__dict__["quantize"] and isinstance(activation, cls):
                        params = planner(activation)
                        plan = None if params is None else (name, params)
                        break
        y = None if plan is None else _run(input_tensor, plan[0], dict(plan[1], cancel_threshold=float(threshold)))
        return original(self, input_tensor) if y is None else y
    forward.__wrapped__ = original
    forward.__doc__ = original.__doc__
    return forward


def _patched_pact_forward(original):
    def forward(self, x):
        import torch
        import bitquant
        import bitquant.torch
        alpha, bits, y = self.alpha, _bits(self.bits), None
        if _runnable(x) and bits is not None and isinstance(alpha, torch.Tensor) and alpha.numel() == 1 \
                and alpha.dtype == torch.float32 and alpha.device.type == "cpu":
            try:
                y = bitquant.torch.pact(x, alpha, bits)
            except bitquant.Error:
                y = None  # an alpha the library refuses (not finite, or <= 0): bitorch's own
        return original(self, x) if y is None else y
    forward.__wrapped__ = original
    forward.__doc__ = original.__doc__
    return forward


def is_patched():
    return bool(_originals)


def patch():
    """Routes bitorch's quantizations to bitquant's kernels (idempotent). RuntimeError for a bitorch version
    the patch was not checked against."""
    if _originals:
        return
    version = _bitorch_version()
    if version not in CHECKED_VERSIONS:
        raise RuntimeError(f"bitquant.bitorch: bitorch {version} is installed, but the patch was checked only "
                           f"against bitorch {', '.join(CHECKED_VERSIONS)}; nothing was patched")
    plans = _plans()
    qactivation, pact = _classes()["QActivation"], _classes()["Pact"]
    replacements = [(cls, "quantize", _patched_quantize(cls.__dict__["quantize"], name, planner))
                    for cls, (name, planner) in plans.items()]
    replacements.append((qactivation, "forward", _patched_qactivation_forward(qactivation.__dict__["forward"], plans)))
    replacements.append((pact, "forward", _patched_pact_forward(pact.__dict__["forward"])))
    for cls, attribute, function in replacements:
        _originals[(cls, attribute)] = cls.__dict__[attribute]
        setattr(cls, attribute, function)


def unpatch():
    """Restores bitorch's own functions (idempotent)."""
    while _originals:
        (cls, attribute), function = _originals.popitem()
        setattr(cls, attribute, function)


@contextlib.contextmanager
def patched():
    """patch() for the block; afterwards the state before it (patched stays patched)."""
    was = is_patched()
    patch()
    try:
        yield
    finally:
        if not was:
            unpatch()
