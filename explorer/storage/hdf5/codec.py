"""Compressing whole HDF5 chunks outside HDF5, for datasets written with direct chunk writes.

The HDF5 blosc filter that PyTables uses (``complib="blosc:<codec>"``) stores
each chunk as one self-describing c-blosc 1 buffer. python-blosc wraps the same
c-blosc 1 library and, given the same type size, level, shuffle and codec,
produces the very bytes the filter would (checked in the tests), many times
faster than a write through HDF5's filter pipeline, whose byte shuffle is slow
(see ``bench_codec.py`` and ``bench_lif.py`` in ``benchmarks/README.md``).

:func:`chunk_compressor` hands out such a compressor when the settings allow it;
otherwise (another codec, or python-blosc missing) callers compress through
HDF5 itself.

Datasets that also have HDF5's Fletcher32 filter (explorer's default) get,
after the compressed bytes, the 4-byte checksum that filter appends
(:func:`fletcher32`, HDF5's ``H5_checksum_fletcher32`` in numpy): HDF5 checks
it on every read, so a damaged chunk is reported, never returned as data.
"""
from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

__all__ = ["chunk_compressor", "fletcher32", "with_checksum"]

Compressor = Callable[[np.ndarray], bytes]

#: Words summed per numpy step: the weighted sum of a block stays below 2**63.
_BLOCK_WORDS = 1 << 20
_WEIGHTS = np.arange(_BLOCK_WORDS, 0, -1, dtype=np.int64)


def _fold(total: int) -> int:
    """A sum reduced as HDF5's end-around carries leave it: 0 only if it is 0, else 1..65535."""
    return 0 if total == 0 else (total - 1) % 65535 + 1


def fletcher32(buffer: bytes | bytearray | memoryview | np.ndarray) -> int:
    """The Fletcher32 checksum HDF5's filter computes over ``buffer``.

    Parameters
    ----------
    buffer : bytes-like
        The bytes the filter receives (for explorer's datasets: a compressed chunk).

    Returns
    -------
    int
        HDF5's checksum: the sums of the big-endian 16-bit words (an odd last
        byte padded with a zero) and of their running sums, each modulo 65535.
    """
    data = np.frombuffer(buffer, dtype=np.uint8)
    words = data[:len(data) - len(data) % 2].view(">u2")
    first = second = 0
    for start in range(0, len(words), _BLOCK_WORDS):
        block = words[start:start + _BLOCK_WORDS].astype(np.int64)
        second += first * len(block) + int(np.dot(block, _WEIGHTS[_BLOCK_WORDS - len(block):]))
        first += int(block.sum())
    if len(data) % 2:
        first += int(data[-1]) << 8
        second += first
    return (_fold(second) << 16) | _fold(first)


def with_checksum(chunk: bytes | bytearray | memoryview | np.ndarray) -> bytes:
    """``chunk`` followed by its Fletcher32 checksum, as HDF5's filter stores it."""
    return bytes(chunk) + fletcher32(chunk).to_bytes(4, "little")


@functools.cache
def _blosc():
    """python-blosc, set to one thread (a worker is one core), or None if missing."""
    try:
        import blosc
    except ImportError:
        return None
    blosc.set_nthreads(1)
    return blosc


def chunk_compressor(complib: str, complevel: int, shuffle: bool, itemsize: int,
                     chunk_bytes: int, checksum: bool = False) -> Compressor | None:
    """A function turning one chunk's rows into the bytes the HDF5 filter would store.

    Parameters
    ----------
    complib, complevel, shuffle
        The dataset's filters (as in :class:`tables.Filters`).
    itemsize : int
        Bytes per element of the dataset's atom (blosc's type size).
    chunk_bytes : int
        Bytes of one uncompressed chunk.
    checksum : bool
        Whether the dataset also has the Fletcher32 filter (after compression):
        the chunk then ends with its checksum.

    Returns
    -------
    callable or None
        ``compress(rows) -> bytes`` for a C-contiguous array of whole chunk
        rows, or ``None`` when the chunk must go through HDF5's own filters:
        ``complib`` is not a blosc codec python-blosc knows, compression is off,
        a chunk is too large for one blosc buffer, or python-blosc is not installed.
    """
    blosc = _blosc()
    family, _, codec = complib.partition(":")
    codec = codec or "blosclz"
    if blosc is None or family != "blosc" or not complevel or codec not in blosc.cnames \
            or not 0 < itemsize <= 255 or chunk_bytes > blosc.MAX_BUFFERSIZE:
        return None
    mode = blosc.SHUFFLE if shuffle else blosc.NOSHUFFLE

    def compress(rows: np.ndarray) -> bytes:
        chunk = blosc.compress(rows, typesize=itemsize, clevel=complevel, shuffle=mode,
                               cname=codec)
        return with_checksum(chunk) if checksum else chunk

    return compress
