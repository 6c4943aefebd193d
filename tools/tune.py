#!/usr/bin/env python3
"""bitquant tune: sweeps the schedule parameters of schedules/<variant>.sched on this machine, and writes the
winners back into that file with the figures measured.

For each kernel family, starting from the file's current values (the baseline), one parameter at a time
(coordinate descent), each candidate value is built ahead of time by the generator, exactly as the build
would (a kernel object), linked into a small shared object, checked bit for bit against the scalar reference
on every quantizer that uses the family (bq_tune_harness), and timed at several lengths (a backward
family with and without cancellation in each sample, as it specializes on it). A candidate that
is not exact is rejected. The score is the mean of candidate time / baseline time over the lengths; the
best candidate is then timed again against the baseline with three times the samples, and kept only if it is at
least 3% faster. Every timing runs candidate and baseline alternately, sample by sample, so drift on a shared
machine cancels out; a tuned schedule is never slower than the one it replaces. Then: rebuild, bench.

Usage (through the bitquant command, which passes --config and --runnable):
  bitquant tune [--variant V] [--families a,b] [--sizes 2^14,2^17,2^20,2^23] [--threads N] [--samples K]
                [--dry-run]
"""
import argparse
import datetime
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

# The values tried for each parameter, in the order they are tuned.
CPU_SPACE = {
    "vector_multiple": [1, 2, 4, 8],
    "unroll": [1, 2, 4],
    "tasks": [4, 8, 16, 32],
    "min_chunk": [16384, 65536, 262144],
    "parallel_min": [65536, 131072, 262144, 524288],
}
KEEP_BELOW = 0.97  # a winner must take at most this share of the baseline's time


def read_config(path):
    config = {}
    with open(path) as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition("=")
            if key:
                config[key] = value
    return config


# The signatures bq_tune_harness checks candidates of. The saved-bit families (SAVE, SAVE_BITS, GRAD_SAVED)
# keep their schedule files' values: the harness has no exactness check for them yet.
TUNABLE_SIGNATURES = {"MAP", "GRAD", "ABSMAX", "COUNT"}


def read_families(kernels_def):
    """The kernel families of the table whose signature the harness can tune."""
    with open(kernels_def) as f:
        rows = re.findall(r"^BQ_FAMILY\((\w+), *(\w+),", f.read(), re.MULTILINE)
    return [family for family, signature in rows if signature in TUNABLE_SIGNATURES]


def parse_size(text):
    base, _, exponent = text.partition("^")
    return int(base) ** int(exponent) if exponent else int(text, 0)


class Schedule:
    """A schedule file: its lines, and each family's effective values (its own lines over the defaults)."""

    LINE = re.compile(r"^\s*(\w+)\.(\w+)\s*=\s*(\d+)")

    def __init__(self, path):
        self.path = path
        with open(path) as f:
            self.lines = f.read().splitlines()
        self.values = {}
        for line in self.lines:
            match = self.LINE.match(line)
            if match:
                self.values[(match.group(1), match.group(2))] = int(match.group(3))

    def effective(self, family, params):
        return {p: self.values.get((family, p), self.values[("default", p)]) for p in params}

    def set_family(self, family, chosen, comment):
        """Replaces the family's lines (and the comment tune wrote above them) with one per parameter whose
        winner differs from the default, under a comment with what was measured."""
        marker = f"# {family}: bitquant tune"
        self.lines = [line for line in self.lines
                      if not line.lstrip().startswith(family + ".") and not line.startswith(marker)]
        lines = [f"{family}.{param} = {value}" for param, value in chosen.items()
                 if value != self.values[("default", param)]]
        if lines:
            self.lines += [f"{marker} {comment}"] + lines

    def write(self):
        with open(self.path, "w") as f:
            f.write("\n".join(self.lines) + "\n")


