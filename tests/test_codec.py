"""Chunks compressed outside HDF5 (python-blosc) read back through PyTables' own filter."""
import numpy as np
import pytest
import tables

import explorer as ex
from explorer.storage.hdf5.codec import chunk_compressor, fletcher32, with_checksum

SHAPE = (7, 33, 5)  # one chunk of 7 rows


def _dataset(handle, name, dtype, filters):
    data = handle.create_earray("/", name, tables.Atom.from_dtype(np.dtype(dtype)), (0, *SHAPE[1:]),
                                filters=filters, chunkshape=SHAPE)
    return data


@pytest.mark.parametrize("complib", ["blosc:lz4", "blosc:blosclz", "blosc:zstd", "blosc:lz4hc",
                                     "blosc:zlib", "blosc"])
@pytest.mark.parametrize("dtype", ["<f8", "<f4", "<i8", "<i2", "|u1", "|b1", "<c16"])
@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("checksum", [True, False])
def test_compressed_chunks_decode_through_the_files_filter(tmp_path, complib, dtype, shuffle,
                                                           checksum):
    rng = np.random.default_rng(7)
    rows = (np.cumsum(rng.normal(size=SHAPE), axis=1) * 10).astype(dtype)
    filters = tables.Filters(5, complib, shuffle=shuffle, fletcher32=checksum)
    compress = chunk_compressor(filters.complib, filters.complevel, filters.shuffle,
                                np.dtype(dtype).itemsize, rows.nbytes, filters.fletcher32)
    assert compress is not None
    path = tmp_path / "chunks.h5"
    with tables.open_file(path, "w") as handle:
        by_hdf5 = _dataset(handle, "by_hdf5", dtype, filters)
        by_hdf5.append(rows)
        ours = _dataset(handle, "ours", dtype, filters)
        ours.truncate(len(rows))
        chunk = compress(rows)
        ours.write_chunk((0, 0, 0), np.frombuffer(chunk, np.uint8))
        reference = bytes(by_hdf5.read_chunk((0, 0, 0)))
        masked = by_hdf5.chunk_info((0, 0, 0)).filter_mask
    with tables.open_file(path) as handle:
        np.testing.assert_array_equal(handle.root.ours[:], rows)
    if not masked:  # HDF5 compressed it too: the same c-blosc gives the same bytes
        assert chunk == reference


@pytest.mark.parametrize("complib,level", [("zlib", 5), ("blosc:lz4", 0), ("blosc2:lz4", 5),
                                           ("lzo", 1)])
def test_other_codecs_go_through_hdf5(complib, level):
    assert chunk_compressor(complib, level, True, 8, 1024) is None


@pytest.mark.parametrize("complib", ["blosc:lz4", "zlib"])
def test_large_arrays_round_trip_with_either_encoder(make_env, complib):
    """Runs' large arrays are compressed by python-blosc (blosc) or by HDF5 (zlib)."""
    env = make_env(complib=complib)
    env.trajectory.add_parameter("x", 0.0)
    env.trajectory.explore({"x": [float(i) for i in range(40)]})

    def trace(traj):
        traj.add_result("sim.$", trace=np.sin(np.arange(3000) * 0.01 * (traj.x + 1)))

    env.run(trace)
    env.close()
    loaded = ex.load_trajectory(env.filename, env.trajectory.name)
    for idx in (0, 17, 39):
        loaded.set_run(idx)
        np.testing.assert_array_equal(loaded.res.sim.crun.trace,
                                      np.sin(np.arange(3000) * 0.01 * (idx + 1)))


@pytest.mark.parametrize("complib", ["blosc:lz4", "zlib"])
def test_packed_chunks_travel_as_one_buffer_outside_the_pickle(complib):
    """A batch's compressed chunks lie in one array, which pickle protocol 5 (dask's)
    hands over as an out-of-band buffer instead of copying it into the stream."""
    import pickle

    from explorer.storage.hdf5.encode import BatchEncoder, EncodeSettings
    from explorer.storage.hdf5.parts import PackedPart, unpack

    encoder = BatchEncoder(EncodeSettings(complib=complib))
    traces = {idx: np.cos(np.arange(5000) * 0.003 * (idx + 1)) for idx in range(30)}
    for idx, trace in traces.items():
        encoder.add_items("sim.$", "", idx, {"trace": trace})
    (part,) = encoder.finish().items[("sim.$", "")]["trace"]
    assert isinstance(part, PackedPart) and len(part.masks) > 1
    buffers: list = []
    blob = pickle.dumps(part, protocol=5, buffer_callback=buffers.append)
    sizes = sorted(buffer.raw().nbytes for buffer in buffers)  # data, runs, bounds
    assert sizes[-1] == part.bounds[-1] == part.data.nbytes > 20_000
    assert len(blob) < 2000
    back = pickle.loads(blob, buffers=buffers)
    assert [(bytes(c), m) for c, m in back.chunks()] == [(bytes(c), m) for c, m in part.chunks()]
    plain = unpack(back)
    assert plain.runs == list(traces)
    for idx, value in zip(plain.runs, plain.values):
        np.testing.assert_array_equal(value, traces[idx])


@pytest.mark.parametrize("size", [0, 1, 2, 3, 719, 720, 721, 5000, 2 * 2**20 + 3])
@pytest.mark.parametrize("fill", ["random", "ones", "zeros"])
def test_checksum_is_the_one_hdf5_appends(tmp_path, size, fill):
    """HDF5's Fletcher32 filter (uncompressed dataset: it sees the raw bytes) appends
    exactly what fletcher32() computes, for odd sizes, 0xff runs and zeros too."""
    data = {"random": np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8),
            "ones": np.full(size, 255, dtype=np.uint8),
            "zeros": np.zeros(size, dtype=np.uint8)}[fill]
    with tables.open_file(tmp_path / "sums.h5", "w") as handle:
        dataset = handle.create_earray("/", "d", tables.UInt8Atom(), (0,),
                                       filters=tables.Filters(0, fletcher32=True),
                                       chunkshape=(max(size, 1),))
        dataset.append(data if size else np.zeros(1, np.uint8))
        stored = bytes(dataset.read_chunk((0,)))
    raw = data.tobytes() if size else b"\0"
    assert stored[:-4] == raw
    assert stored == with_checksum(raw)
    assert int.from_bytes(stored[-4:], "little") == fletcher32(raw)


def test_checksummed_chunks_written_directly_are_checked_on_read(tmp_path):
    """A chunk written with a direct chunk write and its checksum reads back; one
    flipped byte in it makes HDF5 refuse the chunk instead of returning other data."""
    rows = np.sin(np.arange(7 * 33 * 5)).reshape(SHAPE)
    filters = tables.Filters(5, "blosc:lz4", shuffle=True, fletcher32=True)
    compress = chunk_compressor(filters.complib, filters.complevel, True, 8, rows.nbytes, True)
    chunk = bytearray(compress(rows))
    path = tmp_path / "flip.h5"
    with tables.open_file(path, "w") as handle:
        good = _dataset(handle, "good", "<f8", filters)
        bad = _dataset(handle, "bad", "<f8", filters)
        for dataset in (good, bad):
            dataset.truncate(len(rows))
        good.write_chunk((0, 0, 0), np.frombuffer(bytes(chunk), np.uint8))
        chunk[len(chunk) // 2] ^= 0x10
        bad.write_chunk((0, 0, 0), np.frombuffer(bytes(chunk), np.uint8))
    with tables.open_file(path) as handle:
        np.testing.assert_array_equal(handle.root.good[:], rows)
        with pytest.raises(tables.HDF5ExtError):
            handle.root.bad[:]
