"""Writes to an open segment of a file: committed whole, or dropped whole.

A :class:`~explorer.storage.hdf5.files.Transaction` on a file that exists writes
a new segment (``<file>.segments/``) under a temporary name; its commit is the
rename to a committed segment's name. The base file is never touched.
"""
import hashlib
import os
import pathlib

import numpy as np
import tables

from explorer.storage.hdf5.files import Transaction
from layers import layer_files, leftovers, opened_layers


def _make(path):
    first = Transaction(path)  # a new file: made with explorer's format marker
    first.handle.create_array("/", "before", obj=np.arange(3))
    first.commit()


def _digest(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def test_written_back_data_reaches_the_file_only_at_the_commit(tmp_path):
    path = os.path.realpath(tmp_path / "t.h5")   # as layers.py names the files
    _make(path)
    assert layer_files(path) == [path]   # the first write made the base
    base = _digest(path)
    transaction = Transaction(path)
    big = np.random.default_rng(1).normal(size=(200, 10_000))
    data = transaction.handle.create_earray("/", "runs", tables.Float64Atom(), (0, 10_000))
    data.append(big[:100])
    transaction.write_back()          # runs in the background while more is written
    data.append(big[100:])
    transaction.write_back()
    # the file is still as it was: the base untouched, no committed segment, the
    # data only in the unfinished segment
    assert _digest(path) == base
    assert layer_files(path) == [path]
    assert len(leftovers(path)) == 1 and leftovers(path)[0].startswith(f"{path}.segments/")
    with opened_layers(path) as handles:
        assert all("/runs" not in handle for handle in handles)
        assert handles[0].root.before[:].tolist() == [0, 1, 2]
    transaction.commit()
    assert _digest(path) == base      # the commit adds a segment; the base stays as it was
    files = layer_files(path)
    assert len(files) == 2 and files[0] == path
    assert files[1].startswith(f"{path}.segments/") and files[1].endswith(".h5")
    with opened_layers(path) as handles:
        assert "/runs" not in handles[0]
        np.testing.assert_array_equal(handles[1].root.runs[:], big)
    assert leftovers(path) == []


def test_an_aborted_transaction_leaves_the_file_as_it_was(tmp_path):
    path = os.path.realpath(tmp_path / "t.h5")
    _make(path)
    base = _digest(path)
    transaction = Transaction(path)
    transaction.handle.create_array("/", "half", obj=np.ones((500, 1000)))
    transaction.write_back()
    transaction.abort()
    assert _digest(path) == base and layer_files(path) == [path]   # no segment committed
    with opened_layers(path) as handles:
        assert all("/half" not in handle for handle in handles)
        assert handles[0].root.before[:].tolist() == [0, 1, 2]
    assert leftovers(path) == []
    transaction.write_back()          # nothing open: nothing to do
    transaction.commit()
    assert _digest(path) == base and layer_files(path) == [path] and leftovers(path) == []
