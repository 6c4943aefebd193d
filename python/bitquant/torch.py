"""bitquant for torch: an autograd-aware quantize() on bitquant's kernels.

    import bitquant.torch as bqt
    y = bqt.quantize(x, "steheaviside", cancel_threshold=1.0)   # differentiable; backward on the kernels

What runs where:
- CPU tensors of float32, float16 or bfloat16: the kernels (the typed calls for 16-bit types, which round once;
  see the C header's bq_dtype). The forward keeps for the backward only the bits it needs of x where the
  quantizer allows it (bq_forward_save: 0, 1 or 2 bits an element instead of x), else x itself.
- CUDA tensors, where the library has a CUDA device: bq_cuda_* on torch's current stream. UNTESTED: no GPU
  has run this path yet.
- Anything else (float64, other devices, or CUDA without a device): the reference path, bitorch's formulas as
  torch operations, with no error.
Inputs that are not contiguous are made contiguous. On torch >= 2.4 the kernels are also registered as the
custom ops bitquant::forward_save and bitquant::backward, with fake implementations, which quantize() uses
while torch.compile traces it, so that it traces without a graph break (eager calls take the autograd
function, as on torch 1.13).

Threads: unless set_num_threads(n) is called, the kernels use torch.get_num_threads() threads (read on each
call), so the two thread pools do not oversubscribe the cores.
"""

import ctypes
import functools

import torch

import bitquant
from . import _library as L
from . import _reference

__all__ = ["quantize", "pact", "set_num_threads", "runs_on_kernels"]

_TYPES = {torch.float32: L.F32, torch.float16: L.F16, torch.bfloat16: L.BF16}
_FIELDS = tuple(name for name, _ in L.Params._fields_)
_threads = {"fixed": None, "applied": None}


def set_num_threads(n=None):
    """The kernels' thread count: n, or None to follow torch.get_num_threads() again (the default)."""
    if n is not None:
        bitquant.set_num_threads(n)
    _threads["fixed"], _threads["applied"] = n, n


def _follow_torch_threads():
    if _threads["fixed"] is None:
        n = torch.get_num_threads()
        if n != _threads["applied"]:
            bitquant.set_num_threads(n)
            _threads["applied"] = n


_quantizers = {}  # (name, sorted parameter items) -> bitquant.Quantizer


def _quantizer(name, params):
    """The Quantizer for a name and its parameters, created (and so checked) once."""
    key = (name, tuple(sorted(params.items())))
    q = _quantizers.get(key)
    if q is None:
        q = bitquant.Quantizer(name, **params)
        if len(_quantizers) >= 1024:
            _quantizers.clear()
        _quantizers[key] = q
    return q


@functools.lru_cache(maxsize=None)
def _cuda_device():
    """Whether the library can run CUDA kernels here (a driver and a device)."""
    name = ctypes.create_string_buffer(8)
    return L.lib().bq_backend_device(L.BACKEND_CUDA, name, len(name)) == L.OK


def runs_on_kernels(x):
    """True if quantize(x, ...) runs bitquant's kernels, False if it takes the reference path."""
    if x.dtype not in _TYPES:
        return False
    if x.device.type == "cpu":
        return True
    return x.device.type == "cuda" and _cuda_device()


def _stream(x):
    return ctypes.c_void_p(torch.cuda.current_stream(x.device).cuda_stream)


def _pointer(t):
    return t.data_ptr() if t.numel() else None


