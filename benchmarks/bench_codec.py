"""Codec benchmark: blosc1 as explorer writes it today against blosc2, direct chunk writes.

Explorer compresses each ~1 MiB HDF5 chunk in the worker with python-blosc
(c-blosc 1: lz4, level 5, byte shuffle), appends HDF5's Fletcher32 checksum
in numpy, and the writer copies the bytes into an EArray whose filters say
``blosc:lz4`` with ``Leaf.write_chunk`` (``explorer/storage/hdf5/codec.py``,
``encode.py``, ``columns.append_packed``). python-blosc is in very-low-maintenance
mode; python-blosc2 comes with PyTables. A blosc2 chunk is not a blosc1 chunk,
so moving means a ``blosc2`` filter (and a format version bump). This script
measures both side by side, in one invocation.

What PyTables' ``blosc2`` filter reads from a directly written chunk (its
``hdf5-blosc2/src/blosc2_filter.c``, checked here by experiment): a Blosc2
*contiguous frame* (``blosc2_schunk_from_buffer``) whose first chunk holds the
whole HDF5 chunk, either a plain super-chunk frame
(``blosc2.SChunk(...).to_cframe()``) or a B2ND frame
(``blosc2.asarray(rows, chunks=rows.shape).to_cframe()``, shape = the chunk
shape). A bare chunk from ``blosc2.compress2`` fails to read ("filter returned
failure"), in PyTables and in h5py + hdf5plugin alike. With Fletcher32 on,
the 4 checksum bytes follow the frame, as they follow a blosc1 chunk today.

Variants (``--variants`` picks some, by name):

- ``blosc1-lz4``: explorer today: ``blosc.compress(rows, typesize=8, clevel=5,
  shuffle=SHUFFLE, cname="lz4")``, one thread, then ``write_chunk`` into an
  EArray with ``Filters(complib="blosc:lz4", complevel=5, shuffle=True)``;
- ``blosc2-lz4``, ``blosc2-zstd1``, ``blosc2-blosclz``: python-blosc2, one
  thread, byte shuffle, lz4 level 5 / zstd level 1 / blosclz level 5, each
  chunk as a one-chunk super-chunk frame, ``write_chunk`` into an EArray with
  ``Filters(complib="blosc2:<codec>", ...)``;
- ``blosc2-lz4-b2nd``: the same as ``blosc2-lz4`` but each chunk as a B2ND
  frame (what PyTables' own filter writes for chunks of rank > 1, and what its
  optimised slice reads need; they are off while Fletcher32 is on);
- ``pipe-blosc1-lz4``, ``pipe-blosc2-lz4``: reference: PyTables' own filter
  pipeline, ``EArray.append`` of the whole array (compression inside HDF5).

All datasets have explorer's chunk shape (``ceil(1 MiB / row bytes)`` runs per
chunk: 14 runs of 10,000 samples, 1.07 MiB) and, by default, Fletcher32
(explorer's default; ``--no-checksum`` turns it off everywhere). Direct
variants pad the last chunk with zero rows, as explorer does.

Data (float64, ``--runs`` x ``--samples``, default 2,000 x 10,000 = 160 MB each):

- ``uniform``: ``rng.random`` in [0, 1): incompressible but for the exponent
  bytes (about 0.88 of raw with lz4 + shuffle);
- ``lif``: membrane potentials (mV) of leaky integrate-and-fire neurons
  (dt 0.1 ms, tau 10 ms, rest and reset -65 mV, threshold -50 mV, a one-sample
  spike to +20 mV then 2 ms held at reset), driven by a constant input drawn
  per run (sub- and supra-threshold) plus Ornstein-Uhlenbeck noise whose sd is
  0 for a quarter of the runs and 0.5-2 mV for the rest.

Measured per variant and data set, ``--rounds`` rounds (default 5), the
variants' order rotated each round (interleaved), median and min-max:

- codec, checksum: the worker's side: every chunk compressed into bytes
  (codec), then its Fletcher32 checksum appended in numpy (checksum, the same
  code as explorer's ``codec.with_checksum``); not measured apart for the
  pipeline variants: they compress and checksum while writing;
- write: the writer's side: ``open_file`` to ``close``, creating the EArray,
  ``truncate`` and one ``write_chunk`` per chunk (or ``append``); every write
  starts after ``os.sync()``; the time ends at close, not at fsync;
- total: codec + checksum + write (one worker and one writer in series);
- size: the file's size (and / raw data bytes);
- read all: ``open_file``, ``earray[:runs]``, close, checked bit for bit
  against the data (the file is still in the page cache);
- read one: ``earray[i]`` for ``--picks`` runs in distinct chunks of an open
  file (each a chunk not yet read: one chunk decompressed), median per run;
  each checked bit for bit.

Each file is also read once with h5py + hdf5plugin (when both are installed;
otherwise the column says so) and checked bit for bit.

Usage: python benchmarks/bench_codec.py [--runs 2000] [--samples 10000]
       [--rounds 5] [--quick] [--no-checksum] [--variants a,b] [--data uniform,lif]
       [--picks 20] [--dir DIR]
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tables

try:
    import blosc
except ImportError:  # explorer's current codec needs it; the blosc1 direct variant is skipped
    blosc = None
import blosc2

from explorer.storage.hdf5.codec import with_checksum  # HDF5's Fletcher32, as explorer writes it

try:
    import h5py
    import hdf5plugin  # registers the blosc and blosc2 filters with h5py
    H5PY = f"h5py {h5py.__version__}, hdf5plugin {hdf5plugin.version}"
except ImportError as error:
    h5py = None
    H5PY = f"not installed ({error.name})"

SEED = 2024
#: Explorer's chunk target (``columns.CHUNK_BYTES``).
CHUNK_BYTES = 1024 * 1024
MB = 1e6


# ----------------------------------------------------------------------------- data

def uniform(runs: int, samples: int) -> np.ndarray:
    """Uniform floats in [0, 1): incompressible but for the exponent bytes."""
    return np.random.default_rng(SEED).random((runs, samples))


def lif(runs: int, samples: int) -> np.ndarray:
    """Membrane potentials (mV) of leaky integrate-and-fire neurons, one run per row."""
    rng = np.random.default_rng(SEED + 1)
    dt, tau, tau_noise = 0.1, 10.0, 5.0  # ms
    rest, reset, threshold, peak, refractory = -65.0, -65.0, -50.0, 20.0, 20  # mV, samples
    drive = rng.uniform(10.0, 30.0, runs)  # mV: below 15 never fires without noise
    sd = np.where(rng.random(runs) < 0.25, 0.0, rng.uniform(0.5, 2.0, runs))
    kick = sd * math.sqrt(2 * dt / tau_noise)
    v = np.full(runs, rest)
    noise = np.zeros(runs)
    held = np.zeros(runs, dtype=np.int64)
    out = np.empty((samples, runs))
    for t in range(samples):
        noise += -noise * dt / tau_noise + kick * rng.standard_normal(runs)
        v += dt * (rest - v + drive + noise) / tau
        free = held == 0
        v = np.where(free, v, reset)
        held = np.maximum(held - 1, 0)
        spike = free & (v >= threshold)
        out[t] = np.where(spike, peak, v)
        v[spike] = reset
        held[spike] = refractory
    return np.ascontiguousarray(out.T)


DATA: dict[str, Callable[[int, int], np.ndarray]] = {"uniform": uniform, "lif": lif}


# ----------------------------------------------------------------------------- variants

@dataclass(frozen=True)
class Variant:
    name: str
    complib: str          # PyTables' complib of the dataset
    level: int
    way: str              # "direct" (compressed outside HDF5, write_chunk) or "pipeline" (append)
    frame: str = ""       # direct blosc2 only: "schunk" or "b2nd"

    @property
    def codec(self) -> str:
        return self.complib.partition(":")[2]

    def filters(self, checksum: bool) -> tables.Filters:
        return tables.Filters(complib=self.complib, complevel=self.level, shuffle=True,
                              fletcher32=checksum)


VARIANTS = [
    Variant("blosc1-lz4", "blosc:lz4", 5, "direct"),
    Variant("blosc2-lz4", "blosc2:lz4", 5, "direct", "schunk"),
    Variant("blosc2-lz4-b2nd", "blosc2:lz4", 5, "direct", "b2nd"),
    Variant("blosc2-zstd1", "blosc2:zstd", 1, "direct", "schunk"),
    Variant("blosc2-blosclz", "blosc2:blosclz", 5, "direct", "schunk"),
    Variant("pipe-blosc1-lz4", "blosc:lz4", 5, "pipeline"),
    Variant("pipe-blosc2-lz4", "blosc2:lz4", 5, "pipeline"),
]
BASELINE = "blosc1-lz4"


def compressor(variant: Variant, itemsize: int) -> Callable[[np.ndarray], bytes]:
    """``compress(rows) -> bytes`` that PyTables' filter of ``variant`` reads back."""
    if variant.complib.startswith("blosc:"):
        blosc.set_nthreads(1)  # a worker is one core (explorer's codec does the same)

        def compress(rows):
            return blosc.compress(rows, typesize=itemsize, clevel=variant.level,
                                  shuffle=blosc.SHUFFLE, cname=variant.codec)
        return compress
    cparams = blosc2.CParams(codec=blosc2.Codec[variant.codec.upper()], clevel=variant.level,
                             typesize=itemsize, nthreads=1,
                             filters=[blosc2.Filter.NOFILTER] * 5 + [blosc2.Filter.SHUFFLE])
    if variant.frame == "b2nd":
        def compress(rows):
            return blosc2.asarray(rows, chunks=rows.shape, cparams=cparams).to_cframe()
    else:
        def compress(rows):
            return blosc2.SChunk(chunksize=rows.nbytes, data=rows, cparams=cparams).to_cframe()
    return compress


