"""libbitquant through ctypes: loading, the prototypes, and statuses as exceptions.

The C declarations mirrored here (bq_params, bq_status, bq_dtype, bq_backend, bq_quantizer_info,
bq_param_info, bq_named_param) are
include/bitquant.h's; python/tests/test_header.py checks them against the header field by field.
"""

import ctypes
import os
import threading

LIBRARY_ENV = "BITQUANT_LIBRARY"  # a libbitquant.so to load instead of the package's own copy


class Params(ctypes.Structure):
    """bq_params."""
    _fields_ = [("swish_beta", ctypes.c_float), ("dorefa_bits", ctypes.c_int),
                ("progressive_scale", ctypes.c_double), ("progressive_alpha", ctypes.c_double),
                ("progressive_beta", ctypes.c_double), ("training", ctypes.c_int),
                ("cancel_threshold", ctypes.c_float)]


class QuantizerInfo(ctypes.Structure):
    """bq_quantizer_info."""
    _fields_ = [("name", ctypes.c_char_p), ("forward_kernel", ctypes.c_char_p),
                ("backward_kernel", ctypes.c_char_p), ("params", ctypes.c_char_p)]


class ParamInfo(ctypes.Structure):
    """bq_param_info: a named parameter's declaration."""
    _fields_ = [("name", ctypes.c_char_p), ("default_value", ctypes.c_double), ("min_value", ctypes.c_double),
                ("max_value", ctypes.c_double), ("kind", ctypes.c_int)]


class NamedParam(ctypes.Structure):
    """bq_named_param: one value given to bq_create_named."""
    _fields_ = [("name", ctypes.c_char_p), ("value", ctypes.c_double)]


# bq_status
OK, E_INVALID, E_UNKNOWN, E_UNSUPPORTED, E_NO_DEVICE, E_RUNTIME, E_NOMEM = range(7)
# bq_dtype
F32, F16, BF16, I8, BIT = range(5)
# bq_param_kind
PARAM_REAL, PARAM_POSITIVE, PARAM_INTEGER = range(3)
# bq_backend
BACKEND_CUDA, BACKEND_OPENCL, BACKEND_COUNT = range(3)


class Error(Exception):
    """A status other than BQ_OK from libbitquant: `status` is the bq_status, `message` bq_last_error()'s text."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message


class InvalidArgument(Error, ValueError):
    """BQ_E_INVALID: a bad argument (NULL, a parameter out of range, a bad size or type)."""


class UnknownQuantizer(Error, ValueError):
    """BQ_E_UNKNOWN: no quantizer of that name."""


class Unsupported(Error, NotImplementedError):
    """BQ_E_UNSUPPORTED: a type, CPU variant or backend this quantizer or library does not have."""


class NoDevice(Error, RuntimeError):
    """BQ_E_NO_DEVICE: no GPU device or driver."""


class KernelFailure(Error, RuntimeError):
    """BQ_E_RUNTIME: the kernel runtime reported an error."""


class OutOfMemory(Error, MemoryError):
    """BQ_E_NOMEM."""


EXCEPTIONS = {E_INVALID: InvalidArgument, E_UNKNOWN: UnknownQuantizer, E_UNSUPPORTED: Unsupported,
              E_NO_DEVICE: NoDevice, E_RUNTIME: KernelFailure, E_NOMEM: OutOfMemory}

_p, _size, _int, _status = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int
PROTOTYPES = {
    "bq_params_init": (None, [ctypes.POINTER(Params)]),
    "bq_create": (_status, [ctypes.c_char_p, ctypes.POINTER(Params), ctypes.POINTER(_p)]),
    "bq_create_named": (_status, [ctypes.c_char_p, ctypes.POINTER(Params), ctypes.POINTER(NamedParam), _size,
                                  ctypes.POINTER(_p)]),
    "bq_destroy": (None, [_p]),
    "bq_last_error": (ctypes.c_char_p, []),
    "bq_forward_typed": (_status, [_p, _int, _p, _int, _p, _size, _size]),
    "bq_backward_typed": (_status, [_p, _int, _p, _p, _p, _size]),
    "bq_saved_words": (_status, [_p, _size, ctypes.POINTER(_size)]),
    "bq_forward_save_typed": (_status, [_p, _int, _p, _p, _p, _size]),
    "bq_backward_saved_typed": (_status, [_p, _int, _p, _p, _p, _size]),
    "bq_quantizer_count": (_size, []),
    "bq_quantizer_info_at": (_status, [_size, ctypes.POINTER(QuantizerInfo)]),
    "bq_quantizer_param_count": (_size, [_size]),
    "bq_quantizer_param_at": (_status, [_size, _size, ctypes.POINTER(ParamInfo)]),
    "bq_pact_forward": (_status, [_p, _p, _size, ctypes.c_float, _int]),
    "bq_pact_backward": (_status, [_p, _p, _p, _p, _size, ctypes.c_float]),
    "bq_cpu_variant_count": (_size, []),
    "bq_cpu_variant_name": (ctypes.c_char_p, [_size]),
    "bq_cpu_variant_supported": (_int, [_size]),
    "bq_cpu_variant_active": (_status, [ctypes.POINTER(ctypes.c_char_p)]),
    "bq_set_num_threads": (_status, [_int]),
    "bq_backend_name": (ctypes.c_char_p, [_int]),
    "bq_backend_compiled": (_int, [_int]),
    "bq_backend_device": (_status, [_int, ctypes.c_char_p, _size]),
    "bq_device_forward_typed_host": (_status, [_p, _int, _int, _p, _int, _p, _size, _size]),
    "bq_device_backward_typed_host": (_status, [_p, _int, _int, _p, _p, _p, _size]),
    "bq_device_forward_save_host": (_status, [_p, _int, _int, _p, _p, _p, _size]),
    "bq_device_backward_saved_host": (_status, [_p, _int, _int, _p, _p, _p, _size]),
    "bq_cuda_forward_typed": (_status, [_p, _int, _p, _int, _p, _size, _size, _p]),
    "bq_cuda_backward_typed": (_status, [_p, _int, _p, _p, _p, _size, _p]),
    "bq_cuda_forward_save": (_status, [_p, _int, _p, _p, _p, _size, _p]),
    "bq_cuda_backward_saved": (_status, [_p, _int, _p, _p, _p, _size, _p]),
}

_lock = threading.Lock()
_lib = None


def path():
    """The shared library this package loads: $BITQUANT_LIBRARY, else the copy installed beside this file."""
    return os.environ.get(LIBRARY_ENV) or os.path.join(os.path.dirname(os.path.abspath(__file__)), "libbitquant.so")


def lib():
    """The loaded library, with its prototypes set (loaded on first use)."""
    global _lib
    if _lib is None:
        with _lock:
            if _lib is None:
                where = path()
                try:
                    loaded = ctypes.CDLL(where)
                except OSError as error:
                    raise ImportError(f"bitquant: cannot load {where}: {error} (set {LIBRARY_ENV} to a "
                                      f"libbitquant.so, or reinstall the package)") from None
                for name, (restype, argtypes) in PROTOTYPES.items():
                    function = getattr(loaded, name)
                    function.restype, function.argtypes = restype, argtypes
                _lib = loaded
    return _lib


def check(status):
    """Raises the exception for a status other than BQ_OK, with this thread's bq_last_error()."""
    if status != OK:
        message = lib().bq_last_error().decode(errors="replace")
        raise EXCEPTIONS.get(status, Error)(status, message or f"bitquant: status {status}")
