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


@pytest.fixture(autouse=True)
def _unpatched():
    """Every test starts and ends with bitorch unpatched (where bitquant.bitorch was used)."""
    yield
    patching = sys.modules.get("bitquant.bitorch")
    if patching is not None:
        patching.unpatch()
