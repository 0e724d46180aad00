"""API.md section 4, "after a crash or a kill": real signals to real processes.

The exploration runs in a separate driver process (a script written into the
test's directory); the test kills it with SIGKILL or stops it with SIGTERM in the
middle of the exploration, then checks that the file opens, that
``Environment.resume`` finishes it, and that every run is stored exactly once.
Every run appends a line to its own marker file, so the tests also count how
often each run executed and in which session.

The file is a base and the committed segments beside it (``<file>.segments/``);
the stored bytes are read over every layer (``tests/layers.py``). A killed writer
may leave an unfinished ``*.tmp`` file (its pid in the name), which the next
environment on the file removes.
"""
from __future__ import annotations

import glob
import importlib.util
import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import tables

import explorer as ex
from explorer.runsession import COMMIT_SECONDS
from layers import column_runs, layer_files, leftovers, run_rows
from processes import alive as _alive

pytest.importorskip("distributed")

NAME = "Crash"
SEED = 11
#: Runs of 10 ms that keep 2 workers busy for twice the time before the first commit
#: of runs, so that a signal sent once runs are stored lands while runs go on.
TWO_WORKER_RUNS = int(2 * 2 * COMMIT_SECONDS / 0.01)
DRIVER = textwrap.dedent('''
    """Runs (or resumes) an exploration whose runs take a few milliseconds each."""
    import json
    import os
    import sys
    import time

    import explorer as ex


    def run(traj, session, markers, delay):
        with open(os.path.join(markers, f"{traj.idx:05d}"), "a") as stream:
            stream.write(f"{session} {os.getpid()}\\n")
        time.sleep(delay)
        traj.add_result("out.$", idx=traj.idx, draws=traj.rng.random(16),
                        comment="what each run stored")
        return traj.idx * 2


    def main():
        mode, filename, workers, storage, n_runs, markers, delay = sys.argv[1:]
        options = dict(workers=int(workers), storage=storage, progress=False)
        if mode == "start":
            env = ex.Environment("__NAME__", filename, seed=__SEED__, **options)
            env.trajectory.add_parameter("x", 0)
            env.trajectory.explore({"x": list(range(int(n_runs)))})
        else:
            env = ex.Environment.resume(filename, "__NAME__", **options)
        with env:
            if int(workers) > 1:
                pids = sorted(env._backend().client.run(os.getpid).values())
                with open(f"{filename}.{mode}.pids.tmp", "w") as stream:
                    json.dump(pids, stream)
                os.replace(f"{filename}.{mode}.pids.tmp", f"{filename}.{mode}.pids")
            results = env.run(run, mode, markers, float(delay))
        print(f"{mode}: {len(results)} results", flush=True)


    if __name__ == "__main__":
        main()
''').replace("__NAME__", NAME).replace("__SEED__", str(SEED))


