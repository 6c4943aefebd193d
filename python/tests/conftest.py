"""The package's tests. They run against the bitquant package that Python imports: the installed wheel, or
the source tree's python/ with BITQUANT_LIBRARY pointing at a built libbitquant.so (the ctest test
`python`). With BITQUANT_TEST_REQUIRE_ALL=1 (scripts/test.sh) a missing torch or bitorch is a failure, not a
skip."""

import importlib
import os
import sys

import pytest

import bitquant

REQUIRE_ALL = os.environ.get("BITQUANT_TEST_REQUIRE_ALL") == "1"


def need(name):
    """The module, or a skip with the reason (a failure under BITQUANT_TEST_REQUIRE_ALL=1)."""
    if REQUIRE_ALL:
        return importlib.import_module(name)
    return pytest.importorskip(name)


def pytest_report_header(config):
    return f"bitquant package {os.path.dirname(bitquant.__file__)}, library {bitquant.library_path()}"


@pytest.fixture
def kernel_calls(monkeypatch):
    """Counts the kernel calls of bitquant.torch (forward and backward)."""
    import bitquant.torch as bqt
    counts = {"forward": 0, "backward": 0}
    forward, backward = bqt.forward_save, bqt.backward

    def counted_forward(*args, **kwargs):
        counts["forward"] += 1
        return forward(*args, **kwargs)

    def counted_backward(*args, **kwargs):
        counts["backward"] += 1
        return backward(*args, **kwargs)
    monkeypatch.setattr(bqt, "forward_save", counted_forward)
    monkeypatch.setattr(bqt, "backward", counted_backward)
    return counts


@pytest.fixture(autouse=True)
def _unpatched():
    """Every test starts and ends with bitorch unpatched (where bitquant.bitorch was used)."""
    yield
    patching = sys.modules.get("bitquant.bitorch")
    if patching is not None:
        patching.unpatch()