# ----------------------------------------------------------------------------- steps

def chunk_rows(row_bytes: int) -> int:
    """Runs per chunk, as explorer's ``columns.chunk_rows`` (rows of >= 4 KiB)."""
    return int(min(max(1, math.ceil(CHUNK_BYTES / max(row_bytes, 1))), 65536))


def compress_all(data: np.ndarray, rows: int, compress,
                 checksum: bool) -> tuple[float, float, list]:
    """Seconds compressing and checksumming every chunk of ``data``, and the chunks.

    The last chunk is padded with zero rows, as explorer does.
    """
    codec = sums = 0.0
    chunks = []
    pad = np.zeros((rows, *data.shape[1:]), dtype=data.dtype)
    for first in range(0, len(data), rows):
        start = time.perf_counter()
        block = data[first:first + rows]
        if len(block) < rows:
            pad[:len(block)] = block
            block = pad
        chunk = compress(np.ascontiguousarray(block))
        middle = time.perf_counter()
        chunks.append(with_checksum(chunk) if checksum else chunk)
        codec += middle - start
        sums += time.perf_counter() - middle
    return codec, sums, chunks


def write_direct(path: str, variant: Variant, chunks: list, rows: int, shape, dtype,
                 checksum: bool) -> float:
    """Seconds from ``open_file`` to ``close``: an EArray filled by ``write_chunk``."""
    os.sync()
    start = time.perf_counter()
    with tables.open_file(path, "w") as handle:
        array = handle.create_earray("/", "data", tables.Atom.from_dtype(np.dtype(dtype)),
                                     (0, *shape[1:]), filters=variant.filters(checksum),
                                     chunkshape=(rows, *shape[1:]))
        array.truncate(len(chunks) * rows)
        zeros = (0,) * (len(shape) - 1)
        for i, chunk in enumerate(chunks):
            array.write_chunk((i * rows, *zeros), chunk)
    return time.perf_counter() - start


