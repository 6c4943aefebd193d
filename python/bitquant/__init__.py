"""bitquant: bitorch's quantizations as generated, vectorized, multithreaded kernels.

    import bitquant
    q = bitquant.Quantizer("approxsign", cancel_threshold=1.0)
    y = q.forward(x)                  # x: a NumPy array or CPU torch tensor of float32, float16 or bfloat16
    dx = q.backward(x, grad)          # the straight-through gradient, cancellation fused in

The quantizers, their parameters and the CPU variants come from the library itself (bq_quantizer_info_at and
the rest). Errors are exceptions carrying the library's message: ValueError for bad arguments and unknown
names, NotImplementedError for what a quantizer or library does not have (all subclasses of bitquant.Error).
Nothing here imports NumPy or torch; `bitquant.torch` and `bitquant.bitorch` are the autograd and bitorch
layers.
"""

import ctypes
import functools
import math
from collections import namedtuple

from . import _arrays
from . import _library as L
from ._library import (Error, InvalidArgument, KernelFailure, NoDevice, OutOfMemory, Unsupported,
                       UnknownQuantizer)

__version__ = "0.1.0"
__all__ = ["Quantizer", "quantizers", "quantizer_info", "pact_backward", "ParamInfo", "cpu_variants",
           "active_cpu_variant", "backends", "set_num_threads", "library_path", "Error", "InvalidArgument",
           "UnknownQuantizer", "Unsupported", "NoDevice", "KernelFailure", "OutOfMemory"]

QuantizerInfo = namedtuple("QuantizerInfo", "name forward_kernel backward_kernel params named")
QuantizerInfo.__doc__ = """A row of the kernel table: the name, the kernel families of its two passes, the
parameters it reads (a tuple of names; cancel_threshold applies to every quantizer and is not listed), and of
those its named parameters, the ones bq_params does not hold (a tuple of ParamInfo)."""
ParamInfo = namedtuple("ParamInfo", "name default min max kind")
ParamInfo.__doc__ = """A named parameter (bq_param_info): its default, and the range that bq_create_named accepts:
kind "real" (a finite float in [min, max]), "positive" (a finite float > 0) or "integer" (an int in [min, max])."""
_PARAM_KINDS = {L.PARAM_REAL: "real", L.PARAM_POSITIVE: "positive", L.PARAM_INTEGER: "integer"}
CpuVariant = namedtuple("CpuVariant", "name supported active")
Backend = namedtuple("Backend", "name compiled device")
Backend.__doc__ = """A GPU backend: compiled into this library or not, and its device's name (None if none)."""

# bq_params fields that are ints in C; the others are floats. Booleans are accepted for ints (training=False).
_INT_FIELDS = tuple(name for name, ctype in L.Params._fields_ if ctype is ctypes.c_int)


def library_path():
    """The libbitquant.so this package uses."""
    return L.path()


def quantizers():
    """Every quantizer of the library, in its order (a tuple): the kernel table's, then any that a program
    registered (bq_register_quantizers; the list only grows, so it is read again when its length changes)."""
    lib = L.lib()
    count = lib.bq_quantizer_count()
    if count == len(_listed["rows"]):
        return _listed["rows"]
    rows = []
    for index in range(count):
        info = L.QuantizerInfo()
        L.check(lib.bq_quantizer_info_at(index, ctypes.byref(info)))
        params = info.params.decode()
        named = []
        for k in range(lib.bq_quantizer_param_count(index)):
            param = L.ParamInfo()
            L.check(lib.bq_quantizer_param_at(index, k, ctypes.byref(param)))
            named.append(ParamInfo(param.name.decode(), param.default_value, param.min_value, param.max_value,
                                   _PARAM_KINDS[param.kind]))
        rows.append(QuantizerInfo(info.name.decode(), info.forward_kernel.decode(), info.backward_kernel.decode(),
                                  tuple(params.split(",")) if params else (), tuple(named)))
    _listed["rows"], _listed["by_name"] = tuple(rows), {info.name: info for info in rows}
    return _listed["rows"]


_listed = {"rows": (), "by_name": {}}


def _infos():
    quantizers()
    return _listed["by_name"]