class Driver:
    """The driver script and its files inside one test directory."""

    def __init__(self, directory: pathlib.Path, workers: int, storage: str = "queue",
                 n_runs: int = 240, delay: float = 0.01):
        self.directory = directory
        self.script = directory / "driver.py"
        self.script.write_text(DRIVER)
        self.filename = str(directory / "crash.h5")
        self.markers = directory / "markers"
        self.markers.mkdir()
        self.workers, self.storage, self.n_runs, self.delay = workers, storage, n_runs, delay
        self.worker_pids: list[int] = []

    def start(self, mode: str) -> subprocess.Popen:
        """Start the driver in ``mode`` (``start`` or ``resume``); output goes to files."""
        with open(self.directory / f"{mode}.stdout", "w") as out, \
                open(self.directory / f"{mode}.stderr", "w") as err:
            return subprocess.Popen(
                [sys.executable, str(self.script), mode, self.filename, str(self.workers),
                 self.storage, str(self.n_runs), str(self.markers), str(self.delay)],
                cwd=self.directory, stdout=out, stderr=err, stdin=subprocess.DEVNULL)

    def output(self, mode: str, stream: str = "stderr") -> str:
        return (self.directory / f"{mode}.{stream}").read_text()

    def wait_until_runs_are_stored(self, proc: subprocess.Popen, timeout: float = 60) -> None:
        """Wait until finished runs are stored (then the exploration is under way)."""
        deadline = time.monotonic() + timeout
        while not self.runs_stored():
            assert proc.poll() is None, f"the driver ended early:\n{self.output('start')}"
            assert time.monotonic() < deadline, "no run was stored in time"
            time.sleep(0.01)
        if self.workers > 1:
            self.worker_pids = self._pids("start")

    def _pids(self, mode: str) -> list[int]:
        return json.loads(pathlib.Path(f"{self.filename}.{mode}.pids").read_text())

    def runs_stored(self) -> bool:
        """Whether finished runs are committed: in the base or a segment (workers' ones too)."""
        try:
            for path in layer_files(self.filename):
                with tables.open_file(path) as handle:
                    if f"/{NAME}/runs" in handle and handle.get_node(f"/{NAME}/runs").nrows:
                        return True
        except (OSError, tables.HDF5ExtError):   # not made yet, or merged meanwhile
            pass
        return False

    def resume(self) -> list[tuple[int, int]]:
        """Resume here, in the test process, with the driver's own run function."""
        spec = importlib.util.spec_from_file_location("crash_driver", self.script)
        module = importlib.util.module_from_spec(spec)   # not in sys.modules: sent by value
        spec.loader.exec_module(module)
        with ex.Environment.resume(self.filename, NAME, workers=self.workers,
                                   storage=self.storage, progress=False) as env:
            if self.workers > 1:
                self.worker_pids += list(env._backend().client.run(os.getpid).values())
            return env.run(module.run, "resume", str(self.markers), self.delay)

    def executions(self) -> dict[int, list[str]]:
        """Session (``start``/``resume``) of every execution of every run."""
        found: dict[int, list[str]] = {idx: [] for idx in range(self.n_runs)}
        for path in self.markers.iterdir():
            found[int(path.name)] = [line.split()[0] for line in path.read_text().splitlines()]
        return found

    def cleanup(self) -> None:
        """Kill worker processes the killed driver may have left (by their pid)."""
        for pid in self.worker_pids:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def make_driver(tmp_path):
    made: list[Driver] = []

    def make(**options) -> Driver:
        driver = Driver(tmp_path, **options)
        made.append(driver)
        return driver

    yield make
    for driver in made:
        driver.cleanup()


# ------------------------------------------------------------------ checks
def completed_runs(filename: str, name: str = NAME) -> list[int]:
    frame = ex.load_trajectory(filename, name).to_frame()
    return frame.index[frame["status"] == "completed"].tolist()