def write_pipeline(path: str, variant: Variant, data: np.ndarray, rows: int,
                   checksum: bool) -> float:
    """Seconds from ``open_file`` to ``close``: an EArray filled by ``append`` (HDF5 compresses)."""
    os.sync()
    start = time.perf_counter()
    with tables.open_file(path, "w") as handle:
        array = handle.create_earray("/", "data", tables.Atom.from_dtype(data.dtype),
                                     (0, *data.shape[1:]), filters=variant.filters(checksum),
                                     chunkshape=(rows, *data.shape[1:]))
        array.append(data)
    return time.perf_counter() - start


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and \
        np.array_equal(a.view(np.uint8), b.view(np.uint8))


def read_all(path: str, data: np.ndarray) -> float:
    """Seconds to open the file, read every run through PyTables and close it (checked)."""
    start = time.perf_counter()
    with tables.open_file(path, "r") as handle:
        values = handle.root.data[:len(data)]
    seconds = time.perf_counter() - start
    if not same_bits(values, data):
        raise AssertionError(f"{path}: the values read back differ from the data")
    return seconds


def read_one(path: str, data: np.ndarray, picks: list[int]) -> float:
    """Median seconds to read one run (a chunk not read before) from an open file (checked)."""
    times = []
    with tables.open_file(path, "r") as handle:
        array = handle.root.data
        for run in picks:
            start = time.perf_counter()
            value = array[run]
            times.append(time.perf_counter() - start)
            if not same_bits(value, data[run]):
                raise AssertionError(f"{path}: run {run} read back differs from the data")
    return statistics.median(times)