def quantizer_info(name):
    """The QuantizerInfo of one name; UnknownQuantizer (a ValueError) for a name the library does not have."""
    if not isinstance(name, str):
        raise TypeError(f"bitquant: a quantizer's name is a str, not {type(name).__name__}")
    info = _infos().get(name)
    if info is not None:
        return info
    # The library's own message for a name it does not know.
    handle = ctypes.c_void_p()
    L.check(L.lib().bq_create(name.encode(errors="surrogateescape"), None, ctypes.byref(handle)))
    L.lib().bq_destroy(handle)  # not reached: bq_create knows the same names as bq_quantizer_info_at
    raise UnknownQuantizer(L.E_UNKNOWN, f"bitquant: no quantizer named {name!r}")


def cpu_variants():
    """The CPU variants compiled into the library, best last, with whether this CPU runs them and which one
    the kernels use (the best supported, or BITQUANT_CPU's)."""
    lib = L.lib()
    active = active_cpu_variant()
    names = [lib.bq_cpu_variant_name(i).decode() for i in range(lib.bq_cpu_variant_count())]
    return [CpuVariant(name, lib.bq_cpu_variant_supported(i) == 1, name == active) for i, name in enumerate(names)]


def active_cpu_variant():
    """The CPU variant the kernels run; Unsupported if BITQUANT_CPU names one this CPU cannot run."""
    name = ctypes.c_char_p()
    L.check(L.lib().bq_cpu_variant_active(ctypes.byref(name)))
    return name.value.decode()


def backends():
    """The GPU backends: compiled in or not, and the device each would use now (None where there is none)."""
    lib = L.lib()
    rows = []
    for backend in range(L.BACKEND_COUNT):
        buffer = ctypes.create_string_buffer(256)
        device = buffer.value.decode() if lib.bq_backend_device(backend, buffer, len(buffer)) == L.OK else None
        rows.append(Backend(_backend_names()[backend], lib.bq_backend_compiled(backend) == 1, device))
    return rows


@functools.lru_cache(maxsize=None)
def _backend_names():
    """The backends' names in bq_backend order (asking for a device would load its driver)."""
    lib = L.lib()
    return tuple(lib.bq_backend_name(backend).decode() for backend in range(L.BACKEND_COUNT))


