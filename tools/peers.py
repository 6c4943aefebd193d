#!/usr/bin/env python3
"""bitquant against the real bitorch, side by side in one process, through the bitquant package.

Checks: every quantizer of the library's kernel table (bitquant.quantizers()), over bitorch's parameters, runs
on the same inputs twice: bitorch's module (forward, and the backward through autograd) and
bitquant.Quantizer (the kernels on the CPU, or with --backend through a GPU backend's host-memory entry
points). The results must agree under the spec's conformance rule (bitquant.testing.compare: bit for bit,
SwishSign's backward within 1e-6*|beta|*|g| + 2^-149, and WeightDoReFa forward outputs only where torch's own tanh
rounding explains them; README, "Numerics"). "backward+cancel" is the backward of bitorch's
QActivation(quantization, gradient_cancellation_threshold=1.0) against bitquant's cancel_threshold = 1.0.

Timings: each quantization as a bitorch user runs it, bitorch's own and under bitquant.bitorch.patch(): the
module's forward on a tensor that requires grad (so it records the graph, and patched keeps the saved bits),
and its backward through torch.autograd.grad; beside them bitquant.Quantizer's forward(x, out=) and
backward(x, g, out=) alone. Then one SGD step of bitquant.testing's small network for each configuration,
without and with the patch, with the share of the step spent in quantization (each captured quantization
call of the step replayed and timed alone, forward and backward).

    tools/peers.py --lib build/release/libbitquant.so [--sizes 2^16,2^20,2^24] [--threads 1,2] [--quick]
                   [--samples N] [--json out.json] [--plot out.png] [--bench build/release/tools/bitquant]
    tools/peers.py --lib build/release/libbitquant.so --check-only     # the ctest test

--lib loads that library into the package from the source tree (python/bitquant), so the tool needs no
installed wheel. Timings are medians of repeated samples, the sides taken alternately so that all see the
same state of a shared machine. GB/s counts the bytes the operation nominally moves, 8n for a forward (read x,
write y) and 12n for a backward (read x and g, write dx), for every series alike (also the roofline and plain
C taken from `bitquant bench --json`, whose own GB/s counts the traffic a kernel must move instead), so that
in the plot a higher point is always a faster run.

--check-only runs the agreement checks alone, at small sizes, on inputs holding the spec's edge values. Exit
status: 0 agree, 1 a disagreement or an error, 77 (ctest's skip) where torch or bitorch cannot be imported.

bitorch 0.4.1 needs torch, numpy and pandas to import (its package __init__ imports every module, the model
hub's pandas included), nothing else: Debian's python3-torch and python3-pandas, and bitorch itself from PyPI
with `pip install --no-deps bitorch==0.4.1` in a venv made with --system-site-packages.
"""

import argparse
import contextlib
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
BITORCH_VERSION = "0.4.1"  # the version the spec, and so bitquant, follows
MIN_SAMPLE_SECONDS = 2e-3  # as `bitquant bench`: enough calls per sample to dwarf the timer
CHECK_SIZES = (4099, (1 << 16) + 17)  # odd lengths reach the vector tails; the second one torch splits in threads
TRAIN_SHAPE = {"channels": 32, "hidden": 256, "size": 32, "batch": 64}  # the timed training step's network


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


def nominal_bytes_per_element(direction):
    return 8 if direction == "forward" else 12


def import_peers(lib):
    """The modules this tool uses (torch, bitorch, and the bitquant package from the source tree on lib), or
    None and why not."""
    os.environ["BITQUANT_LIBRARY"] = os.path.abspath(lib)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))
    try:
        import torch
        import bitorch.quantizations  # noqa: F401 (the import is the check)
        import bitquant
        import bitquant.bitorch
        import bitquant.testing
    except ImportError as error:
        return None, f"cannot import torch, bitorch and bitquant: {error}"
    return (torch, bitquant), None


def timed_cases(testing):
    """Every quantizer of the library with bitorch's defaults, and WeightDoReFa's forward at 8 bits, which
    bitquant runs with a different kernel (as `bitquant bench` shows it)."""
    cases = [testing.Case(q, d) for q in testing.quantizer_names() for d in testing.DIRECTIONS]
    cases.append(testing.Case("weightdorefa", "forward", dorefa_bits=8))
    return cases


def kernel_result(bitquant, case, x, g, backend):
    q = bitquant.Quantizer(case.quantizer, backend=backend, **case.kernel_params())
    return q.forward(x) if case.direction == "forward" else q.backward(x, g)


