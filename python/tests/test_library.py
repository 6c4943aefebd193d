"""bitquant's library level: bitquant.Quantizer on NumPy arrays and CPU torch tensors, the listings, threads,
and errors. The numbers are checked against bitquant._reference (bitorch's formulas as torch operations)
under the spec's conformance rule, on edge values and every length up to 70, for every quantizer and
parameter case of the library's table; the typed and saved-bit calls against the float32 ones by the rules
the C header states."""

import subprocess
import sys

import numpy as np
import pytest

import bitquant
from conftest import need

torch = need("torch")
testing = need("bitquant.testing")
from bitquant import _reference  # noqa: E402 (needs torch)

CASES = testing.checked_cases()
LENGTHS = list(range(0, 71)) + [1000, 4096 + 17]


def reference(case, x, g):
    q = bitquant.Quantizer(case.quantizer, **case.kernel_params())
    if case.direction == "forward":
        return _reference.forward(case.quantizer, x, q.params)
    return _reference.backward(case.quantizer, x, g, q.params)


def kernels(case, x, g, **kwargs):
    q = bitquant.Quantizer(case.quantizer, **case.kernel_params(), **kwargs)
    return q.forward(x) if case.direction == "forward" else q.backward(x, g)


def test_listing_follows_the_kernel_table_and_bitorch():
    from_library = [q.name for q in bitquant.quantizers()]
    assert len(from_library) == len(set(from_library)) > 0
    fields = {name for name, _ in bitquant._library.Params._fields_}
    for info in bitquant.quantizers():
        named = {param.name for param in info.named}
        assert set(info.params) <= (fields - {"cancel_threshold"}) | named and named <= set(info.params)
        assert not named & fields
        assert info.forward_kernel and info.backward_kernel
        assert bitquant.quantizer_info(info.name) == info
    bitorch = need("bitorch.quantizations")
    # bitorch's registry, and Pact, which bitorch has as a layer (bitorch.layers.pact) outside it.
    assert set(from_library) - {"pact"} <= set(bitorch.quantizations_by_name)
    assert "pact" in from_library and need("bitorch.layers.pact").Pact


def test_named_parameters():
    """Pact's alpha and bits: declared with bitorch's defaults and their ranges, set by keyword, checked by the
    library (a value outside the kind or range is InvalidArgument with its message), and not taken by a
    quantizer that does not declare them (TypeError)."""
    info = bitquant.quantizer_info("pact")
    assert [(p.name, p.default, p.kind) for p in info.named] == [("alpha", 10.0, "positive"), ("bits", 4.0, "integer")]
    assert (info.named[1].min, info.named[1].max) == (1.0, 24.0)
    assert bitquant.Quantizer("pact").params == {"alpha": 10.0, "bits": 4.0, "cancel_threshold": 0.0}
    assert bitquant.Quantizer("pact", alpha=3, bits=3).params["alpha"] == 3.0
    for bad in ({"alpha": 0.0}, {"alpha": -1.0}, {"alpha": float("inf")}, {"alpha": float("nan")},
                {"bits": 0}, {"bits": 25}, {"bits": 2.5}, {"alpha": 1e39}):
        with pytest.raises(bitquant.InvalidArgument, match=next(iter(bad))):
            bitquant.Quantizer("pact", **bad)
    with pytest.raises(bitquant.InvalidArgument):
        bitquant.Quantizer("pact", alpha="3")
    with pytest.raises(TypeError, match="alpha"):
        bitquant.Quantizer("sign", alpha=1.0)


def test_pact_backward_against_a_float64_sum():
    """bitquant.pact_backward: grad_x bit for bit the reference's, grad_alpha within the header's bound of the
    float64 sum of g * [x >= alpha] (ulp/2 + (n - 1) 2^-53 sum|g|), on the edge inputs and at x == alpha."""
    np = need("numpy")
    x, g = testing.edge_inputs(70001, seed=41)
    x, g = x.numpy(), g.numpy()
    g = np.where(np.isfinite(g), g, np.float32(0.5))  # a finite sum
    x[::97] = np.float32(3.0)
    dx, grad_alpha = bitquant.pact_backward(x, g, 3.0)
    inside = ~((x < 0) | (x > 3.0))
    assert np.array_equal(dx.view(np.uint32), (g * inside.astype(np.float32)).view(np.uint32))
    terms = np.where(x >= 3.0, g.astype(np.float64), 0.0)
    exact = float(np.sum(terms))
    bound = float(np.spacing(np.float32(abs(grad_alpha)))) / 2 + (len(x) - 1) * 2.0 ** -53 * float(np.sum(np.abs(terms)))
    assert abs(grad_alpha - exact) <= bound
    with pytest.raises(TypeError):
        bitquant.pact_backward(x.astype(np.float64), g, 3.0)
    with pytest.raises(bitquant.InvalidArgument):
        bitquant.pact_backward(x, g, -1.0)


