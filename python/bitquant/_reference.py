"""The reference path of bitquant.torch.quantize: bitorch 0.4.1's formulas as torch operations, for the
dtypes and devices the kernels do not run (float64, or a device without a bitquant backend). Each step is
bitorch's own (shared/spec/SEMANTICS.md), in x's dtype, so the results are bitorch's on that dtype and device.
"""

import torch

EPSILON = 1e-7  # bitorch's ProgressiveSign floor of its divisor


def _sign(x):
    s = torch.sign(x)
    return torch.where(s == 0, torch.ones((), dtype=x.dtype, device=x.device), s)


def forward(name, x, p):
    """y = quantize(x); p: the Quantizer's parameters (bq_params fields, defaults filled in)."""
    if name == "identity":
        return x.clone()
    if name in ("sign", "approxsign", "swishsign"):
        return _sign(x)
    if name == "steheaviside":
        one = torch.ones((), dtype=x.dtype, device=x.device)
        return torch.where(x > 0, one, -one)
    if name == "inputdorefa":
        levels = 2 ** p["dorefa_bits"] - 1
        return torch.round(torch.clamp(x, 0, 1) * levels) / levels
    if name == "weightdorefa":
        if x.numel() == 0:
            return x.clone()  # no global max (bitorch's torch.max raises on an empty tensor)
        levels = 2 ** p["dorefa_bits"] - 1
        squashed = torch.tanh(x)
        adjusted = squashed / (2.0 * torch.max(torch.abs(squashed))) + 0.5
        return 2.0 * (torch.round(adjusted * levels) / levels) - 1.0
    if name == "progressive_sign":
        if not p["training"]:
            return _sign(x)
        beta = p["progressive_beta"] or 10.0
        temperature = 1 - p["progressive_alpha"] ** (-beta * p["progressive_scale"])
        return torch.nn.functional.hardtanh(x / max(1.0 - temperature, EPSILON))
    if name == "pact":
        # alpha as bitorch holds it, a float32 Parameter: the scale is a float32 scalar whatever x's dtype.
        alpha = torch.tensor(p["alpha"], dtype=torch.float32, device=x.device)
        scale = (2 ** int(p["bits"]) - 1) / alpha  # int / Tensor: alpha.reciprocal() * L, as bitorch
        return torch.round(torch.clamp(x, 0, alpha.item()) * scale) / scale
    raise NotImplementedError(f"bitquant: no reference for {name}")


def backward(name, x, g, p):
    """grad_x for grad_y = g, gradient cancellation (p["cancel_threshold"] > 0) included."""
    if name == "approxsign":
        dx = (2.0 - 2.0 * torch.abs(x)) * (torch.abs(x) <= 1) * g
    elif name == "steheaviside":
        dx = g * (torch.abs(x) <= 1)
    elif name == "swishsign":
        beta = torch.tensor(p["swish_beta"] or 5.0, device=x.device)
        dx = (beta * (2 - beta * x * torch.tanh(beta * x / 2))) / (1 + torch.cosh(beta * x)) * g
    elif name == "pact":
        alpha = torch.tensor(p["alpha"], dtype=torch.float32, device=x.device)
        dx = g * (~((x < 0) | (x > alpha))).to(g.dtype)
    else:
        dx = g
    threshold = p["cancel_threshold"]
    if threshold > 0:
        dx = torch.where(torch.abs(x) <= torch.tensor(threshold, device=x.device), dx,
                         torch.tensor(0.0, device=x.device))
    return dx


class Function(torch.autograd.Function):
    """The reference as an autograd function: forward(x, name, params), bitorch's backward."""

    @staticmethod
    def forward(ctx, x, name, params):
        ctx.name, ctx.params = name, params
        ctx.save_for_backward(x)
        return forward(name, x, params)

    @staticmethod
    def backward(ctx, grad):
        x, = ctx.saved_tensors
        return backward(ctx.name, x, grad, ctx.params), None, None


class Pact(torch.autograd.Function):
    """Pact with a learnable alpha, bitorch's PactActFn with gradient cancellation before it (as QActivation
    would put it): forward(x, alpha, bits, threshold) -> y; backward gives grad_x and grad_alpha."""

    @staticmethod
    def forward(ctx, x, alpha, bits, threshold):
        p = {"alpha": alpha.item(), "bits": bits, "cancel_threshold": threshold}
        ctx.params = p
        ctx.save_for_backward(x, alpha)
        return forward("pact", x, p)

    @staticmethod
    def backward(ctx, grad):
        x, alpha = ctx.saved_tensors
        grad_alpha = torch.sum(grad * torch.ge(x, alpha).to(grad.dtype)).reshape(alpha.shape).to(alpha.dtype)
        return backward("pact", x, grad, ctx.params), grad_alpha, None, None