def h5py_reads(path: str, data: np.ndarray) -> str:
    """Whether h5py + hdf5plugin read the file back bit for bit."""
    if h5py is None:
        return "n/a"
    try:
        with h5py.File(path, "r") as handle:
            values = handle["data"][:len(data)]
    except Exception as error:  # noqa: BLE001 (the answer is the report)
        return f"no: {type(error).__name__}: {str(error)[:60]}"
    return "yes" if same_bits(values, data) else "no: values differ"


def pick_runs(runs: int, rows: int, count: int) -> list[int]:
    """``count`` runs in distinct chunks, spread over the file, at varied places in their chunk."""
    chunks = math.ceil(runs / rows)
    chosen = np.unique(np.linspace(0, chunks - 1, min(count, chunks)).round().astype(int))
    picks = [min(int(c) * rows + (int(c) * 5) % rows, runs - 1) for c in chosen]
    np.random.default_rng(SEED).shuffle(picks)
    return picks


def probe_formats(directory: str, checksum: bool) -> None:
    """Which blosc2 byte forms the ``blosc2`` filter reads from a direct chunk write."""
    rows = np.random.default_rng(SEED).random((4, 1000))
    cparams = blosc2.CParams(codec=blosc2.Codec.LZ4, clevel=5, typesize=8, nthreads=1,
                             filters=[blosc2.Filter.NOFILTER] * 5 + [blosc2.Filter.SHUFFLE])
    forms = {
        "blosc2.compress2 (a bare chunk)": lambda: blosc2.compress2(rows, cparams=cparams),
        "SChunk.to_cframe (super-chunk frame)": lambda: blosc2.SChunk(
            chunksize=rows.nbytes, data=rows, cparams=cparams).to_cframe(),
        "asarray(...).to_cframe (B2ND frame)": lambda: blosc2.asarray(
            rows, chunks=rows.shape, cparams=cparams).to_cframe(),
    }
    path = os.path.join(directory, "probe.h5")
    print("direct blosc2 chunk forms, read back by PyTables / h5py + hdf5plugin:")
    for label, make in forms.items():
        chunk = make()
        with tables.open_file(path, "w") as handle:
            array = handle.create_earray("/", "data", tables.Float64Atom(), (0, rows.shape[1]),
                                         filters=tables.Filters(complib="blosc2:lz4", complevel=5,
                                                                shuffle=True, fletcher32=checksum),
                                         chunkshape=rows.shape)
            array.truncate(len(rows))
            array.write_chunk((0, 0), with_checksum(chunk) if checksum else chunk)
        try:
            with tables.open_file(path, "r") as handle:
                answer = "yes" if same_bits(handle.root.data[:], rows) else "no: values differ"
        except Exception as error:  # noqa: BLE001 (the answer is the report)
            answer = f"no ({type(error).__name__})"
        print(f"  {label:38s} PyTables: {answer:12s} h5py: {h5py_reads(path, rows)[:40]}")
    os.remove(path)


# ----------------------------------------------------------------------------- main

def measure(variant: Variant, data: np.ndarray, rows: int, path: str, checksum: bool,
            picks: list[int], check_h5py: bool) -> dict:
    figures = {}
    if variant.way == "direct":
        compress = compressor(variant, data.dtype.itemsize)
        figures["codec"], figures["checksum"], chunks = compress_all(data, rows, compress,
                                                                     checksum)
        figures["compress"] = figures["codec"] + figures["checksum"]
        figures["write"] = write_direct(path, variant, chunks, rows, data.shape, data.dtype,
                                        checksum)
        del chunks
    else:
        figures["codec"] = figures["checksum"] = figures["compress"] = 0.0
        figures["write"] = write_pipeline(path, variant, data, rows, checksum)
    figures["total"] = figures["compress"] + figures["write"]
    figures["size"] = os.path.getsize(path)
    figures["read_all"] = read_all(path, data)
    figures["read_one"] = read_one(path, data, picks)
    if check_h5py:
        figures["h5py"] = h5py_reads(path, data)
    os.remove(path)
    return figures