def test_cpu_variants_and_backends():
    variants = bitquant.cpu_variants()
    assert [v.active for v in variants].count(True) == 1
    active = next(v for v in variants if v.active)
    assert active.supported and active.name == bitquant.active_cpu_variant()
    names = [b.name for b in bitquant.backends()]
    assert names == ["cuda", "opencl"]
    for backend in bitquant.backends():
        assert backend.device is None or backend.compiled


@pytest.mark.parametrize("case", CASES, ids=str)
def test_kernels_match_the_reference_on_edge_values(case):
    for data in ("with NaN", "NaN-free"):
        x, g = testing.edge_inputs(4099, seed=11)
        if data == "NaN-free":
            x = x.nan_to_num(nan=0.25, posinf=float("inf"), neginf=float("-inf"))
        testing.assert_conforms(case, kernels(case, x, g), reference(case, x, g), x, g)


@pytest.mark.parametrize("case", [c for c in CASES if not c.params], ids=str)
def test_every_length_and_numpy_equals_torch(case):
    for n in LENGTHS:
        x, g = testing.edge_inputs(max(n, 1), seed=n)
        x, g = x[:n], g[:n]
        ours = kernels(case, x, g)
        testing.assert_conforms(case, ours, reference(case, x, g), x, g)
        from_numpy = kernels(case, x.numpy(), g.numpy())
        assert isinstance(from_numpy, np.ndarray) and from_numpy.dtype == np.float32 and from_numpy.shape == (n,)
        assert from_numpy.tobytes() == ours.numpy().tobytes()


def test_shapes_and_non_contiguous_inputs():
    x = torch.randn(6, 7, 5)
    q = bitquant.Quantizer("approxsign")
    strided = x.transpose(0, 2)
    assert not strided.is_contiguous()
    assert torch.equal(q.forward(strided), q.forward(strided.contiguous()))
    assert q.forward(strided).shape == strided.shape
    a = x.numpy()[:, ::2]
    assert np.array_equal(q.backward(a, np.ones_like(a)), q.backward(np.ascontiguousarray(a), np.ones(a.shape, np.float32)))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("case", [c for c in CASES if not c.params or c.quantizer == "inputdorefa"], ids=str)
def test_16_bit_types_round_once(case, dtype):
    """typed(x) == round_to_type(float32 kernels(widen(x))), bit for bit (bq_dtype's rule)."""
    kind = getattr(torch, dtype)
    x, g = testing.edge_inputs(1037, seed=5)
    x16, g16 = x.to(kind), g.to(kind)
    ours = kernels(case, x16, g16)
    assert ours.dtype == kind
    expected = kernels(case, x16.float(), g16.float()).to(kind)
    same = (ours.view(torch.int16) == expected.view(torch.int16)) | (ours.isnan() & expected.isnan())
    assert bool(same.all()), case.label