def assert_stored_once(filename: str, n_runs: int, name: str = NAME) -> None:
    """Each run has exactly one completed row, one return value and one row per item."""
    traj = ex.load_trajectory(filename, name)
    frame = traj.to_frame()
    assert frame.index.tolist() == list(range(n_runs))
    assert frame["status"].tolist() == ["completed"] * n_runs
    assert frame["return_value"].tolist() == [2 * idx for idx in range(n_runs)]
    assert frame["idx"].tolist() == list(range(n_runs))
    for idx in (0, n_runs // 2, n_runs - 1):          # values, with the stored seed
        expected = np.random.default_rng(np.random.SeedSequence(SEED, spawn_key=(idx,)))
        np.testing.assert_array_equal(traj.res.out[traj.run_names[idx]].draws,
                                      expected.random(16))
    everything = list(range(n_runs))
    rows = run_rows(filename, name)                      # over every layer
    completed = rows["idx"][rows["status"] == 1]         # docs/storage.md: 1 completed
    assert sorted(completed.tolist()) == everything, \
        f"completed rows in the run tables: {_miscount(completed, n_runs)}"
    columns = 0
    for path, runs in column_runs(filename, name).items():
        if path.startswith((f"/{name}/errors", f"/{name}/exploration")):
            continue
        assert sorted(runs.tolist()) == everything, \
            f"rows of column {path}: {_miscount(runs, n_runs)}"
        columns += 1
    assert columns == 3    # returns/value, out/$/idx, out/$/draws


def _miscount(runs: np.ndarray, n_runs: int) -> str:
    counts = np.bincount(np.asarray(runs, dtype=np.int64), minlength=n_runs)
    return (f"runs stored twice or more: {np.flatnonzero(counts > 1).tolist()}, "
            f"runs never stored: {np.flatnonzero(counts == 0).tolist()}")


def _writer_pid(path: str) -> int:
    """The pid in an unfinished file's name: ``<file>.<pid>-<thread>.tmp`` beside the
    file, ``<host>-<pid>-<thread>-<n>.tmp`` in its segments folder."""
    name = os.path.basename(path)[:-len(".tmp")]
    if os.path.basename(os.path.dirname(path)).endswith(".segments"):
        return int(name.split("-")[1])
    return int(name.rsplit(".", 1)[1].split("-")[0])


def _process_state(pid: int) -> str:
    """``ps``'s state letter of process ``pid`` (``Z``: dead, not yet reaped), or ``gone``."""
    try:
        with open(f"/proc/{pid}/stat") as stream:
            return stream.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return "gone"


def assert_tidy(filename: str) -> None:
    """No unfinished file of a writer is left, and no segment that a later file replaces."""
    left = leftovers(filename)
    assert left == [], [(path, _process_state(_writer_pid(path))) for path in left]
    folder = f"{os.path.realpath(filename)}.segments"
    committed = sorted(glob.glob(os.path.join(folder, "*.h5")))
    assert committed == layer_files(filename)[1:], "superseded segments left"


# ------------------------------------------------------------------ SIGKILL of the driver
def _kill_driver_then_resume(driver: Driver) -> None:
    proc = driver.start("start")
    driver.wait_until_runs_are_stored(proc)
    time.sleep(0.05)                                   # land in the middle of a batch
    assert proc.poll() is None, "the exploration ended before the kill"
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    for pid in driver.worker_pids:                     # the workers go with the driver
        deadline = time.monotonic() + 20
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(pid), f"worker {pid} outlived its killed driver"

    stored = completed_runs(driver.filename)           # the file opens after the kill
    assert 0 < len(stored) < driver.n_runs
    # what the killed processes were writing is left unfinished, and only that;
    # loading only reads: it removes nothing
    left = leftovers(driver.filename)
    assert {_writer_pid(path) for path in left} <= {proc.pid, *driver.worker_pids}, left
    assert completed_runs(driver.filename) == stored and leftovers(driver.filename) == left
    before = driver.executions()
    assert all(before[idx] == ["start"] for idx in stored)

    assert driver.resume() == [(idx, 2 * idx) for idx in range(driver.n_runs)]
    assert_stored_once(driver.filename, driver.n_runs)
    assert_tidy(driver.filename)                       # the killed writers' files are gone
    executions = driver.executions()
    for idx in range(driver.n_runs):
        resumed = executions[idx].count("resume")
        if idx in stored:
            assert resumed == 0, f"run {idx} was stored before the kill but ran again"
        else:
            assert resumed == 1, f"run {idx} ran {resumed} times on resume"
    # runs that had started when the driver died ran again; no run ran more than twice
    assert max(len(sessions) for sessions in executions.values()) <= 2


@pytest.mark.slow
def test_sigkill_of_the_driver_then_resume_stores_every_run_once(make_driver):
    _kill_driver_then_resume(make_driver(workers=1))


@pytest.mark.slow
@pytest.mark.parametrize("storage", ["queue", "lock"])
def test_sigkill_of_a_two_worker_driver_then_resume(make_driver, storage):
    _kill_driver_then_resume(make_driver(workers=2, storage=storage, n_runs=TWO_WORKER_RUNS))


# ------------------------------------------------------------------ SIGTERM of the driver
def _terminate_driver_then_resume(driver: Driver) -> None:
    proc = driver.start("start")
    driver.wait_until_runs_are_stored(proc)
    # while it runs, the file is claimed by the driver process
    with pytest.raises(ex.FileLockedError) as info:
        ex.Environment("Other", driver.filename, progress=False)
    assert driver.filename in str(info.value) and f"pid {proc.pid}" in str(info.value)
    assert proc.poll() is None, "the exploration ended before SIGTERM"
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    stderr = driver.output("start")
    assert proc.returncode not in (0, None) and proc.returncode > 0, stderr
    assert "SIGTERM" in stderr
    assert "Environment.resume" in stderr and driver.filename in stderr
    assert "start:" not in driver.output("start", "stdout")
    assert_tidy(driver.filename)                       # a clean stop leaves nothing unfinished

    stored = completed_runs(driver.filename)
    assert 0 < len(stored) < driver.n_runs
    sessions = ex.load_trajectory(driver.filename, NAME)._store.sessions()
    assert sessions[-1]["interrupted"] == "SIGTERM"
    assert sessions[-1]["runs"] >= len(stored)

    assert driver.resume() == [(idx, 2 * idx) for idx in range(driver.n_runs)]
    assert_stored_once(driver.filename, driver.n_runs)
    assert_tidy(driver.filename)
    executions = driver.executions()
    for idx in range(driver.n_runs):
        sessions_of_run = executions[idx]
        if idx in stored:
            assert sessions_of_run == ["start"], f"run {idx}: {sessions_of_run}"
        else:
            assert sessions_of_run.count("resume") == 1, f"run {idx}: {sessions_of_run}"
        if driver.workers == 1:       # in one process, every run that ran was stored
            assert len(sessions_of_run) == 1, f"run {idx}: {sessions_of_run}"


@pytest.mark.slow
def test_sigterm_stops_the_driver_with_a_resume_hint_and_resume_completes(make_driver):
    _terminate_driver_then_resume(make_driver(workers=1))


@pytest.mark.slow
def test_sigterm_of_a_two_worker_driver_then_resume(make_driver):
    _terminate_driver_then_resume(make_driver(workers=2, n_runs=TWO_WORKER_RUNS))


# ------------------------------------------------------------------ SIGKILL of a worker
def marked_run(traj, markers, delay):
    with open(os.path.join(markers, f"{traj.idx:05d}"), "a") as stream:
        stream.write(f"run {os.getpid()}\n")
    time.sleep(delay)
    traj.add_result("out.$", idx=traj.idx, draws=traj.rng.random(16))
    return traj.idx * 2


@pytest.mark.slow
@pytest.mark.parametrize("storage", ["queue", "lock"])
def test_killing_a_worker_mid_exploration_still_stores_every_run_once(tmp_path, storage):
    filename = str(tmp_path / "worker.h5")
    markers = tmp_path / "markers"
    markers.mkdir()
    n_runs = 200
    # lock mode: workers commit their own segments with no lock (the rename is the
    # commit): a worker killed right after its commit holds nobody up, and its chunk,
    # whose report never came, runs again elsewhere
    env = ex.Environment(NAME, filename, workers=2, storage=storage, seed=SEED,
                         progress=False)
    try:
        env.trajectory.add_parameter("x", 0)
        env.trajectory.explore({"x": list(range(n_runs))})
        client = env._backend().client
        pids = sorted(client.run(os.getpid).values())
        assert len(pids) == 2 and os.getpid() not in pids
        victim = pids[0]
        killed = threading.Event()

        def victim_is_busy() -> bool:
            if storage == "lock":
                # right after the victim committed a segment of its own (its pid is in
                # the name, ``<time_ns>-<host>-<pid>-<n>.h5``; a merge's ends in ``m``):
                # the chunk's report has not reached this process yet
                for segment in glob.glob(f"{filename}.segments/*.h5"):
                    fields = os.path.basename(segment)[:-3].split("-")
                    if len(fields) == 4 and not fields[3].endswith("m") and \
                            fields[2] == str(victim):
                        return True
                return False
            return any(f" {victim}\n" in path.read_text() for path in markers.iterdir())

        def kill_after_some_runs():
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if len(os.listdir(markers)) >= (1 if storage == "lock" else 30) and \
                        victim_is_busy():
                    break
                time.sleep(0.0005)
            os.kill(victim, signal.SIGKILL)
            if not finished.is_set():
                killed.set()

        killer = threading.Thread(target=kill_after_some_runs, daemon=True)
        finished = threading.Event()
        killer.start()
        results = env.run(marked_run, str(markers), 0.01)
        finished.set()
        killer.join(timeout=60)
        assert killed.is_set(), "the worker was killed only after the exploration ended"
        assert results == [(idx, 2 * idx) for idx in range(n_runs)]
        assert not _alive(victim)
    finally:
        env.close()
    assert_stored_once(filename, n_runs)
    left = leftovers(filename)           # only what the dead worker was writing, if anything
    assert {_writer_pid(path) for path in left} <= {victim}, left
    ex.Environment(ex.load_trajectory(filename, NAME), filename, progress=False).close()
    assert_tidy(filename)                # the next environment on the file removed it
    assert_stored_once(filename, n_runs)
    ran_on = {int(line.split()[1]) for path in markers.iterdir()
              for line in path.read_text().splitlines()}
    assert victim in ran_on and len(ran_on) >= 2
    # runs of the chunk the dead worker held ran again elsewhere; none ran three times
    executions = [len(path.read_text().splitlines()) for path in markers.iterdir()]
    assert len(executions) == n_runs and max(executions) <= 2


# ------------------------------------------------------------------ another process wrote the file
OTHER_WRITER = textwrap.dedent('''
    import sys

    import explorer as ex


    def times_ten(traj):
        return traj.x * 10


    if __name__ == "__main__":
        filename = sys.argv[1]
        traj = ex.load_trajectory(filename, "T")
        traj.expand({"x": [3, 4]})
        traj.store()
        with ex.Environment.resume(filename, "T", progress=False) as env:
            env.run(times_ten)
        with ex.Environment("U", filename, progress=False) as env:
            env.trajectory.add_parameter("y", 7)
            env.run(lambda traj: traj.y)
''')


def times_ten(traj):
    return traj.x * 10


def test_this_process_sees_what_another_process_stored_since_it_last_read(tmp_path):
    """A file read here, then changed by another process (a resumed job), reads as changed."""
    filename = str(tmp_path / "shared.h5")
    with ex.Environment("T", filename, progress=False) as env:
        env.trajectory.add_parameter("x", 0)
        env.trajectory.explore({"x": [0, 1, 2]})
        env.run(times_ten)
    assert ex.load_trajectory(filename, "T").to_frame()["return_value"].tolist() == [0, 10, 20]

    script = tmp_path / "other_writer.py"
    script.write_text(OTHER_WRITER)
    subprocess.run([sys.executable, str(script), filename], check=True, cwd=tmp_path,
                   capture_output=True, timeout=120)

    assert ex.trajectory_names(filename) == ["T", "U"]
    traj = ex.load_trajectory(filename, "T")
    assert len(traj) == 5
    assert traj.to_frame()["return_value"].tolist() == [0, 10, 20, 30, 40]
    assert ex.load_trajectory(filename, "U").to_frame()["return_value"].tolist() == [7]
    with ex.Environment.resume(filename, "T", progress=False) as env:
        assert env.run(times_ten) == [(idx, 10 * idx) for idx in range(5)]
