"""bitquant.bitorch against the real bitorch: every quantization and parameter case, forward and backward,
plain and under QActivation(1.0), patched against unpatched, bit for bit under the spec's rule, with the
kernels shown to have run; patch(), unpatch() and patched() as documented; and every case the patch must
leave to bitorch (it must then not run the kernels, and give bitorch's result)."""

import contextlib
import copy
import pickle
import subprocess
import sys

import pytest

from conftest import need

torch = need("torch")
need("bitorch")
testing = need("bitquant.testing")
bqt = need("bitquant.torch")
import bitquant.bitorch as bb  # noqa: E402
from bitorch.layers.qactivation import QActivation  # noqa: E402
from bitorch.quantizations import (ApproxSign, Identity, InputDoReFa, ProgressiveSign, Sign,  # noqa: E402
                                   SteHeaviside, SwishSign, WeightDoReFa)

CLASSES = (Sign, ApproxSign, SteHeaviside, SwishSign, InputDoReFa, WeightDoReFa, ProgressiveSign)


def both(module, case, x, g):
    """The case's result of module unpatched and patched."""
    theirs = testing.run_module(module, case, x, g)
    with bb.patched():
        ours = testing.run_module(module, case, x, g)
    return ours, theirs


@pytest.mark.parametrize("case", [c for c in testing.checked_cases() if c.quantizer != "identity"
                                  or c.direction == "backward+cancel"], ids=str)
def test_patched_equals_bitorch(case, kernel_calls):
    for data in ("with NaN", "NaN-free"):
        x, g = testing.edge_inputs(4099, seed=31)
        if data == "NaN-free":
            x = x.nan_to_num(nan=0.25, posinf=float("inf"), neginf=float("-inf"))
        ours, theirs = both(testing.bitorch_module(case), case, x, g)
        testing.assert_conforms(case, ours, theirs, x, g, f"{case.label} {data}")
    assert kernel_calls["forward"] == 2


def test_patch_unpatch_and_patched_are_reversible():
    originals = [cls.__dict__["quantize"] for cls in CLASSES] + [QActivation.__dict__["forward"]]
    assert not bb.is_patched()
    bb.patch()
    bb.patch()  # idempotent
    patched = [cls.__dict__["quantize"] for cls in CLASSES] + [QActivation.__dict__["forward"]]
    assert all(p is not o and p.__wrapped__ is o for p, o in zip(patched, originals))
    assert Identity.quantize.__module__.startswith("bitorch")
    bb.unpatch()
    bb.unpatch()
    assert [cls.__dict__["quantize"] for cls in CLASSES] + [QActivation.__dict__["forward"]] == originals
    with bb.patched():
        assert bb.is_patched()
        with bb.patched():
            pass
        assert bb.is_patched()  # the inner block leaves the outer one's patch on
    assert not bb.is_patched()
    bb.patch()
    with bb.patched():
        pass
    assert bb.is_patched()  # patched before the block, patched after it