def test_int8_and_bit_outputs():
    x, _ = testing.edge_inputs(3 * 45, seed=3)
    x = x.nan_to_num(nan=0.5).reshape(3, 45)
    for name in ("sign", "steheaviside", "approxsign", "swishsign"):
        q = bitquant.Quantizer(name)
        y = q.forward(x)
        assert torch.equal(q.forward(x, dtype="int8"), y.to(torch.int8))
        assert np.array_equal(q.forward(x.numpy(), out=np.empty((3, 45), np.int8)), y.numpy().astype(np.int8))
        words = q.forward_bits(x)
        assert words.shape == (3, 2) and words.dtype == torch.int32
        negative = (y == -1).numpy()
        for r in range(3):
            for c in range(64):
                bit = (int(words[r, c // 32]) >> (c % 32)) & 1
                assert bit == (negative[r, c] if c < 45 else 0), (name, r, c)
        assert np.array_equal(q.forward_bits(x.numpy()).view(np.int32), words.numpy())
    with pytest.raises(NotImplementedError, match="inputdorefa has no BQ_I8 output"):
        bitquant.Quantizer("inputdorefa").forward(x, dtype="int8")


SAVED_BITS = {("sign", 0.0): 0, ("sign", 1.0): 1, ("steheaviside", 0.0): 1, ("steheaviside", 0.5): 1,
              ("steheaviside", 1.3): 2, ("approxsign", 0.0): None, ("swishsign", 1.0): None,
              ("weightdorefa", 1.0): 1, ("inputdorefa", 0.0): 0, ("progressive_sign", 2.0): 1}


@pytest.mark.parametrize("name, threshold", list(SAVED_BITS), ids=lambda v: str(v))
def test_saved_bits(name, threshold):
    q = bitquant.Quantizer(name, cancel_threshold=threshold)
    assert q.saved_bits == SAVED_BITS[(name, threshold)]
    x, g = testing.edge_inputs(1000, seed=9)
    if q.saved_bits is None:
        with pytest.raises(NotImplementedError, match="needs"):
            q.forward_save(x)
        return
    for n in (0, 1, 31, 32, 33, 1000):
        y, saved = q.forward_save(x[:n])
        assert saved.shape == (q.saved_bits * ((n + 31) // 32),) and saved.dtype == torch.int32
        assert q.saved_words(n) == saved.numel()
        assert torch.equal(y.view(torch.int32), q.forward(x[:n]).view(torch.int32))
        dx = q.backward_saved(saved, g[:n])
        assert torch.equal(dx.view(torch.int32), q.backward(x[:n], g[:n]).view(torch.int32))
    y, saved = q.forward_save(x.numpy())
    assert saved.dtype == np.uint32
    with pytest.raises(ValueError, match="saved must be"):
        q.backward_saved(saved[:-1] if len(saved) else np.zeros(1, np.uint32), g.numpy())


def test_in_place_and_partial_overlap():
    x, g = testing.edge_inputs(1001, seed=4)
    q = bitquant.Quantizer("steheaviside", cancel_threshold=1.3)
    expected_y, expected_dx = q.forward(x), q.backward(x, g)
    y = x.clone()
    assert q.forward(y, out=y) is y and torch.equal(y, expected_y)
    dx = g.clone()
    q.backward(x, dx, out=dx)
    assert torch.equal(dx.view(torch.int32), expected_dx.view(torch.int32))
    buffer = x.clone()
    before = buffer.clone()
    with pytest.raises(ValueError, match="overlap"):
        q.forward(buffer[:-1], out=buffer[1:])
    assert torch.equal(buffer.view(torch.int32), before.view(torch.int32))


def test_opencl_backend_equals_the_cpu():
    device = {b.name: b.device for b in bitquant.backends()}["opencl"]
    if device is None:
        pytest.skip("no OpenCL device")
    x, g = testing.edge_inputs(4099, seed=2)
    for case in CASES[::7]:
        cpu, gpu = kernels(case, x, g), kernels(case, x, g, backend="opencl")
        assert torch.equal(cpu.view(torch.int32), gpu.view(torch.int32)) or case.swish_tolerance_scale(), case.label


@pytest.mark.parametrize("make, error, message", [
    (lambda: bitquant.Quantizer("sgn"), ValueError, 'bq_create: no quantizer named "sgn"'),
    (lambda: bitquant.Quantizer("inputdorefa", dorefa_bits=30), ValueError, "dorefa_bits = 30 is outside 1..24"),
    (lambda: bitquant.Quantizer("sign", cancel_threshold=float("nan")), ValueError, "cancel_threshold"),
    (lambda: bitquant.Quantizer("swishsign", swish_beta=float("inf")), ValueError, "swish_beta"),
    (lambda: bitquant.Quantizer("progressive_sign", progressive_alpha=-1.0), ValueError, "progressive_alpha"),
    (lambda: bitquant.Quantizer("sign", dorefa_bits=2), TypeError, "sign does not read 'dorefa_bits'"),
    (lambda: bitquant.Quantizer("inputdorefa", dorefa_bits=2.5), ValueError, "dorefa_bits must be an int"),
    (lambda: bitquant.Quantizer(3), TypeError, "is a str"),
    (lambda: bitquant.Quantizer("sign", backend="metal"), ValueError, "no backend 'metal'"),
    (lambda: bitquant.Quantizer("sign").forward(np.zeros(4)), TypeError, "float64"),
    (lambda: bitquant.Quantizer("sign").forward([1.0]), TypeError, "NumPy array or a CPU torch tensor"),
    (lambda: bitquant.Quantizer("sign").forward(np.zeros(4, np.float32), out=np.zeros(5, np.float32)), ValueError,
     "shape"),
    (lambda: bitquant.Quantizer("sign").forward(np.zeros(4, np.float32), out=np.zeros(8, np.float32)[::2]),
     ValueError, "contiguous"),
    (lambda: bitquant.Quantizer("sign").backward(np.zeros(4, np.float32), np.zeros(4, np.float16)), TypeError,
     "one float type"),
    (lambda: bitquant.Quantizer("approxsign").saved_words(4), NotImplementedError, "approxsign"),
    (lambda: bitquant.set_num_threads(0), ValueError, "bq_set_num_threads"),
    (lambda: bitquant.set_num_threads(257), ValueError, "above 256"),
    (lambda: bitquant.set_num_threads("2"), TypeError, "int"),
])
def test_errors_carry_the_library_message(make, error, message):
    with pytest.raises(error, match=message) as caught:
        make()
    if isinstance(caught.value, bitquant.Error):
        assert caught.value.message and caught.value.status != 0


def test_rejected_calls_leave_outputs_untouched():
    out = np.full(4, 7.0, np.float32)
    with pytest.raises(TypeError):
        bitquant.Quantizer("sign").forward(np.zeros(4), out=out)
    with pytest.raises(NotImplementedError):
        bitquant.Quantizer("inputdorefa").forward(np.zeros(4, np.float32), out=np.full(4, 7, np.int8))
    assert np.all(out == 7.0)


def test_set_num_threads_keeps_results():
    x, g = testing.edge_inputs(1 << 17, seed=8)
    q = bitquant.Quantizer("approxsign", cancel_threshold=1.0)
    results = []
    for threads in (1, 2, 3):
        bitquant.set_num_threads(threads)
        results.append(q.backward(x, g).view(torch.int32))
    assert all(torch.equal(results[0], r) for r in results)


def test_a_missing_library_is_an_import_error_that_names_it():
    script = "import bitquant\ntry:\n    bitquant.quantizers()\nexcept ImportError as e:\n    print(e)\n"
    env = {"BITQUANT_LIBRARY": "/nonexistent/libbitquant.so", "PYTHONPATH": ":".join(sys.path)}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True).stdout
    assert "cannot load /nonexistent/libbitquant.so" in out and "BITQUANT_LIBRARY" in out


REGISTERED = """
import ctypes, os, sys
import numpy as np
import bitquant
before = len(bitquant.quantizers())
module = ctypes.CDLL(os.environ["BITQUANT_TEST_QUANTIZERS"])
assert module.bq_test_quantizers_shared_register() == 0
rows = bitquant.quantizers()
assert [r.name for r in rows[before:]] == ["scaled_sign", "round_ste"], rows[before:]
info = bitquant.quantizer_info("scaled_sign")
assert info.params == ("scale", "bias") and info.forward_kernel == "custom_forward"
assert [(p.name, p.default, p.kind) for p in info.named] == [("scale", 1.0, "positive"), ("bias", 0.0, "real")]
x = np.array([-2.0, -0.0, 0.0, 0.5, 3.0, np.nan], np.float32)
g = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], np.float32)
q = bitquant.Quantizer("scaled_sign", scale=2.0, bias=0.5, cancel_threshold=1.0)
sign = np.where(x < 0, np.float32(-1), np.float32(1))
assert np.array_equal(q.forward(x), sign * np.float32(2) + np.float32(0.5))
assert np.array_equal(q.backward(x, g), np.where(np.abs(x) <= 1.0, g, np.float32(0)))
for call in (lambda: q.forward(x, dtype="float16"),
             lambda: bitquant.Quantizer("round_ste", backend="opencl").forward(x)):
    try:
        call()
    except bitquant.Unsupported as error:
        print("unsupported:", error)
    else:
        sys.exit("a float16 or GPU call of a registered quantizer ran")
try:
    bitquant.Quantizer("scaled_sign", scale=-1.0)
except bitquant.InvalidArgument as error:
    print("invalid:", error)
print("ok")
"""


def test_registered_quantizers():
    """A user's quantizers (tests/custom/test_quantizers.cpp, a SHARED library of bitquant_add_quantizers)
    registered in a process of its own: listed after the built-ins with their named parameters, run by
    bitquant.Quantizer with them, and Unsupported for float16 and GPUs."""
    import os
    path = os.environ.get("BITQUANT_TEST_QUANTIZERS")
    if not path:
        pytest.skip("BITQUANT_TEST_QUANTIZERS (a build's libbq_test_quantizers_shared.so) is not set: the ctest "
                    "`python` sets it")
    out = subprocess.run([sys.executable, "-c", REGISTERED], env=dict(os.environ), capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("unsupported:") == 2 and "invalid:" in out.stdout and out.stdout.endswith("ok\n")
