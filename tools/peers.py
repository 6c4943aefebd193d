#!/usr/bin/env python3
"""bitquant against the real bitorch, side by side in one process.

Every quantization of bitorch's registry runs on the same input buffers twice: bitorch's module (forward,
and the backward through autograd) and bitquant through ctypes. The results must agree under the spec's
conformance rule (shared/spec/SEMANTICS.md, section 7): bit for bit with any NaN matching any NaN, except
SwishSign's backward, within 1e-6*|beta|*|g| with NaN in the same places. A WeightDoReFa forward output that
differs is reported but allowed only where torch's own tanh rounding explains it (bitorch's formula with a
correctly rounded tanh gives bitquant's bits; README, "Numerics"). "backward+cancel" is the
backward of bitorch's QActivation(quantization, gradient_cancellation_threshold=1.0) against bitquant's
cancel_threshold = 1.0.

    tools/peers.py --lib build/release/libbitquant.so [--sizes 2^16,2^20,2^24] [--threads 1,2] [--quick]
                   [--samples N] [--json out.json] [--plot out.png] [--bench build/release/tools/bitquant]
    tools/peers.py --lib build/release/libbitquant.so --check-only     # the ctest test

Timings are the median of repeated samples, bitorch's and bitquant's taken alternately so that both see
the same state of a shared machine. GB/s counts the bytes the operation nominally moves, 8n for a forward
(read x, write y) and 12n for a backward (read x and g, write dx), for every series alike (also the
roofline and plain C taken from `bitquant bench --json`, whose own GB/s counts the traffic a kernel must
move instead), so that in the plot a higher point is always a faster run.

--check-only runs the agreement checks alone, at small sizes, over bitorch's parameters as well (SwishSign's
beta, DoReFa's bits, ProgressiveSign's scale, alpha, beta and eval mode), on inputs holding the spec's edge
values. Exit status: 0 agree, 1 a disagreement or an error, 77 (ctest's skip) where torch or bitorch cannot
be imported.

bitorch 0.4.1 needs torch, numpy and pandas to import (its package __init__ imports every module, the model
hub's pandas included), nothing else: Debian's python3-torch and python3-pandas, and bitorch itself from PyPI
with `pip install --no-deps bitorch==0.4.1` in a venv made with --system-site-packages.
"""

import argparse
import contextlib
import ctypes
import functools
import importlib.metadata
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time

SKIP = 77  # ctest's SKIP_RETURN_CODE

QUANTIZERS = ("identity", "sign", "approxsign", "steheaviside", "swishsign", "inputdorefa", "weightdorefa",
              "progressive_sign")
DIRECTIONS = ("forward", "backward", "backward+cancel")
CANCEL_THRESHOLD = 1.0  # bitorch's layers' default (LayerConfig.gradient_cancellation_threshold)
BITORCH_VERSION = "0.4.1"  # the version the spec, and so bitquant, follows
MIN_SAMPLE_SECONDS = 2e-3  # as `bitquant bench`: enough calls per sample to dwarf the timer
CHECK_SIZES = (4099, (1 << 16) + 17)  # odd lengths reach the vector tails; the second one torch splits in threads


def parse_sizes(text):
    """'2^16,1000' -> [65536, 1000]."""
    sizes = []
    for token in text.split(","):
        base, _, exponent = token.strip().partition("^")
        sizes.append(int(base) ** int(exponent) if exponent else int(base))
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"bad sizes: {text}")
    return sizes


def parse_threads(text):
    threads = [int(t) for t in text.split(",")]
    if not threads or min(threads) < 1:
        raise argparse.ArgumentTypeError(f"bad thread counts: {text}")
    return threads


def size_name(n):
    return f"2^{n.bit_length() - 1}" if n & (n - 1) == 0 else str(n)


