"""Merging cluster jobs' files: ``ex.merge`` of 3 files of 100,000 runs each.

Each input is written by a real ``env.run`` (the same trajectory, ``x`` explored
over a third of the points each): every run stores a 100-float trace and a
spike count (``neuron.$``) and returns a float. The inputs are written once per
invocation; then, in interleaved rounds:

- **merge**: ``ex.merge(out, inputs)`` into a new file, every run kept;
- **merge, remove_duplicates**: the same, with ``remove_duplicates=True`` (no
  point repeats here, so it measures the cost of looking for them);
- **raw PyTables**: no framework: every dataset of the three inputs read whole
  with PyTables and written once, concatenated, into a new file with the same
  compression (what a merge must at least read and write), for the ratio.

Target (issue 19): a merge of 3 x 100,000-run files in under 10 s (median of
the rounds). Exit status 1 if it fails (at full size only: ``--runs`` smaller
than 100,000 is a smoke test).

Usage: python benchmarks/bench_merge.py [--runs 100000] [--rounds 3] [--dir DIR]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import tables

import explorer as ex

FILES = 3
TARGET_SECONDS = 10.0
FULL_RUNS = 100_000
TRACE = 100  # floats per run


def run_point(traj):
    """One run: a short trace, a count, a return value."""
    traj.add_result("neuron.$", V=np.full(TRACE, traj.x), nspikes=int(traj.x) % 7)
    return traj.x * 2.0


def write_inputs(folder: str, runs: int) -> list[str]:
    """The jobs' files: job k explores x over runs k*runs .. (k+1)*runs - 1."""
    paths = []
    for k in range(FILES):
        path = os.path.join(folder, f"job{k}.h5")
        with ex.Environment(trajectory="Grid", filename=path, overwrite_file=True,
                            progress=False) as env:
            traj = env.trajectory
            traj.add_parameter("x", 0.0, comment="explored")
            traj.add_parameter("tau", 1.0, comment="fixed")
            traj.explore({"x": (np.arange(runs) + k * runs).astype(float).tolist()})
            env.run(run_point)
        paths.append(path)
    return paths


def size(path: str) -> int:
    """Bytes of a file and its segments folder."""
    total = os.path.getsize(path)
    folder = f"{path}.segments"
    if os.path.isdir(folder):
        total += sum(os.path.getsize(os.path.join(folder, name)) for name in os.listdir(folder))
    return total


def raw_concatenate(inputs: list[str], out: str) -> None:
    """Every dataset of the inputs, read with PyTables and written once, concatenated."""
    found: dict[str, list[tables.Leaf]] = {}
    handles = [tables.open_file(path, "r") for path in inputs]
    try:
        for handle in handles:
            for leaf in handle.walk_nodes("/", "Leaf"):
                found.setdefault(leaf._v_pathname, []).append(leaf)
        with tables.open_file(out, "w") as target:
            for path, leaves in found.items():
                where, name = path.rsplit("/", 1)
                first = leaves[0]
                filters = first.filters
                if isinstance(first, tables.Table):
                    made = target.create_table(where or "/", name, first.description,
                                               filters=filters, createparents=True)
                    for leaf in leaves:
                        made.append(leaf.read())
                elif isinstance(first, tables.VLArray):
                    made = target.create_vlarray(where or "/", name, first.atom,
                                                 filters=filters, createparents=True)
                    for leaf in leaves:
                        for row in leaf.read():
                            made.append(row)
                else:
                    data = [leaf.read() for leaf in leaves]
                    if any(np.shape(part)[1:] != np.shape(data[0])[1:] for part in data) or \
                            not np.ndim(data[0]):
                        data = data[:1]
                    made = target.create_earray(where or "/", name,
                                                obj=np.concatenate(data) if np.ndim(data[0])
                                                else np.atleast_1d(data[0]),
                                                filters=filters, createparents=True)
    finally:
        for handle in handles:
            handle.close()


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=FULL_RUNS, help="runs per input file")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", help="work directory (default: a temporary one)")
    args = parser.parse_args()
    folder = args.dir or tempfile.mkdtemp(prefix="bench_merge-")
    os.makedirs(folder, exist_ok=True)
    try:
        start = time.perf_counter()
        inputs = write_inputs(folder, args.runs)
        written = time.perf_counter() - start
        out = os.path.join(folder, "merged.h5")
        figures: dict[str, list[float]] = {"merge": [], "dedup": [], "raw": []}

        def fresh() -> None:
            ex.storage.base.backend("hdf5").discard(out)

        for _ in range(args.rounds):
            fresh()
            os.sync()
            figures["dedup"].append(timed(lambda: ex.merge(out, inputs, remove_duplicates=True)))
            fresh()
            os.sync()
            raw = os.path.join(folder, "raw.h5")
            figures["raw"].append(timed(lambda: raw_concatenate(inputs, raw)))
            os.remove(raw)
            os.sync()
            figures["merge"].append(timed(lambda: ex.merge(out, inputs)))
            merged_size = size(out)
        traj = ex.load_trajectory(out)
        assert len(traj) == FILES * args.runs, len(traj)
        np.testing.assert_array_equal(traj.res.neuron.V[len(traj) - 1],
                                      np.full(TRACE, float(len(traj) - 1)))
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, cwd=os.path.dirname(os.path.abspath(__file__)))
        print(f"explorer at {commit.stdout.strip() or '?'}, python {sys.version.split()[0]}, "
              f"{os.cpu_count()} cores; {args.rounds} interleaved rounds, median (range)")
        print(f"inputs: {FILES} files x {args.runs:,} runs ({TRACE}-float trace, a count, a "
              f"return value each), {sum(map(size, inputs)) / 1e6:.1f} MB, written by env.run "
              f"in {written:.1f} s; merged file {merged_size / 1e6:.1f} MB")
        raw = statistics.median(figures["raw"])
        for key, label in (("merge", "ex.merge"), ("dedup", "ex.merge, remove_duplicates"),
                           ("raw", "raw PyTables: read all, write concatenated")):
            ratio = statistics.median(figures[key]) / raw if raw > 0 else float("nan")
            print(f"  {label:<44} {spread(figures[key]):<24} {ratio:5.2f}x raw PyTables")
        median = statistics.median(figures["merge"])
        full = args.runs >= FULL_RUNS
        ok = median < TARGET_SECONDS
        verdict = ("PASS" if ok else "FAIL") if full else "(smoke test: the target is for " \
            f"{FULL_RUNS:,} runs per file)"
        print(f"target: merge of {FILES} x {FULL_RUNS:,}-run files < {TARGET_SECONDS:.0f} s: "
              f"{median:.2f} s {verdict}")
        return 0 if ok or not full else 1
    finally:
        if not args.dir:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