def set_num_threads(n):
    """Caps the CPU kernels' worker threads (the calling thread included); 1 <= n <= 256."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"bitquant: set_num_threads takes an int, not {type(n).__name__}")
    if not -2**31 <= n < 2**31:
        raise InvalidArgument(L.E_INVALID, f"bitquant: {n} threads is out of range")
    L.check(L.lib().bq_set_num_threads(n))


def _words(count):
    return (count + 31) // 32


class Quantizer:
    """One quantizer with its parameters: bq_create(name, params).

    backend: None for the CPU kernels, or a GPU backend's name ("cuda", "opencl"), whose host-memory entry
    points copy the arrays to the device and back (bitquant.backends() lists them and their devices).

    params are the parameters that the quantizer reads (bitquant.quantizer_info(name).params: bq_params
    fields, or named parameters such as Pact's alpha and bits, which go to bq_create_named) and
    cancel_threshold, QActivation's gradient cancellation fused into every backward (applied iff > 0).
    Unset ones keep bitorch's defaults (bq_params_init, the named parameters' defaults). A parameter the
    quantizer does not read is a TypeError, a value the library rejects an InvalidArgument with its message.

    Arrays: NumPy arrays or CPU torch tensors, of float32, float16 or bfloat16 (torch's, or NumPy's through
    ml_dtypes). Inputs that are not contiguous are copied first; `out` arguments must be contiguous, have
    the result's shape, and be either new memory or exactly an input (in place): the library rejects a
    partial overlap (InvalidArgument).
    """

    def __init__(self, name, backend=None, **params):
        info = quantizer_info(name)
        backend_names = _backend_names()
        if backend is not None and backend not in backend_names:
            raise ValueError(f"bitquant: no backend {backend!r} (None for the CPU, or one of: "
                             f"{', '.join(backend_names)})")
        allowed = info.params + ("cancel_threshold",)
        for field in params:
            if field not in allowed:
                raise TypeError(f"bitquant: {name} does not read {field!r} (it reads: {', '.join(allowed)})")
        struct = L.Params()
        lib = L.lib()
        lib.bq_params_init(ctypes.byref(struct))
        declared = {param.name: param for param in info.named}
        named = {}
        for field, value in params.items():
            if field in declared:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise InvalidArgument(L.E_INVALID, f"bitquant: {field} must be a number, not {value!r}")
                named[field] = float(value)
                continue
            if field in _INT_FIELDS:
                if not isinstance(value, int) or (not isinstance(value, bool) and not -2**31 <= value < 2**31):
                    raise InvalidArgument(L.E_INVALID, f"bitquant: {field} must be an int in range, not {value!r}")
                value = int(value)
            else:
                value = float(value)
            setattr(struct, field, value)
        handle = ctypes.c_void_p()
        given = (L.NamedParam * max(len(named), 1))(*(L.NamedParam(k.encode(), v) for k, v in named.items()))
        L.check(lib.bq_create_named(name.encode(), ctypes.byref(struct), given, len(named), ctypes.byref(handle)))
        self._handle, self._lib = handle, lib
        self.name, self.info, self.backend = name, info, backend
        if backend is None:
            calls = (lib.bq_forward_typed, lib.bq_backward_typed, lib.bq_forward_save_typed,
                     lib.bq_backward_saved_typed)
            self._forward, self._backward, self._forward_save, self._backward_saved = (
                functools.partial(call, handle) for call in calls)
        else:
            code = backend_names.index(backend)
            calls = (lib.bq_device_forward_typed_host, lib.bq_device_backward_typed_host,
                     lib.bq_device_forward_save_host, lib.bq_device_backward_saved_host)
            self._forward, self._backward, self._forward_save, self._backward_saved = (
                functools.partial(call, handle, code) for call in calls)
        self.params = {field: named.get(field, declared[field].default) if field in declared
                       else getattr(struct, field) for field in allowed}
        words = ctypes.c_size_t()
        status = lib.bq_saved_words(handle, 32, ctypes.byref(words))
        # What the backward keeps per element after forward_save: 0, 1 or 2 bits; None if it needs x itself.
        self.saved_bits = words.value if status == L.OK else None

    def __del__(self):
        handle = getattr(self, "_handle", None)
        if handle is not None and handle.value:
            self._lib.bq_destroy(handle)
            self._handle = None

    def __repr__(self):
        params = "".join(f", {k}={v!r}" for k, v in self.params.items())
        backend = "" if self.backend is None else f", backend={self.backend!r}"
        return f"bitquant.Quantizer({self.name!r}{backend}{params})"

    def forward(self, x, out=None, dtype=None):
        """y = quantize(x), of x's shape. The output type is out's dtype, else dtype (a name: "float32",
        "float16", "bfloat16" or "int8", the last for sign-valued quantizers), else x's. out may be x."""
        xa = _arrays.wrap(x, "x")
        x_type = _arrays.float_type(xa, "x")
        if out is None:
            name = xa.dtype if dtype is None else str(dtype).replace("torch.", "")
            if name not in _arrays.OUTPUT_TYPES:
                raise TypeError(f"bitquant: no output type {name!r} (float32, float16, bfloat16, int8)")
            ya = _arrays.output(None, xa, xa.shape, name, "out")
        else:
            ya = _arrays.output(out, xa, xa.shape, None, "out")
        y_type = _arrays.OUTPUT_TYPES.get(ya.dtype)
        if y_type is None:
            raise TypeError(f"bitquant: out is {ya.dtype}; the outputs are float32, float16, bfloat16 or int8")
        L.check(self._forward(x_type, xa.ptr, y_type, ya.ptr, 1, xa.numel))
        return ya.obj

    def forward_bits(self, x, out=None):
        """Sign-valued outputs packed into bits (bq_dtype BQ_BIT): x's last axis is a row of cols elements, each
        row packed into ceil(cols / 32) words (bit c % 32 of word c / 32, 1 for -1, padding bits 0). Returns
        words of shape x.shape[:-1] + (ceil(cols / 32),), uint32 for NumPy and int32 for torch."""
        xa = _arrays.wrap(x, "x")
        x_type = _arrays.float_type(xa, "x")
        shape = xa.shape or (1,)
        cols = shape[-1]
        rows = xa.numel // cols if cols else math.prod(shape[:-1])
        wa = _arrays.output(out, xa, shape[:-1] + (_words(cols),), "words", "out")
        L.check(self._forward(x_type, xa.ptr, L.BIT, wa.ptr, rows, cols))
        return wa.obj

    def backward(self, x, grad, out=None):
        """grad_x = the straight-through gradient at x for grad (grad_y), x, grad and grad_x of one float type
        and shape; out may be grad or x."""
        xa, ga = _arrays.wrap(x, "x"), _arrays.wrap(grad, "grad")
        code = self._same_float_type(xa, ga, "x and grad")
        da = _arrays.output(out, ga, ga.shape, ga.dtype, "out")
        self._same_float_type(xa, da, "x and out")
        L.check(self._backward(code, xa.ptr, ga.ptr, da.ptr, xa.numel))
        return da.obj

    def saved_words(self, n):
        """The 32-bit words forward_save keeps for n elements (0 if the backward needs nothing of x);
        Unsupported for approxsign and swishsign, whose backward needs x itself."""
        words = ctypes.c_size_t()
        L.check(self._lib.bq_saved_words(self._handle, n, ctypes.byref(words)))
        return words.value

    def forward_save(self, x, out=None, saved=None):
        """(y, saved): y = quantize(x) and what backward_saved needs of x, in one pass (saved: a flat array of
        saved_words(x.size) words, uint32 for NumPy and int32 for torch; the library's own layout)."""
        xa = _arrays.wrap(x, "x")
        code = _arrays.float_type(xa, "x")
        words = self.saved_words(xa.numel)
        ya = _arrays.output(out, xa, xa.shape, xa.dtype, "out")
        self._same_float_type(xa, ya, "x and out")
        sa = _arrays.output(saved, xa, (words,), "words", "saved")
        L.check(self._forward_save(code, xa.ptr, ya.ptr, sa.ptr if words else None,
                                                xa.numel))
        return ya.obj, sa.obj

    def backward_saved(self, saved, grad, out=None):
        """grad_x from forward_save's saved words instead of x; equal bit for bit to backward(x, grad)."""
        ga = _arrays.wrap(grad, "grad")
        code = _arrays.float_type(ga, "grad")
        sa = _arrays.wrap(saved, "saved")
        words = self.saved_words(ga.numel)
        if sa.dtype not in _arrays.WORD_TYPES or sa.numel != words:
            raise ValueError(f"bitquant: saved must be {words} 32-bit words for {ga.numel} elements "
                             f"(forward_save's), not {sa.numel} of {sa.dtype}")
        da = _arrays.output(out, ga, ga.shape, ga.dtype, "out")
        self._same_float_type(ga, da, "grad and out")
        L.check(self._backward_saved(code, sa.ptr if words else None, ga.ptr, da.ptr,
                                                  ga.numel))
        return da.obj

    @staticmethod
    def _same_float_type(a, b, what):
        code = _arrays.float_type(a, what.split(" and ")[0])
        if b.dtype != a.dtype:
            raise TypeError(f"bitquant: {what} must have one float type, not {a.dtype} and {b.dtype}")
        if b.numel != a.numel:
            raise ValueError(f"bitquant: {what} must have one size, not {a.numel} and {b.numel} elements")
        return code


