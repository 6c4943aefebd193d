"""bitquant.torch.quantize: the autograd function on the kernels against bitquant._reference (bitorch's
formulas), for every quantizer and parameter case, forward and backward through autograd; what it keeps for
the backward (bits, not x, where the quantizer allows it); the reference path for what the kernels do not
run; threads; errors."""

import pytest

import bitquant
from conftest import need

torch = need("torch")
testing = need("bitquant.testing")
bqt = need("bitquant.torch")
from bitquant import _reference  # noqa: E402

CASES = testing.checked_cases()


def through_autograd(fn, x, g):
    leaf = x.detach().clone().requires_grad_()
    y = fn(leaf)
    dx, = torch.autograd.grad(y, leaf, g)
    return y.detach(), dx


@pytest.mark.parametrize("case", [c for c in CASES if c.direction != "backward"], ids=str)
def test_quantize_matches_the_reference(case):
    """forward cases check y; backward+cancel ones check dx through autograd (with cancellation); the
    straight-through backwards without cancellation are in test_straight_through_returns_grad."""
    x, g = testing.edge_inputs(4099, seed=21)
    params = case.kernel_params()
    y, dx = through_autograd(lambda t: bqt.quantize(t, case.quantizer, **params), x, g)
    ref = _reference.Function.apply
    q = bitquant.Quantizer(case.quantizer, **params)
    y_ref, dx_ref = through_autograd(lambda t: ref(t, case.quantizer, q.params), x, g)
    testing.assert_conforms(case, y if case.direction == "forward" else dx, y_ref if case.direction == "forward" else dx_ref,
                    x, g)


@pytest.mark.parametrize("name", [q.name for q in bitquant.quantizers()])
def test_backward_without_cancellation(name):
    x, g = testing.edge_inputs(3001, seed=22)
    case = testing.Case(name, "backward")
    _, dx = through_autograd(lambda t: bqt.quantize(t, name), x, g)
    q = bitquant.Quantizer(name)
    testing.assert_conforms(case, dx, _reference.backward(name, x, g, q.params), x, g)


def saved_of(y):
    return y.grad_fn.saved_tensors


@pytest.mark.parametrize("name, threshold, kept", [
    ("steheaviside", 0.0, "1 bit"), ("steheaviside", 1.3, "2 bits"), ("sign", 1.0, "1 bit"),
    ("weightdorefa", 1.0, "1 bit"), ("sign", 0.0, "nothing"), ("approxsign", 1.0, "x"), ("swishsign", 0.0, "x")])
