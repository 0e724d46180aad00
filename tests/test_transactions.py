"""Writes to an open copy of a file: committed whole, or dropped whole."""
import glob

import numpy as np
import tables

from explorer.storage.hdf5.files import Transaction


def _make(path):
    first = Transaction(path)  # a new file: made with explorer's format marker
    first.handle.create_array("/", "before", obj=np.arange(3))
    first.commit()


def test_written_back_data_reaches_the_file_only_at_the_commit(tmp_path):
    path = str(tmp_path / "t.h5")
    _make(path)
    transaction = Transaction(path)
    big = np.random.default_rng(1).normal(size=(200, 10_000))
    data = transaction.handle.create_earray("/", "runs", tables.Float64Atom(), (0, 10_000))
    data.append(big[:100])
    transaction.write_back()          # runs in the background while more is written
    data.append(big[100:])
    transaction.write_back()
    with tables.open_file(path) as handle:  # the file is still as it was
        assert "/runs" not in handle and handle.root.before[:].tolist() == [0, 1, 2]
    transaction.commit()
    with tables.open_file(path) as handle:
        np.testing.assert_array_equal(handle.root.runs[:], big)
    assert not glob.glob(path + ".*.tmp")


def test_an_aborted_transaction_leaves_the_file_as_it_was(tmp_path):
    path = str(tmp_path / "t.h5")
    _make(path)
    transaction = Transaction(path)
    transaction.handle.create_array("/", "half", obj=np.ones((500, 1000)))
    transaction.write_back()
    transaction.abort()
    with tables.open_file(path) as handle:
        assert "/half" not in handle and handle.root.before[:].tolist() == [0, 1, 2]
    assert not glob.glob(path + ".*.tmp")
    transaction.write_back()          # nothing open: nothing to do
    transaction.commit()