def test_import_patches_nothing():
    script = ("import bitquant.bitorch, bitquant.torch\nfrom bitorch.quantizations import Sign\n"
              "print(Sign.quantize.__module__)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "bitorch.quantizations.sign"


def test_refuses_an_unchecked_bitorch_version(monkeypatch):
    monkeypatch.setattr(bb, "_bitorch_version", lambda: "0.5.0")
    with pytest.raises(RuntimeError, match="bitorch 0.5.0 is installed, but the patch was checked only against "
                                           "bitorch 0.4.1; nothing was patched"):
        bb.patch()
    assert not bb.is_patched() and Sign.__dict__["quantize"].__module__ == "bitorch.quantizations.sign"


class OwnSign(Sign):
    def quantize(self, x):
        return torch.sign(x) * 2


@pytest.mark.parametrize("make, x", [
    (lambda: ProgressiveSign(use_global_scaling=False, initial_scale=0.1, custom_transform=lambda s: 0.5),
     torch.randn(100)),
    (lambda: QActivation(ProgressiveSign(use_global_scaling=False, initial_scale=0.1, custom_transform=lambda s: s), 1.0),
     torch.randn(100)),
    (lambda: Sign(), torch.randn(100, dtype=torch.float64)),
    (lambda: QActivation(ApproxSign(), 1.0), torch.randn(100, dtype=torch.float64)),
    (lambda: Sign(), torch.randn(100).to(torch.bfloat16)),
    (lambda: OwnSign(), torch.randn(100)),
    (lambda: QActivation(OwnSign(), 1.0), torch.randn(100)),
    (lambda: InputDoReFa(bits=30), torch.randn(100)),
    (lambda: WeightDoReFa(bits=32), torch.randn(100)),
    (lambda: SwishSign(beta=torch.tensor(3.0)), torch.randn(100)),
], ids=["custom_transform", "qactivation-custom_transform", "float64", "qactivation-float64", "bfloat16",
        "overridden-quantize", "qactivation-overridden-quantize", "dorefa-30-bits",
        "weightdorefa-32-bits", "tensor-beta"])
@pytest.mark.filterwarnings("ignore:To copy construct from a tensor")  # bitorch's torch.tensor(beta) on a tensor
def test_left_to_bitorch(make, x, kernel_calls):
    module = make()
    g = torch.randn(x.shape, dtype=x.dtype)
    case = testing.Case("sign", "backward")
    with testing.quiet():
        theirs_y = module(x.clone())
        theirs_dx = testing.run_module(module, case, x, g)
        with bb.patched():
            ours_y = module(x.clone())
            ours_dx = testing.run_module(module, case, x, g)
    assert kernel_calls == {"forward": 0, "backward": 0}
    assert torch.equal(ours_y, theirs_y) and torch.equal(ours_dx, theirs_dx)


def test_hooks_still_run(kernel_calls):
    """A hook on QActivation's quantization keeps QActivation bitorch's (the hook must see the call); the
    quantization itself still runs on the kernels, and the cancellation in bitorch."""
    seen = []
    activation = ApproxSign()
    activation.register_forward_hook(lambda m, i, o: seen.append(o))
    module = QActivation(activation, 1.0)
    x, g = testing.edge_inputs(500, seed=33)
    case = testing.Case("approxsign", "backward+cancel")
    ours, theirs = both(module, case, x, g)
    assert len(seen) == 2 and kernel_calls == {"forward": 1, "backward": 1}
    testing.assert_conforms(case, ours, theirs, x, g)


def test_reaches_models_built_before_deep_copies_and_keeps_pickles_clean(kernel_calls):
    model = torch.nn.Sequential(QActivation(ApproxSign(), 1.0), torch.nn.Linear(8, 4))
    clone = copy.deepcopy(model)
    x = torch.randn(3, 8)
    expected = model(x)
    with bb.patched():
        assert torch.equal(clone(x), expected)
        loaded = pickle.loads(pickle.dumps(model))
        assert torch.equal(loaded(x), expected)
        assert b"bitquant" not in pickle.dumps(model)
    assert kernel_calls["forward"] == 2


def test_global_scale_is_read_on_every_call(kernel_calls):
    from bitorch.quantizations.progressive_sign import config
    module = ProgressiveSign()
    x = torch.randn(1000)
    before = config.progressive_sign_scale
    try:
        for scale in (0.0, 0.05, 0.3):
            config.progressive_sign_scale = scale
            theirs = module(x)
            with bb.patched():
                ours = module(x)
            assert torch.equal(ours, theirs), scale
    finally:
        config.progressive_sign_scale = before
    assert kernel_calls["forward"] == 3


def test_the_reference_path_equals_bitorch_on_float64():
    """quantize()'s reference path (float64 here) against bitorch's modules on float64 inputs."""
    x, g = testing.edge_inputs(2000, seed=32)
    x, g = x.double(), g.double()
    for case in testing.checked_cases():
        theirs = testing.run_module(testing.bitorch_module(case), case, x, g)
        leaf = x.clone().requires_grad_()
        y = bqt.quantize(leaf, case.quantizer, **case.kernel_params())
        ours = y.detach() if case.direction == "forward" else torch.autograd.grad(y, leaf, g)[0]
        same = (ours == theirs) | (ours.isnan() & theirs.isnan())
        assert bool(same.all()) and torch.equal(torch.signbit(ours[~ours.isnan()]), torch.signbit(theirs[~theirs.isnan()])), case.label


@pytest.mark.parametrize("threshold", [0.5, 1.3, 0.0, -1.0, float("inf")])
@pytest.mark.parametrize("name", ["steheaviside", "approxsign", "sign", "inputdorefa"])
def test_qactivation_thresholds(name, threshold, kernel_calls):
    """QActivation(q, t) at thresholds other than the default: 0 means bitorch's 1.0 (`t or 1.0`), a negative
    one turns cancellation off, 1.3 gives SteHeaviside's two saved bits, inf keeps every gradient."""
    module = QActivation(name, threshold)
    case = testing.Case(name, "backward")
    x, g = testing.edge_inputs(3001, seed=34)
    ours, theirs = both(module, case, x, g)
    testing.assert_conforms(case, ours, theirs, x, g)
    assert kernel_calls["forward"] == 1


@pytest.mark.parametrize("alpha, bits", [(10.0, None), (3.0, 3), (0.5, 8)])
def test_patched_pact_learns_alpha_as_bitorch(alpha, bits, kernel_calls):
    """bitorch.layers.pact.Pact patched: y and grad_x bit for bit bitorch's, and alpha's gradient (the sum of
    g * [x >= alpha]) within the library's stated bound of the float64 sum (torch sums in float32, in its
    own order); an alpha the library refuses (<= 0) is left to bitorch."""
    from bitorch.layers.pact import Pact
    x, g = testing.edge_inputs(20011, seed=35)
    g = g.nan_to_num(nan=0.5, posinf=1.0, neginf=-1.0)  # a finite gradient for alpha
    x[::89] = alpha
    results = []
    for patched in (False, True):
        module = Pact(bits)
        with torch.no_grad():
            module.alpha.fill_(alpha)
        leaf = x.clone().requires_grad_()
        with bb.patched() if patched else contextlib.nullcontext():
            y = module(leaf)
            y.backward(g)
        results.append((y.detach(), leaf.grad, module.alpha.grad))
    (y0, dx0, a0), (y1, dx1, a1) = results
    assert torch.equal(y0.view(torch.int32)[~y0.isnan()], y1.view(torch.int32)[~y1.isnan()])
    assert torch.equal(y0.isnan(), y1.isnan()) and torch.equal(dx0.view(torch.int32), dx1.view(torch.int32))
    assert a1.shape == a0.shape == ()
    terms = torch.where(x >= alpha, g.double(), torch.zeros((), dtype=torch.float64))
    bound = 2.0 ** -24 * abs(float(a1)) + (len(x) - 1) * 2.0 ** -53 * float(terms.abs().sum())
    assert abs(float(a1) - float(terms.sum())) <= bound
    assert abs(float(a0) - float(a1)) <= 1e-4 * float(terms.abs().sum())
    assert kernel_calls["forward"] == 1
    module = Pact(bits)
    with torch.no_grad():
        module.alpha.fill_(-1.0)
    with bb.patched():
        refused = module(x)
    assert torch.equal(refused.isnan(), module(x).isnan()) and kernel_calls["forward"] == 1