class Case:
    """One quantization in one direction: the quantizer's registry name and the bq_params fields that differ
    from bitorch's defaults."""

    def __init__(self, quantizer, direction, **params):
        self.quantizer, self.direction, self.params = quantizer, direction, params

    @property
    def threshold(self):
        return CANCEL_THRESHOLD if self.direction == "backward+cancel" else 0.0

    @property
    def variant(self):
        """The parameters as a suffix in the style of `bitquant bench`'s labels ("[8 bits]"); "" for defaults."""
        p = self.params
        words = []
        if "swish_beta" in p:
            words.append(f"beta {p['swish_beta']:g}")
        if "dorefa_bits" in p:
            words.append(f"{p['dorefa_bits']} bits")
        for field, word in (("progressive_scale", "scale"), ("progressive_alpha", "alpha"),
                            ("progressive_beta", "beta")):
            if field in p:
                words.append(f"{word} {p[field]:g}")
        if p.get("training", 1) == 0:
            words.append("eval")
        return f"[{', '.join(words)}]" if words else ""

    @property
    def label(self):
        return f"{self.quantizer}.{self.direction}{self.variant}"

    def swish_tolerance_scale(self):
        """1e-6*|beta| for SwishSign's backward (beta 0 means bitorch's default 5), None where bits must match."""
        if self.quantizer != "swishsign" or self.direction == "forward":
            return None
        return 1e-6 * abs(self.params.get("swish_beta") or 5.0)


def nominal_bytes_per_element(direction):
    return 8 if direction == "forward" else 12


@contextlib.contextmanager
def quiet():
    """stdout to /dev/null: SteHeaviside's backward prints a line on every call."""
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        yield


def timed_cases():
    """Every quantization of the registry with bitorch's defaults, and WeightDoReFa's forward at 8 bits,
    which bitquant runs with a different kernel (as `bitquant bench` shows it)."""
    cases = [Case(q, d) for q in QUANTIZERS for d in DIRECTIONS]
    cases.append(Case("weightdorefa", "forward", dorefa_bits=8))
    return cases


def checked_cases():
    """The defaults, and bitorch's parameters over the ranges bitquant accepts."""
    variants = [(q, {}) for q in QUANTIZERS]
    variants += [("swishsign", {"swish_beta": b}) for b in (0.3, 1.0, 10.0, -1.0)]
    variants += [(q, {"dorefa_bits": b}) for q in ("inputdorefa", "weightdorefa") for b in (2, 4, 8, 16, 24)]
    # scale 0.02 gives T ~ 0.24; scale 3 gives T = 1.0 in double, so d = bitorch's EPSILON 1e-7.
    variants += [("progressive_sign", {"progressive_scale": s}) for s in (0.02, 0.05, 0.1, 0.5, 1.0, 3.0)]
    variants.append(("progressive_sign", {"progressive_scale": 0.1, "progressive_alpha": 2.5, "progressive_beta": 3}))
    variants.append(("progressive_sign", {"progressive_scale": 0.1, "training": 0}))
    return [Case(q, d, **p) for q, p in variants for d in DIRECTIONS]


