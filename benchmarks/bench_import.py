"""Importing a pypet file: ``ex.import_pypet`` of a synthetic 10,000-run file.

The input has pypet 0.7's layout (``tests/pypet_files.py`` writes it with
PyTables, as the fixture ``pypet_tutorial.hdf5`` is laid out): every run stores
a trace ``V`` of 1,000 floats and a spike count (``results.neuron.run_*``) and a
per-run derived parameter (``derived_parameters.runinfo.run_*.steps``);
``neuron.I`` and the array parameter ``neuron.weights`` are explored (one
``xa_*`` array per run). The input is written once per invocation; each round
imports it into a new file.

Target (issue 19): a 10,000-run pypet file imported in under 60 s (median of
the rounds). Exit status 1 if it fails (at full size only: ``--runs`` smaller
than 10,000 is a smoke test).

Usage: python benchmarks/bench_import.py [--runs 10000] [--trace 1000] [--rounds 3] [--dir DIR]
"""
from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time
import warnings

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))

import explorer as ex
from explorer.combine.pypet import PypetImportWarning
from pypet_files import write_pypet_file

TARGET_SECONDS = 60.0
FULL_RUNS = 10_000


def one_round(source: str, folder: str, number: int) -> float:
    """Seconds to import ``source`` into a new file (removed afterwards)."""
    out = os.path.join(folder, f"imported_{number}.h5")
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PypetImportWarning)
        # PyTables' note on the store's "$" groups (explorer reads them by name)
        warnings.filterwarnings("ignore", "object name is not a valid Python identifier")
        ex.import_pypet(source, out)
    seconds = time.perf_counter() - started
    os.remove(out)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=FULL_RUNS)
    parser.add_argument("--trace", type=int, default=1000, help="floats per run's V")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        source = os.path.join(folder, "pypet.hdf5")
        started = time.perf_counter()
        write_pypet_file(source, args.runs, trace=args.trace)
        print(f"input: {args.runs:,} runs x {args.trace:,} floats, "
              f"{os.path.getsize(source) / 2**20:.0f} MB, written in "
              f"{time.perf_counter() - started:.1f} s")
        times = [one_round(source, folder, number) for number in range(args.rounds)]
    median = statistics.median(times)
    print(f"import_pypet: median {median:.1f} s (range {min(times):.1f}-{max(times):.1f} s, "
          f"{args.rounds} rounds); target < {TARGET_SECONDS:.0f} s for {FULL_RUNS:,} runs")
    if args.runs < FULL_RUNS:
        print("smoke test (fewer runs than the target's): no verdict")
        return 0
    passed = median < TARGET_SECONDS
    print("PASS" if passed else "FAIL")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