def spread(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
    values = [v * scale for v in values]
    median = statistics.median(values)
    if len(values) == 1:
        return f"{median:.{digits}f}"
    return f"{median:.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def report(results: dict, variants: list[Variant], data_sets: dict, args,
           checksum: bool) -> None:
    header = ["data", "variant", "size MB (x raw)", "codec s", "checksum s", "write s",
              "total s", "read all s", "read one ms", "h5py"]
    lines = []
    for name, data in data_sets.items():
        for variant in variants:
            rounds = results[(name, variant.name)]
            if not rounds:
                continue
            size = rounds[0]["size"]
            lines.append([name, variant.name, f"{size / MB:.1f} ({size / data.nbytes:.3f})",
                          spread([r["codec"] for r in rounds]) if variant.way == "direct"
                          else "(in write)",
                          spread([r["checksum"] for r in rounds]) if variant.way == "direct"
                          else "(in write)",
                          spread([r["write"] for r in rounds]),
                          spread([r["total"] for r in rounds]),
                          spread([r["read_all"] for r in rounds]),
                          spread([r["read_one"] for r in rounds], 1e3),
                          rounds[0].get("h5py", "n/a")])
    widths = [max(len(str(row[i])) for row in [header] + lines) for i in range(len(header))]
    print()
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for row in lines:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    print("(median (min-max) of", args.rounds, "rounds; size is the same every round)")
    recommend(results, variants, data_sets, checksum)


def median_of(results, name, variant, key) -> float:
    return statistics.median(r[key] for r in results[(name, variant)])