class Bitquant:
    """libbitquant.so through ctypes."""

    class Params(ctypes.Structure):
        _fields_ = [("swish_beta", ctypes.c_float), ("dorefa_bits", ctypes.c_int),
                    ("progressive_scale", ctypes.c_double), ("progressive_alpha", ctypes.c_double),
                    ("progressive_beta", ctypes.c_double), ("training", ctypes.c_int),
                    ("cancel_threshold", ctypes.c_float)]

    BACKENDS = {"cuda": 0, "opencl": 1}  # bq_backend

    def __init__(self, path, backend=None):
        """backend None: the CPU (bq_forward); else a GPU backend's host-memory entry points."""
        lib = ctypes.CDLL(os.path.abspath(path))
        p, size = ctypes.c_void_p, ctypes.c_size_t
        for name, restype, argtypes in (
                ("bq_params_init", None, [ctypes.POINTER(self.Params)]),
                ("bq_create", ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(self.Params), ctypes.POINTER(p)]),
                ("bq_destroy", None, [p]),
                ("bq_forward", ctypes.c_int, [p, p, p, size]),
                ("bq_backward", ctypes.c_int, [p, p, p, p, size]),
                ("bq_last_error", ctypes.c_char_p, []),
                ("bq_set_num_threads", ctypes.c_int, [ctypes.c_int]),
                ("bq_cpu_variant_active", ctypes.c_int, [ctypes.POINTER(ctypes.c_char_p)]),
                ("bq_device_forward_host", ctypes.c_int, [p, ctypes.c_int, p, p, size]),
                ("bq_device_backward_host", ctypes.c_int, [p, ctypes.c_int, p, p, p, size]),
                ("bq_backend_device", ctypes.c_int, [ctypes.c_int, ctypes.c_char_p, size])):
            function = getattr(lib, name)
            function.restype, function.argtypes = restype, argtypes
        self.lib = lib
        self.backend = None if backend is None else self.BACKENDS[backend]

    def device(self):
        """The GPU device's name, or the reason there is none (RuntimeError)."""
        name = ctypes.create_string_buffer(256)
        self.check(self.lib.bq_backend_device(self.backend, name, len(name)), "bq_backend_device")
        return name.value.decode()

    def check(self, status, what):
        if status != 0:
            raise RuntimeError(f"bitquant {what}: status {status}: {self.lib.bq_last_error().decode()}")

    def variant(self):
        name = ctypes.c_char_p()
        self.check(self.lib.bq_cpu_variant_active(ctypes.byref(name)), "bq_cpu_variant_active")
        return name.value.decode()

    def set_num_threads(self, threads):
        self.check(self.lib.bq_set_num_threads(threads), "bq_set_num_threads")

    @contextlib.contextmanager
    def quantizer(self, case):
        params = self.Params()
        self.lib.bq_params_init(ctypes.byref(params))
        for field, value in case.params.items():
            setattr(params, field, value)
        params.cancel_threshold = case.threshold
        handle = ctypes.c_void_p()
        self.check(self.lib.bq_create(case.quantizer.encode(), ctypes.byref(params), ctypes.byref(handle)),
                   f"bq_create({case.label})")
        try:
            yield handle
        finally:
            self.lib.bq_destroy(handle)

    def runner(self, handle, case, x, g, out):
        """A call of the case's kernel writing out, with the pointers bound once so that a timed call costs
        only ctypes' own overhead."""
        if self.backend is not None:
            if case.direction == "forward":
                return functools.partial(self.lib.bq_device_forward_host, handle, self.backend, x.data_ptr(),
                                         out.data_ptr(), x.numel())
            return functools.partial(self.lib.bq_device_backward_host, handle, self.backend, x.data_ptr(),
                                     g.data_ptr(), out.data_ptr(), x.numel())
        if case.direction == "forward":
            return functools.partial(self.lib.bq_forward, handle, x.data_ptr(), out.data_ptr(), x.numel())
        return functools.partial(self.lib.bq_backward, handle, x.data_ptr(), g.data_ptr(), out.data_ptr(), x.numel())


def import_peers():
    """torch and bitorch's modules, or None and why not."""
    try:
        import torch
        import bitorch.quantizations
        from bitorch.layers.qactivation import QActivation
    except ImportError as error:
        return None, f"cannot import torch and bitorch: {error}"
    return (torch, bitorch.quantizations, QActivation), None


def bitorch_module(peers, case):
    """bitorch's module for the case, made as a user would: the registry's class, its own constructor
    arguments, and QActivation for gradient cancellation."""
    _, quantizations, QActivation = peers
    p = case.params
    if case.quantizer == "progressive_sign":
        # A module-local scale: with the default use_global_scaling=True every instance reads one config value.
        kwargs = {"use_global_scaling": False, "initial_scale": p.get("progressive_scale"),
                  "alpha": p.get("progressive_alpha"), "beta": p.get("progressive_beta")}
    elif case.quantizer == "swishsign":
        kwargs = {"beta": p.get("swish_beta")}
    elif case.quantizer in ("inputdorefa", "weightdorefa"):
        kwargs = {"bits": p.get("dorefa_bits")}
    else:
        kwargs = {}
    module = quantizations.quantization_from_name(case.quantizer)(**kwargs)
    module.train(p.get("training", 1) != 0)
    if case.threshold > 0:
        # Only a threshold > 0 means what it says: QActivation turns 0 (its default) into 1.0.
        module = QActivation(module, gradient_cancellation_threshold=case.threshold)
    return module


def bitorch_runner(torch, module, case, x, g):
    """A call of bitorch's side returning its result. The forward takes a tensor that requires grad, as in
    training, so it records the graph too. The backward reuses one recorded graph (retain_graph) and asks
    autograd for dx, which neither accumulates into x.grad nor times the forward."""
    leaf = x.detach().requires_grad_()
    if case.direction == "forward":
        return lambda: module(leaf)
    y = module(leaf)
    return lambda: torch.autograd.grad(y, leaf, g, retain_graph=True)[0]


