#!/usr/bin/env python3
"""Checks that the shared library exports exactly the functions include/bitquant.h declares: every one of
them (runtime/bitquant.map lists them; one forgotten there is missing for every user of libbitquant.so),
and the Halide runtime (halide_*, for the kernels of users' quantizers: halide_do_par_for among them), and
nothing else (not the kernels).

Usage: check_exports.py HEADER LIBRARY [NM]   (NM, default nm, reads the library's dynamic symbols)
"""
import re
import subprocess
import sys


def main(header, library, nm_program="nm"):
    text = open(header).read()
    declared = set(re.findall(r"^[A-Za-z_][\w \*]*?\b(bq_\w+)\(", text, re.MULTILINE))
    nm = subprocess.run([nm_program, "-D", "--defined-only", library], capture_output=True, text=True, check=True)
    exported = {line.split()[-1].split("@")[0] for line in nm.stdout.splitlines() if line.strip()}
    exported = {name for name in exported if not name.startswith("_")}
    runtime = {name for name in exported if name.startswith("halide_")}
    exported -= runtime
    missing, extra = sorted(declared - exported), sorted(exported - declared)
    if "halide_do_par_for" not in runtime:
        missing.append("halide_do_par_for (the Halide runtime that users' kernels link against)")
    for name in missing:
        print(f"FAIL declared in {header} but not exported: {name}")
    for name in extra:
        print(f"FAIL exported but not declared: {name}")
    print(f"exports: {len(declared)} functions declared, {len(exported)} exported, and {len(runtime)} of the Halide "
          f"runtime")
    return 1 if missing or extra or not declared else 0


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        print(__doc__)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
