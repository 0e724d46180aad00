"""A file system that cannot lock files: one clear error, nothing half-written.

Every write of an explorer file holds the file's claim, an ``flock`` on
``<file>.lock``. Where the file system has no locks (Lustre mounted without
``flock``: ``ENOSYS``; NFS without its lock daemon: ``ENOLCK``; Cray DVS:
``EOPNOTSUPP``) the claim fails, and so does every write, in either storage mode:
the claim is never skipped. Readers take no claim. No such file system is at
hand, so these tests make the OS call refuse: ``fcntl.flock`` replaced by one
that raises what the kernel would, or, for HDF5's own locking (in C, out of
monkeypatch's reach), a child process with ``flock`` of the C library replaced
through ``LD_PRELOAD``. A lock held by another process is still
``FileLockedError``; a lock file that cannot be created (a read-only file
system) says so.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

import explorer as ex
from layers import leftovers

UNSUPPORTED = [errno.ENOSYS, errno.ENOLCK, errno.EOPNOTSUPP]


def _trajectory() -> ex.Trajectory:
    traj = ex.Trajectory("Locks")
    traj.add_parameter("x", 0)
    traj.explore({"x": [1, 2, 3]})
    return traj


def _square(traj):
    traj.add_result("square.$", value=traj.x ** 2)
    return 10 * traj.x


def _refusing(code: int):
    """An ``fcntl.flock`` that fails as it does on a file system without locks."""

    def flock(fd, operation):
        raise OSError(code, os.strerror(code))

    return flock


@pytest.fixture(params=UNSUPPORTED, ids=errno.errorcode.get)
def no_flock(request, monkeypatch):
    """``fcntl.flock`` refusing with each errno in turn; ``undo()`` on the patcher ends it."""
    monkeypatch.setattr(fcntl, "flock", _refusing(request.param))
    return request.param, monkeypatch


def _check(error: BaseException, code: int, path: str) -> None:
    assert isinstance(error, ex.LockingUnsupportedError)
    assert isinstance(error, ex.ExplorerError) and isinstance(error, OSError)
    assert error.errno == code and error.filename == path
    text = str(error)
    assert repr(path) in text and f"[Errno {code}] {os.strerror(code)}" in text
    assert "flock" in text and "does not support file locks" in text
    assert "storage='queue'" in text and "directory on a file system with locks" in text
    assert "HDF5_USE_FILE_LOCKING=FALSE" in text


def _nothing_half_written(path: str) -> None:
    assert leftovers(path) == []
    folder = f"{os.path.realpath(path)}.segments"
    assert not os.path.isdir(folder) or not [
        name for name in os.listdir(folder) if not name.endswith(".h5")]


# ---------------------------------------------------------------- writes are refused
def test_storing_a_trajectory_is_refused_clearly(no_flock, h5path):
    code, _ = no_flock
    with pytest.raises(ex.LockingUnsupportedError) as info:
        _trajectory().store(h5path)
    _check(info.value, code, h5path)
    assert not os.path.exists(h5path)  # no base was created
    _nothing_half_written(h5path)


@pytest.mark.parametrize("storage", ["queue", "lock"])
def test_an_environment_is_refused_before_it_runs_anything(no_flock, h5path, storage):
    code, _ = no_flock
    ran = []

    def run(traj):
        ran.append(traj.x)
        return _square(traj)

    with pytest.raises(ex.LockingUnsupportedError) as info:
        env = ex.Environment(_trajectory(), filename=h5path, progress=False, storage=storage)
        env.run(run)
    _check(info.value, code, h5path)
    assert ran == [] and not os.path.exists(h5path)
    _nothing_half_written(h5path)


def test_what_was_committed_stays_readable_and_writable_once_locks_work(no_flock, h5path):
    code, patch = no_flock
    patch.undo()  # locks work: an exploration is stored
    with ex.Environment(_trajectory(), filename=h5path, progress=False) as env:
        env.run(_square)
    patch.setattr(fcntl, "flock", _refusing(code))

    traj = ex.load_trajectory(h5path, load="all")  # reading takes no lock
    assert [traj.res.square[name].value for name in traj.run_names] == [1, 4, 9]
    traj.add_result("summary.note", text="never stored")
    traj.expand({"x": [4]})
    with pytest.raises(ex.LockingUnsupportedError) as info:
        traj.store()
    _check(info.value, code, h5path)
    with pytest.raises(ex.LockingUnsupportedError):
        ex.Environment(ex.load_trajectory(h5path), filename=h5path, progress=False)
    _nothing_half_written(h5path)

    patch.undo()  # locks work again: the file is as it was, and takes writes
    again = ex.load_trajectory(h5path, load="all")
    assert again.get("x").range == [1, 2, 3] and "summary" not in again.res
    assert [again.res.square[name].value for name in again.run_names] == [1, 4, 9]
    again.add_result("summary.note", text="stored")
    again.store()
    assert ex.load_trajectory(h5path).res.summary.note.text == "stored"


# ------------------------------------------------------- what is not "no locks"
def test_a_lock_another_holder_has_is_still_file_locked_error(h5path):
    _trajectory().store(h5path)
    lock = os.path.realpath(h5path) + ".lock"
    holder = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)  # its own open file: a rival lock
    try:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(ex.FileLockedError) as info:
            ex.Environment(ex.load_trajectory(h5path), filename=h5path, progress=False)
        assert not isinstance(info.value, ex.LockingUnsupportedError)
        assert "is being written by" in str(info.value) and repr(lock) in str(info.value)
    finally:
        os.close(holder)
    with ex.Environment(ex.load_trajectory(h5path), filename=h5path, progress=False) as env:
        env.run(_square)
    stored = ex.load_trajectory(h5path)
    assert [stored.res.square[name].value for name in stored.run_names] == [1, 4, 9]


@pytest.fixture
def read_only_directory(tmp_path):
    """A directory holding a stored trajectory in which nothing can be created."""
    directory = str(tmp_path / "ro")
    os.mkdir(directory)
    if os.geteuid() != 0:
        _trajectory().store(os.path.join(directory, "data.h5"))
        os.chmod(directory, 0o555)
        yield directory
        os.chmod(directory, 0o755)
        return
    try:  # root writes anywhere: a read-only file system instead
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", directory],
                       check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"cannot mount a tmpfs here: {error}")
    try:
        _trajectory().store(os.path.join(directory, "data.h5"))
        subprocess.run(["mount", "-o", "remount,ro", directory], check=True,
                       capture_output=True)
        yield directory
    finally:
        subprocess.run(["umount", "-l", directory], check=False, capture_output=True)


def test_a_read_only_directory_says_so_and_can_still_be_read(read_only_directory):
    path = os.path.join(read_only_directory, "data.h5")
    traj = ex.load_trajectory(path)
    assert traj.get("x").range == [1, 2, 3]
    traj.add_result("summary.note", text="cannot be stored")
    with pytest.raises(OSError) as info:
        traj.store()
    assert not isinstance(info.value, ex.LockingUnsupportedError)
    assert info.value.errno in (errno.EACCES, errno.EPERM, errno.EROFS)
    text = str(info.value)
    assert repr(path) in text and "lock file" in text and "read-only" in text
    assert "writable directory" in text
    assert ex.load_trajectory(path).get("x").range == [1, 2, 3]


# ----------------------------------------------------- HDF5's own lock, in C
SHIM = r"""
#include <errno.h>
#include <stdlib.h>
int flock(int fd, int operation) {
    const char *code = getenv("FAKE_FLOCK_ERRNO");
    errno = code ? atoi(code) : ENOSYS;
    return -1;
}
"""

CHILD = textwrap.dedent('''
    import json, sys
    import explorer as ex

    path, outcome = sys.argv[1], {}
    for step in ("load", "store"):
        try:
            traj = ex.load_trajectory(path, load="all")
            if step == "store":
                traj.add_result("summary.note", text="not stored")
                traj.store()
            outcome[step] = {"ok": True}
        except Exception as error:
            outcome[step] = {"type": type(error).__name__, "errno": getattr(error, "errno", None),
                             "message": str(error),
                             "explorer": isinstance(error, ex.ExplorerError),
                             "os": isinstance(error, OSError)}
    print(json.dumps(outcome))
''')


@pytest.fixture(scope="module")
def shim(tmp_path_factory):
    """A shared library whose ``flock`` fails with ``$FAKE_FLOCK_ERRNO``, for LD_PRELOAD."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if not sys.platform.startswith("linux") or compiler is None:
        pytest.skip("needs Linux and a C compiler to replace flock in a child process")
    folder = tmp_path_factory.mktemp("shim")
    source, library = folder / "shim.c", folder / "shim.so"
    source.write_text(SHIM)
    subprocess.run([compiler, "-shared", "-fPIC", "-o", str(library), str(source)],
                   check=True, capture_output=True)
    return str(library)