def mismatches(torch, ours, theirs, tolerance=None):
    """Positions where the conformance rule fails: equal bits (so the sign of zero counts), or both NaN, or,
    where a tolerance tensor is given, both not NaN and |ours - theirs| <= tolerance."""
    nan_ours, nan_theirs = ours.isnan(), theirs.isnan()
    ok = (ours.view(torch.int32) == theirs.view(torch.int32)) | (nan_ours & nan_theirs)
    if tolerance is not None:
        ok |= ~nan_ours & ~nan_theirs & ((ours - theirs).abs() <= tolerance)
    return (~ok).nonzero().flatten()


def show_float(torch, value):
    bits = value.reshape(1).view(torch.int32).item() & 0xFFFFFFFF
    return f"{value.item()!r} (0x{bits:08x})"


def compare(torch, bq, peers, case, x, g):
    """Run both sides once on x and g: the mismatch count, up to 5 examples as text, and which input bitorch
    returned as its result ("x", "g" or None): its identity forward and its straight-through backwards hand
    back the very tensor they were given, doing no work, where bitquant writes a new buffer."""
    with bq.quantizer(case) as handle:
        ours = torch.empty_like(x)
        bq.check(bq.runner(handle, case, x, g, ours)(), case.label)
    with quiet():
        theirs = bitorch_runner(torch, bitorch_module(peers, case), case, x, g)().detach()
    scale = case.swish_tolerance_scale()
    bad = mismatches(torch, ours, theirs, None if scale is None else scale * g.abs())
    explained = 0
    if len(bad) and case.quantizer == "weightdorefa" and case.direction == "forward":
        # The one known cause (README, "Numerics"): torch's float tanh is 1 ulp off the correctly rounded one
        # on about 0.1% of inputs, and where the quantization lands on a rounding tie that moves a level.
        # A mismatch is explained if bitorch's own formula with a correctly rounded tanh gives bitquant's bits.
        rounded = with_correct_tanh(torch, x, case.params.get("dorefa_bits", 1))
        if len(mismatches(torch, ours[bad], rounded[bad])) == 0:
            explained, bad = len(bad), bad[:0]
    examples = [f"x={show_float(torch, x[i])} g={show_float(torch, g[i])}: bitquant {show_float(torch, ours[i])}, "
                f"bitorch {show_float(torch, theirs[i])}" for i in bad[:5].tolist()]
    returns = {x.data_ptr(): "x", g.data_ptr(): "g"}.get(theirs.data_ptr())
    return {"mismatches": len(bad), "explained_by_torch_tanh": explained, "examples": examples,
            "bitorch_returns": returns}


def with_correct_tanh(torch, x, bits):
    """WeightDoReFa's forward in bitorch's exact float32 order, but with tanh correctly rounded (from double)."""
    t = torch.tanh(x.double()).float()
    m = t.abs().max()
    levels = float(2 ** bits - 1)
    return 2.0 * (torch.round((t / (2.0 * m) + 0.5) * levels) / levels) - 1.0