def compare(torch, bitquant, case, x, g, backend):
    """Run both sides once on x and g: the mismatch count, up to 5 examples as text, and which input bitorch
    returned as its result ("x", "g" or None): its identity forward and its straight-through backwards hand
    back the very tensor they were given, doing no work, where bitquant writes a new buffer."""
    testing = bitquant.testing
    ours = kernel_result(bitquant, case, x, g, backend)
    theirs = testing.run_module(testing.bitorch_module(case), case, x, g)
    bad, explained = testing.compare(case, ours, theirs, x, g)
    returns = {x.data_ptr(): "x", g.data_ptr(): "g"}.get(theirs.data_ptr())
    return {"mismatches": len(bad), "explained_by_torch_tanh": explained,
            "examples": testing.examples(bad, x, g, ours, theirs), "bitorch_returns": returns}


def run_checks(torch, bitquant, sizes, threads_list, backend):
    """Every checked case at every size and thread count, on x with NaN and on x without (WeightDoReFa's
    global max turns one NaN into an all-NaN output); returns the result rows."""
    rows = []
    for threads in threads_list:
        torch.set_num_threads(threads)
        bitquant.set_num_threads(threads)
        for n in sizes:
            x_nan, g = bitquant.testing.edge_inputs(n, seed=n)
            x_finite = x_nan.nan_to_num(nan=0.25, posinf=float("inf"), neginf=float("-inf"))
            for case in bitquant.testing.checked_cases():
                for data, x in (("with NaN", x_nan), ("NaN-free", x_finite)):
                    row = {"kernel": case.label, "n": n, "threads": threads, "data": data,
                           **compare(torch, bitquant, case, x, g, backend)}
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


def medians(sides, samples):
    """Median seconds per call of each side, a list of (enter, run): enter() sets a side's state (outside
    the timed loop), run() is one call. Sampled in turn; each sample repeats calls for at least
    MIN_SAMPLE_SECONDS."""
    reps = []
    for enter, run in sides:
        enter()
        run()  # warm-up: first-touch of pages, thread pools, caches
        start = time.perf_counter()
        run()
        one = time.perf_counter() - start
        reps.append(max(1, math.ceil(MIN_SAMPLE_SECONDS / max(one, 1e-7))))
    times = [[] for _ in sides]
    for _ in range(samples):
        for side, (enter, run) in enumerate(sides):
            enter()
            start = time.perf_counter()
            for _ in range(reps[side]):
                run()
            times[side].append((time.perf_counter() - start) / reps[side])
    return [statistics.median(t) for t in times]


def module_runner(torch, module, case, x, g):
    """A call of a module as training runs it: its forward on a leaf that requires grad (recording the graph),
    or autograd's dx through one recorded graph (retain_graph), which neither accumulates into x.grad nor
    times the forward."""
    leaf = x.detach().requires_grad_()
    if case.direction == "forward":
        return lambda: module(leaf)
    y = module(leaf)
    return lambda: torch.autograd.grad(y, leaf, g, retain_graph=True)[0]


def run_timings(torch, bitquant, sizes, threads_list, samples):
    """Check and time every timed case: bitorch, bitorch patched, and bitquant.Quantizer; print the table as it
    goes; return the result rows."""
    testing, patching = bitquant.testing, bitquant.bitorch
    print(f"{'kernel':33} {'n':>6} {'thr':>3} {'bitorch us':>11} {'patched us':>11} {'Quantizer us':>12} "
          f"{'bitorch GB/s':>12} {'patched GB/s':>12} {'speedup':>8} agree")
    rows = []
    for n in sizes:
        # As `bitquant bench`: x uniform in [-3, 3), g in [-0.5, 0.5).
        generator = torch.Generator().manual_seed(n)
        x = torch.empty(n).uniform_(-3, 3, generator=generator)
        g = torch.empty(n).uniform_(-0.5, 0.5, generator=generator)
        out = torch.zeros(n)
        for threads in threads_list:
            torch.set_num_threads(threads)
            bitquant.set_num_threads(threads)
            for case in timed_cases(testing):
                row = {"kernel": case.label, "quantizer": case.quantizer, "direction": case.direction,
                       "variant": case.variant, "params": case.params, "n": n, "threads": threads,
                       **compare(torch, bitquant, case, x, g, None)}
                q = bitquant.Quantizer(case.quantizer, **case.kernel_params())
                alone = (lambda: q.forward(x, out=out)) if case.direction == "forward" else \
                    (lambda: q.backward(x, g, out=out))
                module = testing.bitorch_module(case)
                with testing.quiet():
                    theirs = module_runner(torch, module, case, x, g)
                    with patching.patched():
                        patched = module_runner(torch, module, case, x, g)
                    t_bitorch, t_patched, t_alone = medians(
                        [(patching.unpatch, theirs), (patching.patch, patched), (patching.unpatch, alone)], samples)
                nbytes = nominal_bytes_per_element(case.direction) * n
                row.update({"bitorch_us": t_bitorch * 1e6, "patched_us": t_patched * 1e6,
                            "quantizer_us": t_alone * 1e6, "bitorch_gbps": nbytes / t_bitorch * 1e-9,
                            "patched_gbps": nbytes / t_patched * 1e-9, "speedup": t_bitorch / t_patched})
                rows.append(row)
                agree = "yes" if row["mismatches"] == 0 else f"NO: {row['mismatches']}"
                note = f"  (bitorch returns {row['bitorch_returns']} itself)" if row["bitorch_returns"] else ""
                print(f"{row['kernel']:33} {size_name(n):>6} {threads:3} {row['bitorch_us']:11.1f} "
                      f"{row['patched_us']:11.1f} {row['quantizer_us']:12.1f} {row['bitorch_gbps']:12.2f} "
                      f"{row['patched_gbps']:12.2f} {row['speedup']:8.2f} {agree}{note}", flush=True)
                for line in row["examples"]:
                    print(f"    {line}")
    return rows