def _child(shim: str, path: str, code: int, hdf5_locking: str | None = None) -> dict:
    env = dict(os.environ, LD_PRELOAD=shim, FAKE_FLOCK_ERRNO=str(code))
    env.pop("HDF5_USE_FILE_LOCKING", None)
    if hdf5_locking is not None:
        env["HDF5_USE_FILE_LOCKING"] = hdf5_locking
    done = subprocess.run([sys.executable, "-c", CHILD, path], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("code", UNSUPPORTED, ids=errno.errorcode.get)
def test_hdf5_refusing_to_lock_is_explained(shim, h5path, code):
    _trajectory().store(h5path)
    outcome = _child(shim, h5path, code)
    load = outcome["load"]
    if code == errno.ENOSYS and load.get("ok"):
        pass  # HDF5 built with best-effort locking ignores ENOSYS (its default since 1.10.7)
    else:  # ENOLCK, EOPNOTSUPP: HDF5 cannot open the file at all
        assert load["type"] == "LockingUnsupportedError" and load["errno"] == code, load
        assert load["explorer"] and load["os"]
        assert repr(h5path) in load["message"] and "HDF5 could not lock" in load["message"]
        assert "HDF5_USE_FILE_LOCKING=FALSE" in load["message"]
    if load.get("ok"):  # then the write: explorer's claim refuses it
        store = outcome["store"]
        assert store["type"] == "LockingUnsupportedError" and store["errno"] == code, store
        assert "storage='queue'" in store["message"]

    # HDF5's locking turned off: reading works; writing is still refused, by the claim
    outcome = _child(shim, h5path, code, hdf5_locking="FALSE")
    assert outcome["load"] == {"ok": True}, outcome
    store = outcome["store"]
    assert store["type"] == "LockingUnsupportedError" and store["errno"] == code, store
    assert repr(h5path) in store["message"] and "flock" in store["message"]
    _nothing_half_written(h5path)
    assert "summary" not in ex.load_trajectory(h5path).res
