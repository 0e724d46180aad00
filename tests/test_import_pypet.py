"""``ex.import_pypet``: pypet files (written by pypet itself, and synthetic ones of
pypet's layout) imported into new explorer files; bad inputs refused with
nothing written."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse
import tables

import explorer as ex
from explorer.combine.pypet import PypetImportWarning
from pypet_files import current, expected_run, fixture_folder, weights, write_pypet_file

FIXTURES = fixture_folder()
TUTORIAL = FIXTURES / "pypet_tutorial.hdf5"

needs_fixture = pytest.mark.skipif(
    not TUTORIAL.exists(), reason=f"the pypet-written fixture {TUTORIAL} is missing "
    "(it lives beside the repository, in shared/fixtures/pypet)")


@pytest.fixture(scope="module")
def expected() -> dict:
    """What pypet's own loader read from the fixture."""
    return json.loads((FIXTURES / "pypet_values.json").read_text())


def _import_refusing_pickles(dst: pathlib.Path) -> tuple[list, pytest.ExceptionInfo]:
    with pytest.warns(PypetImportWarning) as caught, \
            pytest.raises(ex.UnsafeDataError) as refused:
        ex.import_pypet(TUTORIAL, dst)
    return list(caught), refused


@needs_fixture
def test_tutorial_values_as_pypet_reads_them(tmp_path: pathlib.Path, expected: dict) -> None:
    dst = tmp_path / "imported.h5"
    _, refused = _import_refusing_pickles(dst)
    assert refused.value.imported == ["FiringRate"]
    traj = ex.load_trajectory(dst, "FiringRate")
    assert len(traj) == 45
    assert traj.comment.startswith("pypet tutorial trajectory")
    # explored ranges, ArrayParameter ranges as arrays
    assert traj.get("neuron.I").range == expected["I"]
    assert traj.explored_parameters == ["parameters.neuron.I", "parameters.neuron.tau_ref",
                                        "parameters.neuron.weights"]
    weights7 = traj.get("neuron.weights").range[7]
    assert isinstance(weights7, np.ndarray) and weights7.tolist() == expected["weights7"]
    # parameters, comments, config, sparse
    assert traj.par.neuron.tau_V == 10.0 and traj.par.simulation.dt == 0.1
    assert traj.get("neuron.I").comment == "applied current"
    assert traj.get("network.conn").comment == "sparse param"
    assert traj.conf.setup.seed == 42
    conn = traj.par.network.conn
    assert scipy.sparse.issparse(conn) and conn.toarray().tolist() == expected["conn"]
    # per-run arrays, scalars and DataFrames, stacked
    assert traj.res.neuron.run_00000007.V.sum() == pytest.approx(expected["V7_sum"])
    assert traj.res.neuron.V[7].sum() == pytest.approx(expected["V7_sum"])
    assert [int(n) for n in traj.res.neuron.nspikes[:]] == expected["nspikes"]
    assert traj.res.spikes.run_00000007.spikes.t.tolist()[:5] == \
        pytest.approx(expected["spikes7"])
    assert traj.res.spikes.run_00000000.spikes.empty
    # a DataFrame outside runs
    rates = traj.res.summary.firing_rates.rates_frame
    assert rates.values.tolist() == expected["rates"]
    assert traj.get("results.summary.firing_rates").comment == "rates table"
    # per-run derived parameters: per-run results of the same name
    assert traj.res.runinfo.run_00000003.steps == expected["steps3"]
    # run table, provenance
    frame = traj.to_frame()
    assert (frame["status"] == "completed").all()
    assert frame["duration"].between(0, 10).all()
    assert traj.failures().empty
    sessions = traj.sessions()
    assert sessions["imported_from"][0]["file"] == str(TUTORIAL)
    assert sessions["imported_from"][0]["pypet_version"] == "0.7.0"


@needs_fixture
@pytest.mark.slow
def test_pickled_parameter_alone_refused(tmp_path: pathlib.Path) -> None:
    dst = tmp_path / "imported.h5"
    _, refused = _import_refusing_pickles(dst)
    message = str(refused.value)
    assert "parameters.misc.obj" in message and "allow_pickle=True" in message
    assert str(dst) in message  # says where the rest went
    traj = ex.load_trajectory(dst)
    with pytest.raises(AttributeError):
        _ = traj.par.misc.obj
    assert "parameters.misc.obj" in traj.comment
    assert traj.par.neuron.tau_ref == 5.0  # the rest is there


@needs_fixture
@pytest.mark.slow
def test_pickled_parameter_with_allow_pickle(tmp_path: pathlib.Path, expected: dict) -> None:
    dst = tmp_path / "imported.h5"
    with pytest.warns(PypetImportWarning, match="tauV_link"):
        assert ex.import_pypet(TUTORIAL, dst, allow_pickle=True) == ["FiringRate"]
    with pytest.raises(ex.UnsafeDataError):
        ex.load_trajectory(dst, load="all")
    traj = ex.load_trajectory(dst, allow_pickle=True)
    assert repr(traj.par.misc.obj) == expected["obj"]
    assert traj.get("misc.obj").comment == "pickle param"


