"""An existing bitorch network trained unchanged on bitquant's kernels: bitquant.testing's small network
(QConv2d and QLinear with QActivation) trained for 20 SGD steps from one seed without and with the patch.
Every loss and every final weight must be identical bit for bit, but for SwishSign, whose backward is only
within the spec's tolerance: its losses within 1e-5 relative. The kernels must have run."""

import pytest

from conftest import need

torch = need("torch")
need("bitorch")
testing = need("bitquant.testing")
bqt = need("bitquant.torch")
import bitquant.bitorch as bb  # noqa: E402


def train(config, patch):
    images, labels = testing.training_data()
    network = testing.small_network(config)
    if patch:
        with bb.patched():
            losses = testing.train(network, images, labels)
    else:
        losses = testing.train(network, images, labels)
    return losses, network.state_dict()


@pytest.mark.parametrize("config", list(testing.NETWORK_CONFIGS))
def test_training_is_unchanged(config, monkeypatch):
    calls = []
    forward = bqt.forward_save
    monkeypatch.setattr(bqt, "forward_save", lambda *a, **k: calls.append(1) or forward(*a, **k))
    losses, weights = train(config, patch=False)
    assert not calls
    patched_losses, patched_weights = train(config, patch=True)
    assert len(calls) == 20 * 6  # three layers, each quantizing its input and its weights, per step
    assert all(torch.isfinite(loss) for loss in losses) and losses[-1] < losses[0]
    if config == "swishsign":
        for ours, theirs in zip(patched_losses, losses):
            assert abs(float(ours) - float(theirs)) <= 1e-5 * abs(float(theirs))
        return
    assert [loss.view(torch.int32).item() for loss in patched_losses] == [loss.view(torch.int32).item() for loss in losses]
    for name, tensor in weights.items():
        ours = patched_weights[name]
        assert torch.equal(ours.view(torch.int32) if ours.is_floating_point() else ours,
                           tensor.view(torch.int32) if tensor.is_floating_point() else tensor), name