def recommend(results: dict, variants: list[Variant], data_sets: dict, checksum: bool) -> None:
    """Print each blosc2 direct variant against blosc1, then the frames, then a recommendation.

    The codec is chosen among the blosc2 direct variants written as one-chunk
    super-chunk frames (the B2ND frame is compared apart: same codec, another
    wrapping): those read back by h5py + hdf5plugin (when installed), whose
    files are at most 2% larger than blosc1's on every data set; among them, the
    smallest cost, the sum over data sets of median store time (codec + checksum
    + write) plus median read-all time. Moving is recommended if that cost is at
    most 1.10x blosc1's (10%: below what this machine's noise lets one tell apart).
    """
    names = {v.name for v in variants}
    blosc2_direct = [v for v in variants if v.way == "direct" and v.complib.startswith("blosc2")]
    if BASELINE not in names or not blosc2_direct:
        print("\nrecommendation: needs the blosc1-lz4 variant and a blosc2 direct variant")
        return

    def cost(variant: str, keys=("total", "read_all")) -> float:
        return sum(median_of(results, name, variant, key) for name in data_sets for key in keys)

    print("\nagainst blosc1-lz4 (ratios of medians; < 1 is better):")
    scores = {}
    for variant in blosc2_direct:
        parts, ok = [], True
        for name in data_sets:
            ratio = {key: median_of(results, name, variant.name, key) /
                     median_of(results, name, BASELINE, key)
                     for key in ("size", "codec", "write", "total", "read_all", "read_one")}
            parts.append(f"{name}: size {ratio['size']:.3f} codec {ratio['codec']:.2f} "
                         f"write {ratio['write']:.2f} total {ratio['total']:.2f} "
                         f"read all {ratio['read_all']:.2f} read one {ratio['read_one']:.2f}")
            h5 = results[(name, variant.name)][0].get("h5py", "n/a")
            ok &= ratio["size"] <= 1.02 and h5 in ("yes", "n/a")
        print(f"  {variant.name:16s} " + "; ".join(parts))
        if ok and variant.frame == "schunk":
            scores[variant.name] = cost(variant.name)
    if {"blosc2-lz4", "blosc2-lz4-b2nd"} <= names:
        ratios = {key: cost("blosc2-lz4-b2nd", (key,)) / cost("blosc2-lz4", (key,))
                  for key in ("codec", "read_all", "read_one")}
        print(f"B2ND frame / super-chunk frame (lz4, summed over data sets): codec "
              f"{ratios['codec']:.2f}x, read all {ratios['read_all']:.2f}x, read one "
              f"{ratios['read_one']:.2f}x" + (
                  " (Fletcher32 on: PyTables reads both through the HDF5 filter; its optimised"
                  " B2ND slice reads need blosc2 to be the only filter)" if checksum else
                  " (Fletcher32 off: PyTables reads B2ND frames by its optimised slice path)"))
    if not scores:
        print("recommendation: stay on blosc1 (no blosc2 direct variant reads back everywhere "
              "with files at most 2% larger)")
        return
    best = min(scores, key=scores.get)
    variant = next(v for v in variants if v.name == best)
    store = cost(best, ("total",)) / cost(BASELINE, ("total",))
    read = cost(best, ("read_all",)) / cost(BASELINE, ("read_all",))
    ratio = scores[best] / cost(BASELINE)
    figures = (f"store {store:.2f}x, read all {read:.2f}x, store + read all {scores[best]:.2f} s "
               f"against {cost(BASELINE):.2f} s ({ratio:.2f}x)")
    if ratio <= 1.10:
        print(f"recommendation: with the format bump, move to {variant.complib} level "
              f"{variant.level} + shuffle, each chunk compressed by python-blosc2 into a "
              f"one-chunk super-chunk frame (blosc2.SChunk(chunksize=rows.nbytes, data=rows, "
              f"cparams=...).to_cframe()) and written with write_chunk; against blosc1: {figures}")
    else:
        print(f"recommendation: stay on blosc1: the best blosc2 variant, {best}, costs more "
              f"({figures})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true",
                        help="300 runs, 2 rounds (a smoke test, ~10 s)")
    parser.add_argument("--no-checksum", action="store_true",
                        help="datasets without Fletcher32 (explorer's default has it)")
    parser.add_argument("--variants", default=",".join(v.name for v in VARIANTS))
    parser.add_argument("--data", default=",".join(DATA))
    parser.add_argument("--picks", type=int, default=20, help="runs read one by one")
    parser.add_argument("--dir", default=None, help="where the files go (default: a temp dir)")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.rounds = 300, 2
    checksum = not args.no_checksum
    wanted = args.variants.split(",")
    unknown = set(wanted) - {v.name for v in VARIANTS}
    if unknown or set(args.data.split(",")) - set(DATA):
        parser.error(f"unknown variant or data set: {sorted(unknown) or args.data}")
    variants = [v for v in VARIANTS if v.name in wanted]
    if blosc is None:
        print("python-blosc is not installed: the blosc1-lz4 direct variant is skipped")
        variants = [v for v in variants
                    if not (v.way == "direct" and v.complib.startswith("blosc:"))]

    print(f"python {platform.python_version()}, numpy {np.__version__}, "
          f"PyTables {tables.__version__} (HDF5 {tables.hdf5_version}), "
          f"python-blosc {getattr(blosc, '__version__', 'missing')} "
          f"(c-blosc {blosc.blosclib_version if blosc else '-'}), "
          f"python-blosc2 {blosc2.__version__} (c-blosc2 {blosc2.blosclib_version}), "
          f"{H5PY}; {os.cpu_count()} CPUs")
    rows = chunk_rows(args.samples * 8)
    print(f"{args.runs} runs x {args.samples} samples float64 "
          f"({args.runs * args.samples * 8 / MB:.0f} MB per data set), {rows} runs per chunk "
          f"({rows * args.samples * 8 / 2**20:.2f} MiB), Fletcher32 {'on' if checksum else 'off'}, "
          f"{args.rounds} rounds")

    start = time.perf_counter()
    data_sets = {}
    for name in args.data.split(","):
        t = time.perf_counter()
        data_sets[name] = DATA[name](args.runs, args.samples)
        print(f"data {name}: generated in {time.perf_counter() - t:.1f} s")
    picks = pick_runs(args.runs, rows, args.picks)

    directory = args.dir or tempfile.mkdtemp(prefix="bench_codec-")
    os.makedirs(directory, exist_ok=True)
    results = {(name, v.name): [] for name in data_sets for v in variants}
    try:
        probe_formats(directory, checksum)
        for r in range(args.rounds):
            order = variants[r % len(variants):] + variants[:r % len(variants)]
            names = list(data_sets) if r % 2 == 0 else list(data_sets)[::-1]
            t = time.perf_counter()
            for variant in order:
                for name in names:
                    path = os.path.join(directory, f"{variant.name}-{name}.h5")
                    results[(name, variant.name)].append(
                        measure(variant, data_sets[name], rows, path, checksum, picks,
                                check_h5py=(r == 0)))
            print(f"round {r + 1}/{args.rounds}: {time.perf_counter() - t:.1f} s")
    finally:
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)
    report(results, variants, data_sets, args, checksum)
    print(f"\n(whole benchmark: {time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
