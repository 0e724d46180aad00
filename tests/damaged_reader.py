"""The child process of the damaged-files suite: opens files through explorer's entry points.

Run as ``python tests/damaged_reader.py``; it reads one JSON request per line
from stdin (``{"path", "name", "marker"}``) and answers each with one line
``@@ {...}`` on stdout: for every entry point, ``ok`` and a digest of what it
read, or the error it raised (its type, whether it is an ``ExplorerError``,
whether its message names the file). A file whose pickle ran code leaves its
marker file behind, which the answer reports. A crash or a hang ends this
process; the parent starts another for the next file.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import sys
import traceback
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

import explorer as ex


def digest(value: Any) -> str:
    """A short fingerprint of a value read back (pickle is deterministic for these)."""
    try:
        blob = pickle.dumps(value, protocol=4)
    except Exception:  # noqa: BLE001 - anything unpicklable is compared by its repr
        blob = repr(value).encode()
    return hashlib.sha1(blob).hexdigest()[:16]


def _parameters(traj: ex.Trajectory) -> dict[str, Any]:
    found = {}
    for name, parameter in sorted(traj.parameters_dict().items()):
        found[name] = (digest(parameter.default), digest(list(parameter.range or [])),
                       parameter.comment)
    return found


#: The items each run of the suite's exploration stores under ``results.sim.$``.
ITEMS = ("trace", "spikes", "count", "label")


def _results(traj: ex.Trajectory) -> dict[str, Any]:
    """Every result: items added outside runs, and each run's items (API.md's crun)."""
    found: dict[str, Any] = {}
    for result in traj.results_list():
        found[result.full_name] = {key: digest(value) for key, value in result.to_dict().items()}
    for idx in range(len(traj)):
        traj.set_run(idx)
        for item in ITEMS:
            try:
                found[f"{idx}.{item}"] = digest(getattr(traj.res.sim.crun, item))
            except ex.NodeNotFoundError:  # a failed run has none
                found[f"{idx}.{item}"] = "missing"
    traj.restore_default()
    found["templates"] = sorted(traj.run_templates)
    return found


def _frame(traj: ex.Trajectory) -> str:
    frame = traj.to_frame()
    return digest((frame.drop(columns=["duration"], errors="ignore"), list(frame.columns)))


def examine(path: str, name: str) -> dict[str, Any]:
    """Each entry point's outcome for the file at ``path``."""
    outcomes: dict[str, Any] = {}
    traj = None

    def attempt(entry: str, call: Callable[[], Any], compared: bool = True) -> Any:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                value = call()
        except BaseException as error:  # noqa: BLE001 - that is what is examined
            if isinstance(error, (KeyboardInterrupt, SystemExit)):
                raise
            text = str(error)
            outcomes[entry] = {
                "ok": False, "type": f"{type(error).__module__}.{type(error).__qualname__}",
                "explorer": isinstance(error, ex.ExplorerError),
                "names_file": os.path.basename(path) in text,
                "message": text[:300],
                "where": "".join(traceback.format_exception(error)[-6:])[-1500:]}
            return None
        outcomes[entry] = {"ok": True, "digest": digest(value) if compared else ""}
        return value

    attempt("trajectory_names", lambda: ex.trajectory_names(path))
    traj = attempt("load_trajectory", lambda: ex.load_trajectory(path, name, load="all"),
                   compared=False)
    if traj is not None:
        attempt("parameters", lambda: _parameters(traj))
        attempt("to_frame", lambda: _frame(traj))
        attempt("results", lambda: _results(traj))
        traj.close()

    def resume() -> None:
        env = ex.Environment.resume(path, name, progress=False)
        env.close()

    attempt("resume", resume, compared=False)
    return outcomes


def main() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        try:
            os.remove(request["marker"])
        except FileNotFoundError:
            pass
        outcomes = examine(request["path"], request["name"])
        answer = {"path": request["path"], "outcomes": outcomes,
                  "code_ran": os.path.exists(request["marker"])}
        sys.stdout.write("@@ " + json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
