"""The package's ctypes declarations against include/bitquant.h: bq_params' fields (names, types, order),
bq_quantizer_info's, and the values of bq_status, bq_dtype and bq_backend. A change to the header that the
package does not follow fails here."""

import ctypes
import pathlib
import re

import pytest

from bitquant import _library as L

HEADER = pathlib.Path(__file__).resolve().parents[2] / "include" / "bitquant.h"
C_TYPES = {"float": ctypes.c_float, "int": ctypes.c_int, "double": ctypes.c_double, "const char *": ctypes.c_char_p,
           "bq_param_kind": ctypes.c_int}


@pytest.fixture(scope="module")
def header():
    if not HEADER.exists():
        pytest.skip(f"{HEADER} not found (the tests run from the source tree)")
    return re.sub(r"/\*.*?\*/", "", HEADER.read_text(), flags=re.S)


def struct_fields(header, name):
    body = re.search(r"typedef struct %s \{(.*?)\} %s;" % (name, name), header, re.S).group(1)
    return [(m.group(2), m.group(1).strip()) for m in re.finditer(r"([\w ]+?\*?)\s*(\w+);", body)]


def enum_values(header, last):
    body = re.search(r"typedef enum \{([^}]*)\} %s;" % last, header, re.S).group(1)
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"(\w+)\s*=\s*(\d+)", body)}


@pytest.mark.parametrize("struct, name", [(L.Params, "bq_params"), (L.QuantizerInfo, "bq_quantizer_info"),
                                          (L.ParamInfo, "bq_param_info"), (L.NamedParam, "bq_named_param")])
def test_structs_match_the_header(header, struct, name):
    declared = [(field, C_TYPES[ctype]) for field, ctype in struct_fields(header, name)]
    assert declared == list(struct._fields_)


def test_enums_match_the_header(header):
    status = enum_values(header, "bq_status")
    assert status == {"BQ_OK": L.OK, "BQ_E_INVALID": L.E_INVALID, "BQ_E_UNKNOWN": L.E_UNKNOWN,
                      "BQ_E_UNSUPPORTED": L.E_UNSUPPORTED, "BQ_E_NO_DEVICE": L.E_NO_DEVICE,
                      "BQ_E_RUNTIME": L.E_RUNTIME, "BQ_E_NOMEM": L.E_NOMEM}
    assert set(L.EXCEPTIONS) == set(status.values()) - {L.OK}
    assert enum_values(header, "bq_dtype") == {"BQ_F32": L.F32, "BQ_F16": L.F16, "BQ_BF16": L.BF16, "BQ_I8": L.I8,
                                               "BQ_BIT": L.BIT}
    assert enum_values(header, "bq_backend") == {"BQ_BACKEND_CUDA": L.BACKEND_CUDA,
                                                 "BQ_BACKEND_OPENCL": L.BACKEND_OPENCL,
                                                 "BQ_BACKEND_COUNT": L.BACKEND_COUNT}
    assert enum_values(header, "bq_param_kind") == {"BQ_PARAM_REAL": L.PARAM_REAL,
                                                    "BQ_PARAM_POSITIVE": L.PARAM_POSITIVE,
                                                    "BQ_PARAM_INTEGER": L.PARAM_INTEGER}


def test_every_prototype_is_declared_in_the_header(header):
    for name, (restype, argtypes) in L.PROTOTYPES.items():
        match = re.search(r"\b%s\(([^)]*)\)" % name, header)
        assert match, f"{name} is not in the header"
        declared = [a for a in match.group(1).split(",") if a.strip() not in ("", "void")]
        assert len(declared) == len(argtypes), name