def quantization_calls(torch, network, images, labels):
    """The quantization modules one training step calls, with their inputs: each QActivation, and each
    weight quantization (the Quantization modules not inside a QActivation), captured with forward hooks."""
    from bitorch.layers.qactivation import QActivation
    from bitorch.quantizations import Quantization
    inner = {id(m.activation_function) for m in network.modules() if isinstance(m, QActivation)}
    calls, handles = [], []
    for module in network.modules():
        if isinstance(module, QActivation) or (isinstance(module, Quantization) and id(module) not in inner):
            handles.append(module.register_forward_hook(
                lambda m, inputs, output: calls.append((m, inputs[0].detach().clone()))))
    import bitquant.testing
    with bitquant.testing.quiet():
        torch.nn.functional.cross_entropy(network(images), labels).backward()
    for handle in handles:
        handle.remove()
    network.zero_grad()
    return calls


def run_training(torch, bitquant, threads_list, samples):
    """One SGD step of the small network per configuration, bitorch's and patched, and the time of its
    quantization calls replayed alone (forward on a leaf, backward through autograd, each its own median)."""
    testing, patching = bitquant.testing, bitquant.bitorch
    shape = TRAIN_SHAPE
    images, labels = testing.training_data(batch=shape["batch"], size=shape["size"])
    print(f"\ntraining step: {shape['batch']} images of 3x{shape['size']}x{shape['size']}, "
          f"{shape['channels']} and {2 * shape['channels']} channels, {shape['hidden']} hidden")
    print(f"{'config':13} {'thr':>3} {'bitorch ms':>11} {'patched ms':>11} {'speedup':>8} "
          f"{'quantization share: bitorch':>28} {'patched':>8}")
    rows = []
    for threads in threads_list:
        torch.set_num_threads(threads)
        bitquant.set_num_threads(threads)
        for config in testing.NETWORK_CONFIGS:
            network = testing.small_network(config, channels=shape["channels"], hidden=shape["hidden"],
                                            size=shape["size"])
            optimizer = torch.optim.SGD(network.parameters(), lr=1e-3, momentum=0.9)

            def step():
                optimizer.zero_grad()
                with testing.quiet():
                    torch.nn.functional.cross_entropy(network(images), labels).backward()
                optimizer.step()

            t_step = medians([(patching.unpatch, step), (patching.patch, step)], samples)
            t_quant = []
            for enter in (patching.unpatch, patching.patch):
                enter()
                total = 0.0
                for module, x in quantization_calls(torch, network, images, labels):
                    leaf = x.requires_grad_()
                    g = torch.ones_like(x)

                    def call(module=module, leaf=leaf, g=g):
                        with testing.quiet():
                            torch.autograd.grad(module(leaf), leaf, g)
                    total += medians([(enter, call)], samples)[0]
                t_quant.append(total)
            patching.unpatch()
            row = {"config": config, "threads": threads, "bitorch_ms": t_step[0] * 1e3, "patched_ms": t_step[1] * 1e3,
                   "speedup": t_step[0] / t_step[1], "bitorch_quantization_ms": t_quant[0] * 1e3,
                   "patched_quantization_ms": t_quant[1] * 1e3, "bitorch_share": t_quant[0] / t_step[0],
                   "patched_share": t_quant[1] / t_step[1], **shape}
            rows.append(row)
            print(f"{config:13} {threads:3} {row['bitorch_ms']:11.2f} {row['patched_ms']:11.2f} {row['speedup']:8.2f} "
                  f"{row['bitorch_share']:28.0%} {row['patched_share']:8.0%}", flush=True)
    return rows


def run_bench(binary, sizes, threads_list, quick):
    """`bitquant bench --json` on the CPU at the same sizes and thread counts: its rows of the kernels the
    library runs, so neither GPU rows nor the autoscheduled alternatives (schedule other than "hand")."""
    command = [binary, "bench", "--json", "--on", "cpu", "--sizes", ",".join(map(str, sizes)),
               "--threads", ",".join(map(str, threads_list))] + (["--quick"] if quick else [])
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return [r for r in json.loads(output)["results"]
            if r["on"] not in ("cuda", "opencl") and r.get("schedule", "hand") == "hand"]