@needs_fixture
@pytest.mark.slow
def test_link_and_annotations_named_in_warning_and_comment(tmp_path: pathlib.Path) -> None:
    dst = tmp_path / "imported.h5"
    caught, _ = _import_refusing_pickles(dst)
    ours = [warning for warning in caught if warning.category is PypetImportWarning]
    assert len(ours) == 1  # one warning for everything
    message = str(ours[0].message)
    comment = ex.load_trajectory(dst).comment
    for text in (message, comment):
        assert "tauV_link" in text and "parameters.neuron.tau_V" in text
        assert "annotations of parameters.neuron" in text
        assert "origin='pypet tutorial'" in text and "version=1" in text
        assert "results.runinfo.$" in text  # where the per-run derived parameters went


@pytest.mark.slow
def test_synthetic_file_of_200_runs(tmp_path: pathlib.Path) -> None:
    src, dst = tmp_path / "pypet.hdf5", tmp_path / "imported.h5"
    n_runs, pending, trace = 200, 3, 50
    write_pypet_file(str(src), n_runs, trace=trace, pending=pending)
    with pytest.warns(PypetImportWarning, match="runinfo"):
        assert ex.import_pypet(src, dst) == ["Synthetic"]
    traj = ex.load_trajectory(dst, "Synthetic")
    assert len(traj) == n_runs
    assert traj.get("neuron.I").range == current(n_runs)
    assert all(np.array_equal(value, weights(idx))
               for idx, value in enumerate(traj.get("neuron.weights").range))
    frame = traj.to_frame()
    done = n_runs - pending
    assert (frame["status"][:done] == "completed").all()
    assert (frame["status"][done:] == "pending").all()
    for idx in (0, 7, done - 1):
        run = expected_run(idx, trace)
        assert np.array_equal(traj.res.neuron.V[idx], run["V"])
        assert traj.res.neuron.nspikes[idx] == run["nspikes"]
        assert traj.res.runinfo.steps[idx] == run["steps"]
        assert frame["duration"][idx] == pytest.approx(run["duration"])
    stacked = traj.res.neuron.V[:]
    assert stacked.shape == (done, trace)
    assert traj.res.summary.firing_rates.rates_frame["rate"].tolist() == list(range(done))
    assert traj.par.network.conn.toarray().tolist() == np.eye(3).tolist()


# ------------------------------------------------------------------- bad inputs
def _not_hdf5(folder: pathlib.Path) -> pathlib.Path:
    path = folder / "notes.hdf5"
    path.write_text("not an HDF5 file\n")
    return path


def _plain_hdf5(folder: pathlib.Path) -> pathlib.Path:
    path = folder / "plain.h5"
    with tables.open_file(str(path), "w") as handle:
        handle.create_array("/", "x", np.arange(3))
        handle.create_group("/", "stuff")
    return path


def _explorer_file(folder: pathlib.Path) -> pathlib.Path:
    path = folder / "explorer.h5"
    traj = ex.Trajectory("Mine")
    traj.add_parameter("a", 1.0)
    traj.store(str(path))
    return path


@pytest.mark.parametrize("make, match", [
    (_not_hdf5, "cannot be opened as an HDF5 file"),
    (_plain_hdf5, "not a pypet file"),
    (_explorer_file, "is an explorer file, not a pypet file"),
    (lambda folder: folder / "missing.hdf5", "no file"),
], ids=["not-hdf5", "not-pypet", "explorer-file", "missing"])
def test_bad_input_refused_nothing_written(tmp_path: pathlib.Path, make, match: str) -> None:
    src = make(tmp_path)
    before = sorted(os.listdir(tmp_path))
    dst = tmp_path / "out.h5"
    with pytest.raises(ex.FileFormatError, match=match) as refused:
        ex.import_pypet(src, dst)
    assert str(src) in str(refused.value)
    assert not dst.exists()
    assert sorted(os.listdir(tmp_path)) == before


@needs_fixture
def test_existing_output_refused_nothing_written(tmp_path: pathlib.Path) -> None:
    dst = tmp_path / "out.h5"
    dst.write_bytes(b"kept")
    with pytest.raises(ex.OutputExistsError, match="exists already"):
        ex.import_pypet(TUTORIAL, dst)
    assert dst.read_bytes() == b"kept"
    assert sorted(os.listdir(tmp_path)) == ["out.h5"]


@needs_fixture
@pytest.mark.slow
def test_the_command_line_imports(tmp_path: pathlib.Path) -> None:
    dst = tmp_path / "cli.h5"
    refused = subprocess.run([sys.executable, "-m", "explorer", "import-pypet", str(TUTORIAL),
                              str(dst)], capture_output=True, text=True)
    assert refused.returncode == 1  # the pickled parameter, left out; the rest imported
    assert "warning: " in refused.stderr and "tauV_link" in refused.stderr
    assert "error: " in refused.stderr and "parameters.misc.obj" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert len(ex.load_trajectory(dst)) == 45
    dst.unlink()
    done = subprocess.run([sys.executable, "-m", "explorer", "import-pypet", str(TUTORIAL),
                           str(dst), "--allow-pickle"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("1 trajectory imported from "
                                        f"{TUTORIAL}: FiringRate")
    traj = ex.load_trajectory(dst, allow_pickle=True)
    assert traj.par.misc.obj == {"a": [1, 2, {"b": 3}]}