def forward_save(q, x, keep=True):
    """(y, saved words) for a contiguous x the kernels run. saved holds q.saved_bits bits an element in the
    library's layout (planes of ceil(n / 32) words); it is empty where the backward needs x itself
    (q.saved_bits is None) or nothing of it (0 bits), or where keep is false (no backward will run)."""
    lib, code, n = L.lib(), _TYPES[x.dtype], x.numel()
    bits = q.saved_bits if keep else None
    y = torch.empty_like(x)
    saved = x.new_empty((bits * ((n + 31) // 32) if bits else 0,), dtype=torch.int32)
    if x.device.type == "cpu":
        _follow_torch_threads()
        status = lib.bq_forward_save_typed(q._handle, code, x.data_ptr(), y.data_ptr(), _pointer(saved), n) if bits \
            else lib.bq_forward_typed(q._handle, code, x.data_ptr(), code, y.data_ptr(), 1, n)
    else:
        # CUDA device memory on torch's current stream (UNTESTED).
        with torch.cuda.device(x.device):
            stream = _stream(x)
            status = lib.bq_cuda_forward_save(q._handle, code, x.data_ptr(), y.data_ptr(), _pointer(saved), n,
                                              stream) if bits \
                else lib.bq_cuda_forward_typed(q._handle, code, x.data_ptr(), code, y.data_ptr(), 1, n, stream)
    L.check(status)
    return y, saved


def backward(q, kept, g):
    """grad_x from what forward_save kept (saved words, or x where q.saved_bits is None) and grad_y g."""
    g, kept = g.contiguous(), kept.contiguous()
    lib, code, n = L.lib(), _TYPES[g.dtype], g.numel()
    dx = torch.empty_like(g)
    if g.device.type == "cpu":
        _follow_torch_threads()
        status = lib.bq_backward_typed(q._handle, code, kept.data_ptr(), g.data_ptr(), dx.data_ptr(), n) \
            if q.saved_bits is None \
            else lib.bq_backward_saved_typed(q._handle, code, _pointer(kept), g.data_ptr(), dx.data_ptr(), n)
    else:
        # CUDA device memory on torch's current stream (UNTESTED).
        with torch.cuda.device(g.device):
            stream = _stream(g)
            status = lib.bq_cuda_backward_typed(q._handle, code, kept.data_ptr(), g.data_ptr(), dx.data_ptr(), n,
                                                stream) if q.saved_bits is None \
                else lib.bq_cuda_backward_saved(q._handle, code, _pointer(kept), g.data_ptr(), dx.data_ptr(), n,
                                                stream)
    L.check(status)
    return dx


class _Pact(torch.autograd.Function):
    """pact's autograd function on the kernels (float32 CPU tensors): forward(x, alpha, bits, threshold);
    backward gives grad_x (cancellation fused) and grad_alpha (bq_pact_backward's float64 sum)."""

    @staticmethod
    def forward(ctx, x, alpha, bits, threshold):
        x = x.contiguous()
        q = _quantizer("pact", {"alpha": alpha.item(), "bits": bits, "cancel_threshold": threshold})
        ctx.q = q
        ctx.save_for_backward(x, alpha)
        return forward_save(q, x, keep=False)[0]

    @staticmethod
    def backward(ctx, grad):
        x, alpha = ctx.saved_tensors
        grad = grad.contiguous()
        _follow_torch_threads()
        dx, grad_alpha = torch.empty_like(grad), ctypes.c_float()
        L.check(L.lib().bq_pact_backward(_pointer(x), _pointer(grad), _pointer(dx), ctypes.byref(grad_alpha),
                                         x.numel(), ctx.q.params["alpha"]))
        if ctx.q.params["cancel_threshold"] > 0:
            dx = backward(ctx.q, x, grad)  # grad_x with the cancellation; grad_alpha has none (it is after it)
        return dx, torch.tensor(grad_alpha.value, dtype=alpha.dtype).reshape(alpha.shape), None, None


def pact(x, alpha, bits=4, cancel_threshold=0.0):
    """bitorch's Pact of x with a learnable clip: alpha a one-element tensor (a Parameter, whose gradient
    backward gives: the sum of grad * [x >= alpha]) or a float; bits 1..24. cancel_threshold > 0 puts
    QActivation's gradient cancellation before it (grad_x only). float32 CPU tensors run the kernels
    (bq_pact_forward / bq_pact_backward); other dtypes and devices run bitorch's formulas as torch operations."""
    if not isinstance(alpha, torch.Tensor):
        alpha = torch.tensor(float(alpha))
    if alpha.numel() != 1:
        raise ValueError(f"bitquant: pact's alpha has one element, not {alpha.numel()}")
    _quantizer("pact", {"alpha": alpha.item(), "bits": bits, "cancel_threshold": float(cancel_threshold)})  # checks
    if x.dtype == torch.float32 and x.device.type == "cpu" and alpha.device.type == "cpu":
        return _Pact.apply(x, alpha, bits, float(cancel_threshold))
    return _reference.Pact.apply(x, alpha, bits, float(cancel_threshold))


class Function(torch.autograd.Function):
    """quantize's autograd function on the kernels: forward(x, quantizer), backward from the saved bits."""

    @staticmethod
    def forward(ctx, x, q):
        x = x.contiguous()
        y, saved = forward_save(q, x)
        ctx.q = q
        ctx.save_for_backward(x if q.saved_bits is None else saved)
        return y

    @staticmethod
    def backward(ctx, grad):
        kept, = ctx.saved_tensors
        if ctx.q.saved_bits == 0:
            return grad, None  # the straight-through gradient: grad itself, as bitorch's STE returns it
        return backward(ctx.q, kept, grad), None


def _value_names(name):
    """The parameters the custom ops carry for a quantizer: every bq_params field, then its named ones."""
    return _FIELDS + tuple(param.name for param in bitquant.quantizer_info(name).named)


def _values(q):
    """q's parameters as the float list the custom ops take (in _value_names order)."""
    return [float(q.params.get(field, 0.0)) for field in _value_names(q.name)]


def _from_values(name, values):
    keep = bitquant.quantizer_info(name).params + ("cancel_threshold",)
    return _quantizer(name, {field: (int(v) if field in bitquant._INT_FIELDS else v)
                             for field, v in zip(_value_names(name), values) if field in keep})


_custom_ops = hasattr(torch, "library") and hasattr(torch.library, "custom_op") and \
    hasattr(torch.library, "register_autograd")
if _custom_ops:
    from typing import List, Tuple

    @torch.library.custom_op("bitquant::forward_save", mutates_args=())
    def _forward_op(x: torch.Tensor, name: str, values: List[float]) -> Tuple[torch.Tensor, torch.Tensor]:
        return forward_save(_from_values(name, values), x.contiguous())

    @_forward_op.register_fake
    def _(x, name, values):
        bits = _from_values(name, values).saved_bits or 0
        # The real op's outputs are contiguous whatever x's strides (it runs on x.contiguous()).
        return (torch.empty_like(x, memory_format=torch.contiguous_format),
                x.new_empty((bits * ((x.numel() + 31) // 32),), dtype=torch.int32))

    @torch.library.custom_op("bitquant::backward", mutates_args=())
    def _backward_op(kept: torch.Tensor, grad: torch.Tensor, name: str, values: List[float]) -> torch.Tensor:
        return backward(_from_values(name, values), kept, grad)

    @_backward_op.register_fake
    def _(kept, grad, name, values):
        return torch.empty_like(grad, memory_format=torch.contiguous_format)

    def _setup_context(ctx, inputs, output):
        x, name, values = inputs
        ctx.name, ctx.values = name, values
        ctx.save_for_backward(x if _from_values(name, values).saved_bits is None else output[1])

    def _op_backward(ctx, grad, _grad_saved):
        kept, = ctx.saved_tensors
        return _backward_op(kept, grad, ctx.name, ctx.values), None, None

    torch.library.register_autograd("bitquant::forward_save", _op_backward, setup_context=_setup_context)

    @torch.compiler.assume_constant_result
    def _op_values(name, items):
        """The custom op's values for a name and its sorted parameter items; run by torch.compile at trace
        time, never traced (it creates the Quantizer through ctypes), its result a constant of the graph."""
        return tuple(_values(_quantizer(name, dict(items))))

    @torch.compiler.assume_constant_result
    def _cuda_device_now():
        """_cuda_device() as a constant of the graph (its ctypes call is not traced)."""
        return _cuda_device()


def _compiling():
    compiler = getattr(torch, "compiler", None)
    return compiler is not None and hasattr(compiler, "is_compiling") and compiler.is_compiling()


def quantize(x, name, **params):
    """bitorch's quantization `name` of x, differentiable: the forward and the straight-through backward of
    bitquant's kernels (params: bq_params fields the quantizer reads, and cancel_threshold; see
    bitquant.Quantizer). A bad name or parameter raises the library's error."""
    if _custom_ops and _compiling():
        on_kernels = x.dtype in _TYPES and (x.device.type == "cpu" or
                                            (x.device.type == "cuda" and _cuda_device_now()))
        if on_kernels:
            return _forward_op(x, name, list(_op_values(name, tuple(sorted(params.items())))))[0]
    q = _quantizer(name, params)
    if not runs_on_kernels(x):
        return _reference.Function.apply(x, name, q.params)
    if not (torch.is_grad_enabled() and x.requires_grad):
        return forward_save(q, x.contiguous(), keep=False)[0]  # no backward: nothing to keep
    return Function.apply(x, q)