class Counter:
    """A one-line count of the comparisons done, on stderr where it is a terminal; cleared before each line of
    the report (stdout), so that those stay whole."""

    def __init__(self, total):
        self.total, self.done, self.shown = total, 0, False
        self.enabled = sys.stderr.isatty()

    def clear(self):
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
            self.shown = False

    def step(self, to=None):
        self.done = self.done + 1 if to is None else to
        if self.enabled:
            sys.stderr.write(f"\rbitquant tune: {self.done}/{self.total} comparisons")
            sys.stderr.flush()
            self.shown = True


class Bench:
    """Builds candidates of one family on one variant, and compares them with the baseline."""

    def __init__(self, config, variant, family, sizes, threads, samples, workdir, counter):
        self.config, self.variant, self.family = config, variant, family
        self.sizes, self.threads, self.samples = sizes, threads, samples
        self.workdir, self.counter = workdir, counter
        self.built = {}

    def build(self, values):
        """The candidate as (shared object, symbol), built as the build would; or (None, why)."""
        key = describe(values)
        if key not in self.built:
            name = f"bq_tune_{self.family}_{len(self.built)}"
            generate = [self.config["generator"], "-g", self.family, "-f", name, "-e", "object", "-o",
                        self.workdir, "target=" + self.config[f"target.{self.variant}.{self.family}"]]
            generate += self.config[f"args.{self.family}"].split()
            generate += [f"{k}={v}" for k, v in values.items()]
            obj, lib = (os.path.join(self.workdir, name + ext) for ext in (".o", ".so"))
            run = subprocess.run(generate, capture_output=True, text=True)
            if run.returncode == 0:
                run = subprocess.run([self.config["cc"], "-shared", "-o", lib, obj], capture_output=True, text=True)
            self.built[key] = (lib, name) if run.returncode == 0 else (None, run.stderr.strip()[-300:])
        return self.built[key]

    def compare(self, values, baseline, samples):
        """(per size: candidate/baseline time ratio, candidate s, baseline s), or (None, why)."""
        cand, base = self.build(values), self.build(baseline)
        for lib, why in (cand, base):
            if lib is None:
                return None, "build failed: " + why
        command = [self.config["harness"], self.family, str(self.threads), str(samples), *cand, *base]
        run = subprocess.run(command + [str(n) for n in self.sizes], capture_output=True, text=True)
        self.counter.step()
        output = (run.stdout + run.stderr).strip()
        if run.returncode != 0:
            return None, output.splitlines()[0] if output else f"harness exited {run.returncode}"
        rows = [line.split()[2:] for line in run.stdout.splitlines() if line.startswith("time ")]
        return [tuple(float(v) for v in row) for row in rows], None


def describe(values):
    return " ".join(f"{k}={v}" for k, v in values.items())


def format_times(times):
    return "/".join(f"{t * 1e6:.4g}" for t in times)


def tune_family(bench, baseline, progress):
    """Coordinate descent from the baseline; returns (winner, its rows against the baseline) or None."""
    rows, error = bench.compare(baseline, baseline, bench.samples)
    if rows is None:
        progress(f"baseline rejected: {error}")
        return None
    best, best_score = dict(baseline), 1.0
    for param, candidates in CPU_SPACE.items():
        for value in candidates:
            if value == best[param]:
                continue
            trial = dict(best, **{param: value})
            rows, error = bench.compare(trial, baseline, bench.samples)
            if rows is None:
                progress(f"{param}={value}: rejected ({error})")
                continue
            score = statistics.fmean(row[0] for row in rows)
            marker = ""
            if score < best_score:
                best, best_score, marker = trial, score, "  <- best so far"
            progress(f"{param}={value}: {score:.3f}x the baseline's time{marker}")
    if best == baseline:
        return best, None
    # Confirm with three times the samples: noise must not crown a candidate.
    rows, error = bench.compare(best, baseline, 3 * bench.samples)
    if rows is None:
        progress(f"confirmation failed: {error}")
        return baseline, None
    confirmed = statistics.fmean(row[0] for row in rows)
    progress(f"confirm {describe(best)}: {confirmed:.3f}x the baseline's time")
    return (best, rows) if confirmed <= KEEP_BELOW else (baseline, None)