def check_inputs(torch, n, seed):
    """x: random values (uniform in [-3, 3], and a quarter spread over every float32 magnitude) with the edge
    values written over its first and last elements (torch's vector bodies and scalar tails differ); g:
    random, 1 under the first edge values (the spec's tables), and specials (+-0, +-inf, NaN) sprinkled in."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.empty(n).uniform_(-3, 3, generator=generator)
    wide = torch.rand(n, generator=generator, dtype=torch.float64) < 0.25
    magnitude = torch.exp2(torch.empty(n, dtype=torch.float64).uniform_(-149, 128, generator=generator))
    signs = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0).double()
    x = torch.where(wide, (signs * magnitude).float(), x)

    inf, nan = float("inf"), float("nan")
    symmetric = [inf, 3.4028234663852886e38, 3e38, 2.0 ** 127, 1.7014117e38, 1.4e37, 1e30, 89.5, 17.9, 2.0, 1.3,
                 1.00000012, 1.0, 0.99999994, 0.5, 0.25, 1e-7, 6e-8, 5.9e-8, 5e-8, 1.1754944e-38, 1e-45, 0.0]
    ties = [(2 * k + 1) / (2 * levels) for levels in (1, 3, 15, 255) for k in range(levels)]
    special = torch.tensor(symmetric + [-v for v in symmetric] + ties + [nan])
    k = min(len(special), n // 2)
    x[:k], x[n - k:] = special[:k], special[:k]

    g = torch.empty(n).uniform_(-2, 2, generator=generator)
    g[:k] = 1.0
    g_special = torch.tensor([0.0, -0.0, inf, -inf, nan, -1e-40])
    sprinkled = g[k:n - k:101]  # a view: writing it writes g
    sprinkled.copy_(g_special.repeat(len(sprinkled) // len(g_special) + 1)[:len(sprinkled)])
    return x, g


def run_checks(torch, bq, peers, sizes, threads_list):
    """Every checked case at every size and thread count, on x with NaN and on x without (WeightDoReFa's
    global max turns one NaN into an all-NaN output); returns the result rows."""
    rows = []
    for threads in threads_list:
        torch.set_num_threads(threads)
        bq.set_num_threads(threads)
        for n in sizes:
            x_nan, g = check_inputs(torch, n, seed=n)
            x_finite = x_nan.nan_to_num(nan=0.25, posinf=float("inf"), neginf=float("-inf"))
            for case in checked_cases():
                for data, x in (("with NaN", x_nan), ("NaN-free", x_finite)):
                    row = {"kernel": case.label, "n": n, "threads": threads, "data": data,
                           **compare(torch, bq, peers, case, x, g)}
                    rows.append(row)
                    if row["explained_by_torch_tanh"]:
                        print(f"[NOTE] {case.label} n={n} threads={threads} x {data}: "
                              f"{row['explained_by_torch_tanh']} outputs differ, each explained by torch's tanh "
                              f"rounding (bitorch's formula with a correctly rounded tanh gives bitquant's bits)")
                    if row["mismatches"]:
                        print(f"[FAIL] {case.label} n={n} threads={threads} x {data}: {row['mismatches']} mismatches")
                        for line in row["examples"]:
                            print(f"       {line}")
    return rows


def paired_medians(run_a, run_b, samples):
    """Median seconds per call of each, sampled alternately; each sample repeats calls for at least
    MIN_SAMPLE_SECONDS."""
    reps = []
    for run in (run_a, run_b):
        run()  # warm-up: first-touch of pages, thread pools, caches
        start = time.perf_counter()
        run()
        one = time.perf_counter() - start
        reps.append(max(1, math.ceil(MIN_SAMPLE_SECONDS / max(one, 1e-7))))
    times = ([], [])
    for _ in range(samples):
        for side, run in enumerate((run_a, run_b)):
            start = time.perf_counter()
            for _ in range(reps[side]):
                run()
            times[side].append((time.perf_counter() - start) / reps[side])
    return statistics.median(times[0]), statistics.median(times[1])


def run_timings(torch, bq, peers, sizes, threads_list, samples):
    """Check and time every timed case; print the table as it goes; return the result rows."""
    print(f"{'kernel':33} {'n':>6} {'thr':>3} {'bitorch us':>11} {'bitquant us':>11} {'bitorch GB/s':>12} "
          f"{'bitquant GB/s':>13} {'speedup':>8} agree")
    rows = []
    for n in sizes:
        # As `bitquant bench`: x uniform in [-3, 3), g in [-0.5, 0.5).
        generator = torch.Generator().manual_seed(n)
        x = torch.empty(n).uniform_(-3, 3, generator=generator)
        g = torch.empty(n).uniform_(-0.5, 0.5, generator=generator)
        out = torch.zeros(n)
        for threads in threads_list:
            torch.set_num_threads(threads)
            bq.set_num_threads(threads)
            for case in timed_cases():
                row = {"kernel": case.label, "quantizer": case.quantizer, "direction": case.direction,
                       "variant": case.variant, "params": case.params, "n": n, "threads": threads,
                       **compare(torch, bq, peers, case, x, g)}
                with bq.quantizer(case) as handle, quiet():
                    theirs = bitorch_runner(torch, bitorch_module(peers, case), case, x, g)
                    t_bitorch, t_bitquant = paired_medians(theirs, bq.runner(handle, case, x, g, out), samples)
                nbytes = nominal_bytes_per_element(case.direction) * n
                row.update({"bitorch_us": t_bitorch * 1e6, "bitquant_us": t_bitquant * 1e6,
                            "bitorch_gbps": nbytes / t_bitorch * 1e-9, "bitquant_gbps": nbytes / t_bitquant * 1e-9,
                            "speedup": t_bitorch / t_bitquant})
                rows.append(row)
                agree = "yes" if row["mismatches"] == 0 else f"NO: {row['mismatches']}"
                note = f"  (bitorch returns {row['bitorch_returns']} itself)" if row["bitorch_returns"] else ""
                print(f"{row['kernel']:33} {size_name(n):>6} {threads:3} {row['bitorch_us']:11.1f} "
                      f"{row['bitquant_us']:11.1f} {row['bitorch_gbps']:12.2f} {row['bitquant_gbps']:13.2f} "
                      f"{row['speedup']:8.2f} {agree}{note}", flush=True)
                for line in row["examples"]:
                    print(f"    {line}")
    return rows


def run_bench(binary, sizes, threads_list, quick):
    """`bitquant bench --json` on the CPU at the same sizes and thread counts: its rows of the kernels the
    library runs, so neither GPU rows nor the autoscheduled alternatives (schedule other than "hand")."""
    command = [binary, "bench", "--json", "--on", "cpu", "--sizes", ",".join(map(str, sizes)),
               "--threads", ",".join(map(str, threads_list))] + (["--quick"] if quick else [])
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return [r for r in json.loads(output)["results"]
            if r["on"] not in ("cuda", "opencl") and r.get("schedule", "hand") == "hand"]


def plot(rows, bench_rows, path):
    """GB/s against n, a panel per quantization (rows) and direction (columns): bitquant and bitorch at each
    thread count, and from the bench the roofline at each thread count and plain C (one thread). bitorch is
    left out where it returns its input tensor (no work, so no rate)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # The bench's GB/s count the bytes each kernel must move: rescaled here to the nominal bytes.
    roofline_bytes = {"copy": 8, "read2-write1": 12, "read+copy": 12}
    bench = {(r["kernel"], r["n"], r["threads"]): r for r in bench_rows}
    groups = list(dict.fromkeys(r["quantizer"] + r["variant"] for r in rows))
    sizes = sorted({r["n"] for r in rows})
    threads_list = sorted({r["threads"] for r in rows})
    styles = dict(zip(threads_list, ("--", "-", "-.", ":")))
    colors = {"bitquant": "tab:blue", "bitorch": "tab:red", "roofline": "tab:gray", "plain C (1 thread)": "tab:green"}

    figure, axes = plt.subplots(len(groups), len(DIRECTIONS), figsize=(4 * len(DIRECTIONS), 2.4 * len(groups)),
                                squeeze=False)
    for i, group in enumerate(groups):
        for j, direction in enumerate(DIRECTIONS):
            ax = axes[i][j]
            mine = [r for r in rows if r["quantizer"] + r["variant"] == group and r["direction"] == direction]
            if not mine:
                ax.axis("off")
                continue
            per_element = nominal_bytes_per_element(direction)
            for threads in threads_list:
                series = sorted((r for r in mine if r["threads"] == threads), key=lambda r: r["n"])
                style = dict(linestyle=styles[threads], marker="o", markersize=3)
                ax.plot([r["n"] for r in series], [r["bitquant_gbps"] for r in series], color=colors["bitquant"],
                        **style)
                working = [r for r in series if not r["bitorch_returns"]]
                ax.plot([r["n"] for r in working], [r["bitorch_gbps"] for r in working], color=colors["bitorch"],
                        **style)
                measured = [(r["n"], bench.get((r["kernel"], r["n"], threads))) for r in series]
                measured = [(n, b) for n, b in measured if b is not None]
                ax.plot([n for n, _ in measured],
                        [b["roofline_gbps"] * per_element / roofline_bytes[b["roofline"]] for _, b in measured],
                        color=colors["roofline"], **style)
                if threads == threads_list[0]:
                    timed = [(n, b["plain_c_us"]) for n, b in measured if b["plain_c_us"]]
                    ax.plot([n for n, _ in timed], [per_element * n / (us * 1e3) for n, us in timed],
                            color=colors["plain C (1 thread)"], linestyle=":", marker="s", markersize=3)
            title = mine[0]["kernel"]
            if mine[0]["bitorch_returns"]:
                title += f" (bitorch returns {mine[0]['bitorch_returns']})"
            ax.set_title(title, fontsize=9)
            ax.set_xscale("log", base=2)
            ax.set_xticks(sizes, [f"$2^{{{n.bit_length() - 1}}}$" if n & (n - 1) == 0 else str(n) for n in sizes])
            ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.3)
            if j == 0:
                ax.set_ylabel("GB/s")
    handles = [plt.Line2D([], [], color=c, label=name) for name, c in colors.items()]
    handles += [plt.Line2D([], [], color="black", linestyle=styles[t], label=f"{t} thread{'s' if t > 1 else ''}")
                for t in threads_list]
    top = 1 / figure.get_figheight()  # an inch, as a fraction of the figure's height: the title, then the legend
    figure.suptitle("GB/s against n: 8n bytes for a forward, 12n for a backward", y=1 - 0.15 * top, va="top")
    figure.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 1 - 0.45 * top), ncol=len(handles),
                  fontsize=9, frameon=False)
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.8 * top))
    figure.savefig(path, dpi=100)


