"""The installed wheel (scripts/test.sh sets BITQUANT_TEST_INSTALLED=1 after `pip install .`): the package
comes from site-packages, not the source tree, and loads its own copy of libbitquant, one plain file (a wheel
holds no symlinks), which needs nothing but the C library and the system's."""

import os
import pathlib
import subprocess

import pytest

import bitquant

pytestmark = pytest.mark.skipif(os.environ.get("BITQUANT_TEST_INSTALLED") != "1",
                                reason="the source tree's package (set BITQUANT_TEST_INSTALLED=1 for a wheel's)")
SOURCE = pathlib.Path(__file__).resolve().parents[1] / "bitquant"


def test_the_package_is_the_installed_one():
    here = pathlib.Path(bitquant.__file__).resolve().parent
    assert here != SOURCE and "site-packages" in here.parts
    assert "BITQUANT_LIBRARY" not in os.environ
    library = pathlib.Path(bitquant.library_path())
    assert library == here / "libbitquant.so" and library.is_file() and not library.is_symlink()
    assert [p.name for p in here.glob("libbitquant*")] == ["libbitquant.so"]


def test_the_library_needs_no_halide_or_python():
    needed = subprocess.run(["ldd", bitquant.library_path()], capture_output=True, text=True, check=True).stdout
    assert "not found" not in needed and "Halide" not in needed and "python" not in needed
    assert len(bitquant.quantizers()) > 0 and bitquant.active_cpu_variant()