def plot(rows, bench_rows, directions, path):
    """GB/s against n, a panel per quantization (rows) and direction (columns): bitorch and bitorch patched
    (bitquant's kernels) at each thread count, and from the bench the roofline at each thread count and plain C (one thread). bitorch is
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
    colors = {"bitorch patched": "tab:blue", "bitorch": "tab:red", "roofline": "tab:gray", "plain C (1 thread)": "tab:green"}

    figure, axes = plt.subplots(len(groups), len(directions), figsize=(4 * len(directions), 2.4 * len(groups)),
                                squeeze=False)
    for i, group in enumerate(groups):
        for j, direction in enumerate(directions):
            ax = axes[i][j]
            mine = [r for r in rows if r["quantizer"] + r["variant"] == group and r["direction"] == direction]
            if not mine:
                ax.axis("off")
                continue
            per_element = nominal_bytes_per_element(direction)
            for threads in threads_list:
                series = sorted((r for r in mine if r["threads"] == threads), key=lambda r: r["n"])
                style = dict(linestyle=styles[threads], marker="o", markersize=3)
                ax.plot([r["n"] for r in series], [r["patched_gbps"] for r in series], color=colors["bitorch patched"],
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
                    timed = [(n, b["baseline_us"]) for n, b in measured if b.get("baseline_us")]
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
    parser.add_argument("--no-train", action="store_true", help="leave out the training step's timing")
    parser.add_argument("--backend", choices=("cuda", "opencl"),
                        help="check bitquant's kernels on this GPU backend (host-memory entry points) instead of "
                             "the CPU; a backend without a device is a skip (77)")
    args = parser.parse_args()
    if args.check_only and (args.plot or args.bench):
        parser.error("--plot and --bench need timings, not --check-only")
    if args.backend and not args.check_only:
        parser.error("--backend is for --check-only (the timings are bitorch's, on the CPU)")
    if args.samples is not None and args.samples < 1:
        parser.error("--samples must be at least 1")
    load = os.getloadavg()[0]  # before this process adds its own

    peers, why = import_peers(args.lib)
    if peers is None:
        print(f"[SKIP] {why}")
        return SKIP
    torch, bitquant = peers
    if args.backend:
        device = {b.name: b.device for b in bitquant.backends()}.get(args.backend)
        if device is None:
            print(f"[SKIP] bitquant's {args.backend} backend has no device here")
            return SKIP
        print(f"bitquant on {args.backend}: {device}")
    try:
        bitorch_version = importlib.metadata.version("bitorch")
    except importlib.metadata.PackageNotFoundError:
        bitorch_version = "unknown"
    variant = bitquant.active_cpu_variant()
    print(f"bitorch {bitorch_version}, torch {torch.__version__}; bitquant {bitquant.library_path()}, variant "
          f"{variant}; {cpu_name()}")
    if bitorch_version != BITORCH_VERSION:
        print(f"note: bitquant follows bitorch {BITORCH_VERSION}; other versions may differ")
    if load > 0.5 and not args.check_only:
        print(f"note: load average {load:.2f}: other processes are running, the timings will be noisy")

    report = {"bitorch": bitorch_version, "torch": torch.__version__, "bitquant_variant": variant,
              "cpu": cpu_name(), "threads": args.threads, "load_average": load}
    if args.check_only:
        sizes = args.sizes or list(CHECK_SIZES)
        rows = run_checks(torch, bitquant, sizes, args.threads, args.backend)
        failed = sum(1 for r in rows if r["mismatches"])
        print(f"{len(rows)} comparisons ({len(bitquant.testing.checked_cases())} cases x {len(sizes)} sizes x "
              f"{len(args.threads)} thread counts x 2 inputs): {failed} disagree")
    else:
        sizes = args.sizes or ([1 << 16, 1 << 20] if args.quick else [1 << 16, 1 << 20, 1 << 24])
        samples = args.samples or (5 if args.quick else 15)
        report["samples"] = samples
        rows = run_timings(torch, bitquant, sizes, args.threads, samples)
        failed = sum(1 for r in rows if r["mismatches"])
        if failed:
            print(f"{failed} of {len(rows)} timed kernels disagree with bitorch")
        if not args.no_train:
            report["training"] = run_training(torch, bitquant, args.threads, samples)
        report["bench"] = run_bench(args.bench, sizes, args.threads, args.quick) if args.bench else []
    report.update({"sizes": sizes, "results": rows})
    if args.json:
        with open(args.json, "w") as out:
            json.dump(report, out, indent=1)
    if args.plot:
        plot(rows, report["bench"], bitquant.testing.DIRECTIONS, args.plot)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
