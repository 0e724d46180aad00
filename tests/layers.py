"""The files an explorer file is made of, found as docs/storage.md tells a reader to.

Tests that look at the stored bytes (rather than through explorer) read every
layer: the base file, then the live segments of ``<file>.segments/`` in the
order of their names, skipping the segments a later file replaces (listed in
the base's ``merged_segments`` or another segment's ``contains``, or an earlier
segment of the same ``chunk`` as a later one).
"""
from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator

import numpy as np
import tables


def _covered(handle: tables.File, name: str) -> set[str]:
    value = handle.root._v_attrs[name] if name in handle.root._v_attrs._f_list() else "[]"
    return set(json.loads(value.decode() if isinstance(value, bytes) else str(value)))


def layer_files(filename: str) -> list[str]:
    """The base and the live segments of ``filename``, oldest first."""
    real = os.path.realpath(filename)
    folder = f"{real}.segments"
    names = sorted(name[:-3] for name in os.listdir(folder) if name.endswith(".h5")) \
        if os.path.isdir(folder) else []
    with tables.open_file(real, "r") as handle:
        covered = _covered(handle, "merged_segments")
    chunks: dict[str, str] = {}
    for name in names:
        with tables.open_file(os.path.join(folder, f"{name}.h5"), "r") as handle:
            covered |= _covered(handle, "contains")
            if "chunk" in handle.root._v_attrs._f_list():  # a later one of a chunk replaces it
                chunk = str(handle.root._v_attrs["chunk"])
                if chunk in chunks:
                    covered.add(chunks[chunk])
                chunks[chunk] = name
    return [real] + [os.path.join(folder, f"{name}.h5") for name in names if name not in covered]


@contextlib.contextmanager
def opened_layers(filename: str) -> Iterator[list[tables.File]]:
    """Every layer of ``filename`` open for reading, oldest first."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(tables.open_file(path, "r")) for path in layer_files(filename)]


def leftovers(filename: str) -> list[str]:
    """Unfinished files of writers beside ``filename`` (``*.tmp``, there or in its segments)."""
    real = os.path.realpath(filename)
    folder, base = os.path.dirname(real), os.path.basename(real)
    found = [os.path.join(folder, name) for name in os.listdir(folder)
             if name.startswith(f"{base}.") and name.endswith(".tmp")]
    segments = f"{real}.segments"
    if os.path.isdir(segments):
        found += [os.path.join(segments, name) for name in os.listdir(segments)
                  if name.endswith(".tmp")]
    return sorted(found)


def run_rows(filename: str, name: str) -> np.ndarray:
    """Every row of the trajectory's run table, over all layers."""
    with opened_layers(filename) as layers:
        blocks = [handle.get_node(f"/{name}/runs").read() for handle in layers
                  if f"/{name}/runs" in handle]
    return np.concatenate(blocks)


def column_runs(filename: str, name: str) -> dict[str, np.ndarray]:
    """``{column path: run index of every real row}`` over all layers."""
    found: dict[str, list[np.ndarray]] = {}
    with opened_layers(filename) as layers:
        for handle in layers:
            if f"/{name}" not in handle:
                continue
            for group in handle.get_node(f"/{name}")._f_walk_groups():
                if getattr(group._v_attrs, "explorer_node", None) != "column":
                    continue
                for segment in group._f_iter_nodes("Group"):
                    runs = segment.runs.read()
                    found.setdefault(group._v_pathname, []).append(runs[runs >= 0])
    return {path: np.concatenate(blocks) for path, blocks in found.items()}