def main():
    parser = argparse.ArgumentParser(prog="bitquant tune", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="the build's tune.conf (passed by bitquant)")
    parser.add_argument("--runnable", required=True, help="CPU variants this machine runs, best last")
    parser.add_argument("--variant", help="the variant to tune (default: the best this machine runs)")
    parser.add_argument("--families", help="comma-separated kernel families (default: all)")
    parser.add_argument("--sizes", default="2^14,2^17,2^20,2^23", help="lengths timed (default %(default)s)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="worker threads (default: all)")
    parser.add_argument("--samples", type=int, default=7, help="timed samples per length (median)")
    parser.add_argument("--dry-run", action="store_true", help="measure and report, but write nothing")
    args = parser.parse_args()

    config = read_config(args.config)
    runnable = [v for v in args.runnable.split(",") if v]
    variant = args.variant or (runnable[-1] if runnable else None)
    built = sorted({key.split(".")[1] for key in config if key.startswith("target.")})
    if variant not in built:
        sys.exit(f"bitquant tune: variant {variant!r} is not built here (built: {', '.join(built)})")
    if variant not in runnable:
        sys.exit(f"bitquant tune: this machine cannot run {variant} (it runs: {', '.join(runnable)})")
    families = read_families(config["kernels"])
    chosen = args.families.split(",") if args.families else families
    unknown = [f for f in chosen if f not in families]
    if unknown:
        sys.exit(f"bitquant tune: unknown or untunable kernel families {', '.join(unknown)} "
                 f"(tunable: {', '.join(families)})")
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    schedule = Schedule(os.path.join(config["schedules"], variant + ".sched"))
    today = datetime.date.today().isoformat()
    size_names = ",".join(args.sizes.split(","))

    print(f"bitquant tune: {variant}, {len(chosen)} families, lengths {size_names}, {args.threads} threads, "
          f"median of {args.samples}; candidates must be bit-exact and {1 - KEEP_BELOW:.0%} faster to win")
    started = time.monotonic()
    changed = 0
    workdir = tempfile.mkdtemp(prefix="bitquant-tune-")
    # Per family at most: the baseline, each candidate value, and the confirmation.
    per_family = 2 + sum(len(candidates) for candidates in CPU_SPACE.values())
    counter = Counter(per_family * len(chosen))
    try:
        for index, family in enumerate(chosen, 1):
            def progress(message, index=index, family=family):
                elapsed = time.monotonic() - started
                counter.clear()
                print(f"[{index}/{len(chosen)} {family} {elapsed:5.0f}s] {message}", flush=True)

            baseline = schedule.effective(family, CPU_SPACE.keys())
            bench = Bench(config, variant, family, sizes, args.threads, args.samples, workdir, counter)
            progress(f"baseline {describe(baseline)}")
            result = tune_family(bench, baseline, progress)
            counter.step(to=index * per_family)  # the values it skipped, and a confirmation not needed
            if result is None:
                continue
            winner, rows = result
            if winner == baseline:
                progress(f"keeps {describe(baseline)}")
                continue
            ratio = statistics.fmean(row[0] for row in rows)
            replaced = describe({k: v for k, v in baseline.items() if winner[k] != v})
            comment = (f"{today}, {args.threads} threads: {ratio:.2f}x the time of {replaced}; "
                       f"us at {size_names}: {format_times(r[1] for r in rows)} vs {format_times(r[2] for r in rows)}")
            schedule.set_family(family, winner, comment)
            changed += 1
            progress(f"wins: {describe(winner)} ({ratio:.2f}x the baseline's time)")
    finally:
        counter.clear()
        shutil.rmtree(workdir, ignore_errors=True)
    if changed and not args.dry_run:
        schedule.write()
        print(f"bitquant tune: wrote {changed} tuned families to {schedule.path}; now rebuild "
              f"(cmake --build) and run bitquant bench")
    else:
        print(f"bitquant tune: {changed} families would change; {schedule.path} "
              f"{'left as it was (--dry-run)' if args.dry_run and changed else 'unchanged'}")


if __name__ == "__main__":
    main()