def test_what_the_forward_keeps(name, threshold, kept):
    n = 1000
    x = torch.randn(n, requires_grad=True)
    y = bqt.quantize(x, name, cancel_threshold=threshold)
    saved, = saved_of(y)
    if kept == "x":
        assert saved.dtype == torch.float32 and saved.numel() == n
    else:
        words = {"nothing": 0, "1 bit": 1, "2 bits": 2}[kept] * ((n + 31) // 32)
        assert saved.dtype == torch.int32 and saved.numel() == words


def test_straight_through_returns_grad():
    x = torch.randn(100, requires_grad=True)
    g = torch.randn(100)
    dx, = torch.autograd.grad(bqt.quantize(x, "sign"), x, g)
    assert dx.data_ptr() == g.data_ptr()  # as bitorch's STE: no copy


def test_reference_path_for_what_the_kernels_do_not_run():
    x, g = testing.edge_inputs(2000, seed=23)
    x64, g64 = x.double(), g.double()
    assert not bqt.runs_on_kernels(x64) and bqt.runs_on_kernels(x)
    for name in ("approxsign", "weightdorefa", "progressive_sign"):
        q = bitquant.Quantizer(name, cancel_threshold=1.0)
        y, dx = through_autograd(lambda t: bqt.quantize(t, name, cancel_threshold=1.0), x64, g64)
        assert y.dtype == torch.float64
        y_ref, dx_ref = through_autograd(lambda t: _reference.Function.apply(t, name, q.params), x64, g64)
        assert torch.equal(y.nan_to_num(7), y_ref.nan_to_num(7)) and torch.equal(dx.nan_to_num(7), dx_ref.nan_to_num(7))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_16_bit_tensors_run_the_typed_kernels(dtype):
    x, g = testing.edge_inputs(1500, seed=24)
    x, g = x.to(dtype), g.to(dtype)
    for name in ("approxsign", "steheaviside", "inputdorefa"):
        y, dx = through_autograd(lambda t: bqt.quantize(t, name, cancel_threshold=1.0), x, g)
        q = bitquant.Quantizer(name, cancel_threshold=1.0)
        assert y.dtype == dtype and torch.equal(y.view(torch.int16), q.forward(x).view(torch.int16))
        assert torch.equal(dx.view(torch.int16), q.backward(x, g).view(torch.int16))


def test_non_contiguous_and_shaped_inputs():
    x = torch.randn(8, 9, requires_grad=True)
    g = torch.randn(9, 8)
    y = bqt.quantize(x.t(), "approxsign", cancel_threshold=1.0)
    assert y.shape == (9, 8)
    dx, = torch.autograd.grad(y, x, g)
    q = bitquant.Quantizer("approxsign", cancel_threshold=1.0)
    assert torch.equal(dx.t(), q.backward(x.detach().t().contiguous(), g))


def test_no_grad_computes_the_forward_only():
    x = torch.randn(64, requires_grad=True)
    with torch.no_grad():
        y = bqt.quantize(x, "steheaviside")
    assert y.grad_fn is None and torch.equal(y, bitquant.Quantizer("steheaviside").forward(x.detach()))


def test_threads_follow_torch_unless_set():
    before = torch.get_num_threads()
    try:
        bqt.set_num_threads(None)
        torch.set_num_threads(1)
        bqt.quantize(torch.randn(10), "sign")
        assert bqt._threads["applied"] == 1
        torch.set_num_threads(2)
        bqt.quantize(torch.randn(10), "sign")
        assert bqt._threads["applied"] == 2
        bqt.set_num_threads(1)
        bqt.quantize(torch.randn(10), "sign")
        assert bqt._threads["applied"] == 1
    finally:
        bqt.set_num_threads(None)
        torch.set_num_threads(before)


def test_errors():
    with pytest.raises(ValueError, match='no quantizer named "sgn"'):
        bqt.quantize(torch.randn(4), "sgn")
    with pytest.raises(ValueError, match="dorefa_bits = 0 is outside 1..24"):
        bqt.quantize(torch.randn(4), "inputdorefa", dorefa_bits=0)
    with pytest.raises(TypeError, match="does not read"):
        bqt.quantize(torch.randn(4), "sign", swish_beta=2.0)


@pytest.mark.skipif(not bqt._custom_ops, reason="torch.library.custom_op needs torch >= 2.4 (this is torch "
                                                 f"{torch.__version__})")
@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_torch_compile_traces_the_custom_ops_without_a_graph_break(backend):
    """fullgraph=True fails on any graph break. Non-contiguous inputs check the fake implementations'
    strides (inductor trusts them); the (name, params) pairs are new to this process, so the quantizer is
    created at trace time."""
    torch._dynamo.reset()
    for name, params in (("sign", {"cancel_threshold": 0.75}), ("approxsign", {"cancel_threshold": 0.625}),
                         ("steheaviside", {"cancel_threshold": 1.375})):
        def f(t, name=name, params=params):
            return (bqt.quantize(t.t(), name, **params) * 3).flatten()
        x = torch.randn(33, 17)
        g = torch.randn(17 * 33)
        y, dx = through_autograd(f, x, g)
        compiled_y, compiled_dx = through_autograd(torch.compile(f, fullgraph=True, backend=backend), x, g)
        assert torch.equal(y, compiled_y) and torch.equal(dx, compiled_dx), name


@pytest.mark.skipif(not bqt._custom_ops, reason="torch.library.custom_op needs torch >= 2.4")
def test_custom_ops_pass_opcheck():
    x = torch.randn(7, 9, requires_grad=True)
    for name in ("steheaviside", "approxsign"):
        q = bitquant.Quantizer(name, cancel_threshold=1.0)
        torch.library.opcheck(torch.ops.bitquant.forward_save.default, (x, name, bqt._values(q)))