def cpu_name():
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lib", required=True, help="libbitquant.so")
    parser.add_argument("--sizes", type=parse_sizes,
                        help="element counts, e.g. 2^16,2^20,2^24 (the default; --quick: 2^16,2^20; "
                             "--check-only: 4099,65553)")
    parser.add_argument("--threads", type=parse_threads, default=[1, 2], help="thread counts (default 1,2)")
    parser.add_argument("--quick", action="store_true", help="sizes 2^16,2^20 and 5 samples")
    parser.add_argument("--samples", type=int, help="samples per timing (default 15; --quick: 5)")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    parser.add_argument("--plot", metavar="PATH", help="write a PNG of GB/s against n")
    parser.add_argument("--bench", metavar="BITQUANT", help="the bitquant command: its bench's roofline and plain C "
                                                            "go into the JSON and the plot")
    parser.add_argument("--check-only", action="store_true", help="agreement checks only (exit 0, 1, or 77: skip)")
    parser.add_argument("--backend", choices=sorted(Bitquant.BACKENDS),
                        help="run bitquant's kernels on this GPU backend (host-memory entry points) instead of "
                             "the CPU; a backend without a device is a skip (77)")
    args = parser.parse_args()
    if args.check_only and (args.plot or args.bench):
        parser.error("--plot and --bench need timings, not --check-only")
    if args.samples is not None and args.samples < 1:
        parser.error("--samples must be at least 1")
    load = os.getloadavg()[0]  # before this process adds its own

    peers, why = import_peers()
    if peers is None:
        print(f"[SKIP] {why}")
        return SKIP
    torch = peers[0]
    bq = Bitquant(args.lib, args.backend)
    if args.backend:
        try:
            print(f"bitquant on {args.backend}: {bq.device()}")
        except RuntimeError as why:
            print(f"[SKIP] {why}")
            return SKIP
    try:
        bitorch_version = importlib.metadata.version("bitorch")
    except importlib.metadata.PackageNotFoundError:
        bitorch_version = "unknown"
    print(f"bitorch {bitorch_version}, torch {torch.__version__}; bitquant {args.lib}, variant {bq.variant()}; "
          f"{cpu_name()}")
    if bitorch_version != BITORCH_VERSION:
        print(f"note: bitquant follows bitorch {BITORCH_VERSION}; other versions may differ")
    if load > 0.5 and not args.check_only:
        print(f"note: load average {load:.2f}: other processes are running, the timings will be noisy")

    report = {"bitorch": bitorch_version, "torch": torch.__version__, "bitquant_variant": bq.variant(),
              "cpu": cpu_name(), "threads": args.threads, "load_average": load}
    if args.check_only:
        sizes = args.sizes or list(CHECK_SIZES)
        rows = run_checks(torch, bq, peers, sizes, args.threads)
        failed = sum(1 for r in rows if r["mismatches"])
        print(f"{len(rows)} comparisons ({len(checked_cases())} cases x {len(sizes)} sizes x "
              f"{len(args.threads)} thread counts x 2 inputs): {failed} disagree")
    else:
        sizes = args.sizes or ([1 << 16, 1 << 20] if args.quick else [1 << 16, 1 << 20, 1 << 24])
        samples = args.samples or (5 if args.quick else 15)
        report["samples"] = samples
        rows = run_timings(torch, bq, peers, sizes, args.threads, samples)
        failed = sum(1 for r in rows if r["mismatches"])
        if failed:
            print(f"{failed} of {len(rows)} timed kernels disagree with bitorch")
        bench_rows = run_bench(args.bench, sizes, args.threads, args.quick) if args.bench else []
        report["bench"] = bench_rows
        if args.plot:
            plot(rows, bench_rows, args.plot)
    report.update({"sizes": sizes, "results": rows})
    if args.json:
        with open(args.json, "w") as out:
            json.dump(report, out, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
