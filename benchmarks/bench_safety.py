"""What checking a write before it is committed costs.

Every write of an explorer file goes to a copy that is put on disk (``fsync``)
and searched for the holes failed writes leave (``SEEK_HOLE``) before it
replaces the file. For files of several sizes this times, side by side in each
round:

- **store**: ``traj.store()`` adding one small result to a stored trajectory
  (the whole write: claim, copy, write, close, check, replace);
- **fsync** and **holes**: the two parts of the check alone, on a fresh copy
  of the same file, as the store leaves it before the check;
- **copy**: the copy alone (``shutil.copyfile``), the part of the store that
  grows with the file today.

It prints the median and range of each over ``--rounds`` rounds and the ratio
check / store. Usage::

    python benchmarks/bench_safety.py                  # 10 and 200 MB, 5 rounds
    python benchmarks/bench_safety.py --sizes 10 --rounds 3
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time

import numpy as np

import explorer as ex
from explorer.storage.hdf5.files import _first_hole


def _file_of(directory: str, megabytes: int) -> str:
    path = os.path.join(directory, f"f{megabytes}.h5")
    traj = ex.Trajectory("T")
    traj.add_parameter("x", 0.0)
    rng = np.random.default_rng(0)
    traj.add_result("bulk", data=rng.random(megabytes * 131072))  # incompressible
    traj.store(path)
    return path


def _check(path: str, times: dict[str, float]) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        clock = time.perf_counter()
        os.fsync(descriptor)
        times["fsync"] = time.perf_counter() - clock
        clock = time.perf_counter()
        assert _first_hole(descriptor, 0) is None
        times["holes"] = time.perf_counter() - clock
    finally:
        os.close(descriptor)


def _round(path: str, number: int) -> dict[str, float]:
    times = {}
    traj = ex.load_trajectory(path, "T")
    traj.add_result(f"small.r{number}", value=float(number))
    clock = time.perf_counter()
    traj.store()
    times["store"] = time.perf_counter() - clock
    traj.close()
    copy = path + ".bench-copy"
    clock = time.perf_counter()
    shutil.copyfile(path, copy)
    times["copy"] = time.perf_counter() - clock
    _check(copy, times)
    times["check"] = times["fsync"] + times["holes"]
    os.remove(copy)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 200],
                        help="file sizes in MB")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    args = parser.parse_args()
    directory = args.dir or tempfile.mkdtemp(prefix="bench-safety-")
    try:
        for size in args.sizes:
            path = _file_of(directory, size)
            rounds = [_round(path, number) for number in range(args.rounds)]
            print(f"file of {os.path.getsize(path) / 1e6:.0f} MB, {args.rounds} rounds "
                  "(median, range):")
            for what in ("store", "copy", "fsync", "holes"):
                values = [r[what] for r in rounds]
                print(f"  {what:6s} {statistics.median(values) * 1e3:8.1f} ms "
                      f"({min(values) * 1e3:.1f}-{max(values) * 1e3:.1f})")
            ratios = [r["check"] / r["store"] for r in rounds]
            print(f"  check / store: {statistics.median(ratios):.2f} "
                  f"({min(ratios):.2f}-{max(ratios):.2f})")
    finally:
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
