"""The guard against PyTables' crashes on damaged attributes is active and exact.

PyTables' C code crashes the interpreter on an attribute name that is not UTF-8
and on a root ``PYTABLES_FORMAT_VERSION`` it cannot read;
:mod:`explorer.storage.hdf5.hdf5guard` checks both first. What could crash runs
in a child process, so that a regression fails a test instead of killing pytest.
"""
from __future__ import annotations

import pathlib
import struct
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest
import tables

import explorer as ex
from explorer.storage.hdf5 import hdf5guard

BAD_NAME = b"bad\xff\xfename"


def _file(path: pathlib.Path) -> pathlib.Path:
    """A PyTables file with an array ``/x`` and a few attributes."""
    with tables.open_file(str(path), "w") as handle:
        handle.create_array("/", "x", np.arange(3))
        handle.root._v_attrs.note = "intact"
        handle.root.x._v_attrs.unit = "ms"
    return path


def _bad_name(node: h5py.Group | h5py.Dataset) -> None:
    h5py.h5a.create(node.id, BAD_NAME, h5py.h5t.NATIVE_INT32, h5py.h5s.create(h5py.h5s.SCALAR))


def test_the_guard_found_the_hdf5_library_pytables_uses():
    assert hdf5guard.ACTIVE
    assert tables.attributeset.AttributeSet._g_list_attr is hdf5guard._list_attributes


def test_attribute_names_are_those_pytables_lists(tmp_path):
    with tables.open_file(str(_file(tmp_path / "intact.h5"))) as handle:
        for node in (handle.root, handle.root.x):
            ours = sorted(node._v_attrs._v_attrnames)
            theirs = sorted(tables.hdf5extension.AttributeSet._g_list_attr(node._v_attrs, node))
            assert ours == theirs
            assert "CLASS" in ours


def test_a_bad_attribute_name_is_a_clear_error_not_a_crash(tmp_path):
    """The minimal reproduction: PyTables alone dies of signal 11 here."""
    path = _file(tmp_path / "bad.h5")
    with h5py.File(path, "r+") as handle:
        _bad_name(handle["x"])
    script = textwrap.dedent(f"""
        import warnings
        import tables
        import explorer
        import explorer.storage.hdf5  # what explorer imports to open a file
        warnings.simplefilter("ignore")  # PyTables warns of the leaf it cannot load
        with tables.open_file({str(path)!r}) as handle:
            try:
                handle.root.x._v_attrs
            except explorer.FileFormatError as error:
                print("FileFormatError:", error)
    """)
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           timeout=120)
    assert child.returncode == 0, (child.returncode, child.stderr[-2000:])
    assert "FileFormatError:" in child.stdout
    assert "'/x'" in child.stdout and "not valid UTF-8" in child.stdout
    assert str(path) in child.stdout


@pytest.mark.parametrize("damage", ["root name", "version an integer", "version empty",
                                    "version two strings"])
def test_what_pytables_reads_at_open_is_checked_first(tmp_path, damage):
    path = _file(tmp_path / "bad.h5")
    with h5py.File(path, "r+") as handle:
        if damage == "root name":
            _bad_name(handle)
        else:
            value = {"version an integer": 7,
                     "version empty": h5py.Empty(h5py.string_dtype()),
                     "version two strings": np.array(["2.1", "2.1"], dtype=object)}[damage]
            del handle.attrs["PYTABLES_FORMAT_VERSION"]
            handle.attrs.create("PYTABLES_FORMAT_VERSION", value)
    with pytest.raises(ex.FileFormatError, match="bad.h5"):
        hdf5guard.check_file(str(path))  # before PyTables, which would crash on it
    with pytest.raises(ex.FileFormatError, match="bad.h5"):
        ex.trajectory_names(str(path))


def test_intact_and_non_hdf5_files_pass_the_check(tmp_path):
    hdf5guard.check_file(str(_file(tmp_path / "intact.h5")))
    text = tmp_path / "text.h5"
    text.write_text("not HDF5")
    hdf5guard.check_file(str(text))  # left to PyTables, which raises


def _chunked_parameter_file(path: pathlib.Path) -> pathlib.Path:
    traj = ex.Trajectory("T")
    traj.add_parameter("large", np.arange(12000.0))  # two chunks of 8192 values
    traj.store(str(path))
    return path


def test_a_damaged_chunk_index_entry_is_damage_not_zeros(tmp_path):
    """A chunk index entry whose offset is damaged hides the chunk: HDF5 reads the
    fill value (zeros) there, and the chunk's own checksum is never consulted."""
    path = _chunked_parameter_file(tmp_path / "index.h5")
    assert np.array_equal(ex.load_trajectory(str(path)).large, np.arange(12000.0))
    with h5py.File(path, "r") as f:
        dataset = f["T/parameters/large"]
        assert dataset.chunks == (8192,)
        second = dataset.id.get_chunk_info(1)
    blob = bytearray(path.read_bytes())
    # the B-tree key of the second chunk: its size, filter mask, then its offset
    key = struct.pack("<IIQQ", second.size, second.filter_mask, 8192, 0)
    assert blob.count(key) == 1
    at = blob.index(key) + 8 + 7  # the offset's highest byte
    blob[at] ^= 0x08
    path.write_bytes(bytes(blob))
    with h5py.File(path, "r") as f:  # what a reader without the check gets: zeros
        assert np.count_nonzero(f["T/parameters/large"][8192:]) == 0
    with pytest.raises(ex.FileFormatError, match="chunk of its index lies outside"):
        ex.load_trajectory(str(path)).large


def test_chunks_blosc_left_uncompressed_are_not_damage(tmp_path):
    """blosc is an optional filter: a chunk it cannot shrink is stored as it is,
    with its bit set in the chunk's filter mask, and reads back as stored."""
    noise = np.random.default_rng(0).integers(0, 256, 200_000).astype(np.uint8)
    traj = ex.Trajectory("T")
    traj.add_parameter("x", 0)
    traj.add_result("r", noise=noise)
    traj.store(str(tmp_path / "noise.h5"))
    with h5py.File(tmp_path / "noise.h5", "r") as f:
        masks = {f["T/results/r/noise"].id.get_chunk_info(i).filter_mask
                 for i in range(f["T/results/r/noise"].id.get_num_chunks())}
    assert masks != {0}  # blosc gave up on some chunks
    again = ex.load_trajectory(str(tmp_path / "noise.h5"), load="all")
    assert np.array_equal(again.res.r.noise, noise)