def pact_backward(x, grad, alpha, out=None):
    """Pact's backward with its gradient for alpha (bq_pact_backward), float32 only: (grad_x, grad_alpha), with
    grad_x = grad * [!(x < 0 || x > alpha)] and grad_alpha = the sum of grad * [x >= alpha] (a float, summed in
    float64 in the library's fixed order). out may be grad or x."""
    xa, ga = _arrays.wrap(x, "x"), _arrays.wrap(grad, "grad")
    for array, what in ((xa, "x"), (ga, "grad")):
        if _arrays.float_type(array, what) != L.F32:
            raise TypeError(f"bitquant: pact_backward takes float32 arrays, not {what} of {array.dtype}")
    if ga.numel != xa.numel:
        raise ValueError(f"bitquant: x and grad must have one size, not {xa.numel} and {ga.numel} elements")
    da = _arrays.output(out, ga, ga.shape, ga.dtype, "out")
    if da.dtype != ga.dtype:
        raise TypeError(f"bitquant: out must be float32, not {da.dtype}")
    grad_alpha = ctypes.c_float()
    L.check(L.lib().bq_pact_backward(xa.ptr, ga.ptr, da.ptr, ctypes.byref(grad_alpha), xa.numel, float(alpha)))
    return da.obj, grad_alpha.value
