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
check / store.

Then it times explorer's own checksums (attribute ``crc``, :mod:`explorer.storage.
hdf5.checksum`) where they cost the most, on many small nodes: storing a fresh
trajectory with ``--small`` small parameters and one result of as many small
items, and loading it back (``load="all"``), with checksums and without (their
functions replaced by no-ops), alternately in each round; and loading that
trajectory with and without the guard against PyTables' crashes on damaged
attributes (:mod:`explorer.storage.hdf5.hdf5guard`: attribute names listed
through ctypes, root attributes checked before a file is opened). Usage::

    python benchmarks/bench_safety.py                  # 10 and 200 MB, 5 rounds
    python benchmarks/bench_safety.py --sizes 10 --rounds 3
    python benchmarks/bench_safety.py --sizes --small 2000   # checksums only
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time

import numpy as np
import tables

import explorer as ex
from explorer.storage.hdf5 import checksum, columns, files, hdf5guard, journal, nodes, store
from explorer.storage.hdf5.files import _first_hole

_CHECKSUM_FUNCTIONS = ("seal", "seal_tree", "mark", "seal_pending", "verify", "verify_tree")
_USERS = (nodes, columns, store, files, journal)


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


def _checksums(enabled: bool) -> None:
    """Turn explorer's checksums on, or off (no-ops where they are used)."""
    for module in _USERS:
        for name in _CHECKSUM_FUNCTIONS:
            if hasattr(module, name):
                setattr(module, name, getattr(checksum, name) if enabled
                        else (lambda *args, **kwargs: None))


def _small_round(directory: str, small: int, enabled: bool, number: int) -> dict[str, float]:
    """Store and load a trajectory of ``small`` parameters and result items."""
    _checksums(enabled)
    try:
        path = os.path.join(directory, f"small-{enabled}-{number}.h5")
        traj = ex.Trajectory("S")
        for i in range(small):
            traj.add_parameter(f"group{i % 20}.p{i}", float(i), comment="small")
        traj.add_result("many", **{f"r{i}": np.arange(4) + i for i in range(small)})
        clock = time.perf_counter()
        traj.store(path)
        times = {"store": time.perf_counter() - clock}
        traj.close()
        files.release(path)
        clock = time.perf_counter()
        loaded = ex.load_trajectory(path, "S", load="all")
        times["load"] = time.perf_counter() - clock
        loaded.close()
        files.release(path)
        os.remove(path)
        return times
    finally:
        _checksums(True)


def _guard(enabled: bool) -> None:
    """Turn the guard on, or off (PyTables' own attribute listing, no check at open)."""
    if enabled:
        hdf5guard.install()
        files.check_file = hdf5guard.check_file
    else:
        if "_g_list_attr" in vars(tables.attributeset.AttributeSet):
            del tables.attributeset.AttributeSet._g_list_attr  # back to PyTables' own
        files.check_file = lambda path: None


def _report_guard(directory: str, small: int, rounds: int) -> None:
    """Load a trajectory of ``small`` parameters and result items with and without the guard."""
    path = os.path.join(directory, "guard.h5")
    traj = ex.Trajectory("S")
    for i in range(small):
        traj.add_parameter(f"group{i % 20}.p{i}", float(i), comment="small")
    traj.add_result("many", **{f"r{i}": np.arange(4) + i for i in range(small)})
    traj.store(path)
    traj.close()
    found: dict[bool, list[float]] = {True: [], False: []}
    try:
        for _ in range(rounds):
            for enabled in (False, True):
                _guard(enabled)
                files.release(path)
                clock = time.perf_counter()
                ex.load_trajectory(path, "S", load="all").close()
                found[enabled].append(time.perf_counter() - clock)
    finally:
        _guard(True)
        files.release(path)
    print(f"load of {small} small parameters and result items, {rounds} rounds "
          "(median, range):")
    for enabled in (False, True):
        values = found[enabled]
        print(f"  {'with' if enabled else 'without':7s} the guard "
              f"{statistics.median(values) * 1e3:8.1f} ms "
              f"({min(values) * 1e3:.1f}-{max(values) * 1e3:.1f})")
    ratios = [a / b for a, b in zip(found[True], found[False])]
    print(f"  with / without: {statistics.median(ratios):.3f} "
          f"({min(ratios):.3f}-{max(ratios):.3f})")


def _report_small(directory: str, small: int, rounds: int) -> None:
    found: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    for number in range(rounds):
        for enabled in (False, True):
            found[enabled].append(_small_round(directory, small, enabled, number))
    print(f"{small} small parameters and result items, {rounds} rounds (median, range):")
    for what in ("store", "load"):
        for enabled in (False, True):
            values = [r[what] for r in found[enabled]]
            print(f"  {what:5s} {'with' if enabled else 'without':7s} checksums "
                  f"{statistics.median(values) * 1e3:8.1f} ms "
                  f"({min(values) * 1e3:.1f}-{max(values) * 1e3:.1f})")
        ratios = [a[what] / b[what] for a, b in zip(found[True], found[False])]
        print(f"  {what} with / without: {statistics.median(ratios):.2f} "
              f"({min(ratios):.2f}-{max(ratios):.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10, 200],
                        help="file sizes in MB")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--small", type=int, default=2000,
                        help="small nodes for the checksum figures (0: skip them)")
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
        if args.small:
            _report_small(directory, args.small, args.rounds)
            _report_guard(directory, args.small, args.rounds)
    finally:
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
