"""NumPy arrays and CPU torch tensors as the library sees them: a pointer, a bq_dtype and an element count.

Neither NumPy nor torch is a dependency: each is imported only to handle its own arrays.
"""

import sys

from . import _library as L

# Element types by dtype name, for both NumPy and torch. Saved bits and packed signs are uint32 words, held in
# uint32 arrays (NumPy) or int32 tensors (torch 1.13 has no uint32).
FLOAT_TYPES = {"float32": L.F32, "float16": L.F16, "bfloat16": L.BF16}
OUTPUT_TYPES = dict(FLOAT_TYPES, int8=L.I8)
WORD_TYPES = ("uint32", "int32")
ELEMENT_SIZE = {L.F32: 4, L.F16: 2, L.BF16: 2, L.I8: 1}


class Array:
    """One argument: the object, its kind ("numpy" or "torch"), its dtype name, pointer and elements."""
    __slots__ = ("obj", "kind", "dtype", "ptr", "numel")

    def __init__(self, obj, kind, dtype, ptr, numel):
        self.obj, self.kind, self.dtype, self.ptr, self.numel = obj, kind, dtype, ptr, numel

    @property
    def shape(self):
        return tuple(self.obj.shape)


def _torch():
    return sys.modules.get("torch")


def _numpy():
    return sys.modules.get("numpy")


def is_torch(obj):
    torch = _torch()
    return torch is not None and isinstance(obj, torch.Tensor)


def _dtype_name(obj):
    return str(obj.dtype).replace("torch.", "")


def wrap(obj, what, output=False):
    """obj as an Array. Inputs that are not contiguous are copied to contiguous memory; outputs must be
    contiguous (a ValueError otherwise). Anything but a NumPy array or a CPU torch tensor is a TypeError."""
    if is_torch(obj):
        if obj.device.type != "cpu":
            raise TypeError(f"bitquant: {what} is a {obj.device.type} tensor; bitquant.Quantizer runs on the CPU "
                            f"(bitquant.torch.quantize runs CUDA tensors)")
        if not obj.is_contiguous():
            if output:
                raise ValueError(f"bitquant: {what} must be contiguous")
            obj = obj.contiguous()
        return Array(obj, "torch", _dtype_name(obj), obj.data_ptr(), obj.numel())
    numpy = _numpy()
    if numpy is not None and isinstance(obj, numpy.ndarray):
        if not obj.flags.c_contiguous:
            if output:
                raise ValueError(f"bitquant: {what} must be C-contiguous")
            obj = numpy.ascontiguousarray(obj)
        if output and not obj.flags.writeable:
            raise ValueError(f"bitquant: {what} is read-only")
        return Array(obj, "numpy", obj.dtype.name, obj.ctypes.data, obj.size)
    raise TypeError(f"bitquant: {what} must be a NumPy array or a CPU torch tensor, not {type(obj).__name__}")


def float_type(array, what):
    """The bq_dtype of a float input (float32, float16 or bfloat16), else a TypeError."""
    code = FLOAT_TYPES.get(array.dtype)
    if code is None:
        raise TypeError(f"bitquant: {what} is {array.dtype}; the kernels take float32, float16 or bfloat16")
    return code


def empty(like, shape, dtype):
    """A new contiguous array of like's kind: shape, dtype name ("float32", "int8", "words", ...)."""
    if like.kind == "torch":
        torch = _torch()
        dtype = "int32" if dtype == "words" else dtype
        return torch.empty(shape, dtype=getattr(torch, dtype))
    numpy = _numpy()
    dtype = "uint32" if dtype == "words" else dtype
    return numpy.empty(shape, dtype=like.obj.dtype if dtype == like.dtype else numpy.dtype(dtype))


def output(out, like, shape, dtype, what):
    """out checked against the expected shape and, for word arrays, dtype, or a new array if out is None."""
    if out is None:
        return wrap(empty(like, shape, dtype), what, output=True)
    array = wrap(out, what, output=True)
    if array.shape != tuple(shape):
        raise ValueError(f"bitquant: {what} has shape {array.shape}, expected {tuple(shape)}")
    if dtype == "words" and array.dtype not in WORD_TYPES:
        raise TypeError(f"bitquant: {what} must hold 32-bit words (uint32 or int32), not {array.dtype}")
    return array
