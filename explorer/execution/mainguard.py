"""Scripts imported again by worker processes: the ``if __name__ == "__main__":`` check.

A worker process started by *spawn* (dask's nannies, ``multiprocessing`` on
macOS and Windows, and its ``forkserver``) imports the main script before it
does anything else, under the name ``__mp_main__``. Code at the script's top
level then runs again in the worker: without the guard, each worker creates
the environment once more, on the file the main process is writing.

:func:`importing_main_script` tells that moment apart. ``multiprocessing``
runs the script with ``runpy`` into a temporary module named ``__mp_main__``
that is registered in ``sys.modules`` while the script runs and is not
``sys.modules["__main__"]``; afterwards both names hold the same module. In
the main process ``__mp_main__`` is absent or an alias of ``__main__``, which
a Jupyter kernel may later replace, leaving the alias with a module named
``__main__``. So neither the main process, nor a worker running a function of
an imported script, nor a worker of a ``python -c`` or notebook session
(nothing to import) passes the test.

A worker of a cluster explorer starts does not raise the error itself: it
writes the message to a file the main process named
(:func:`unguarded_scripts_reported`) and exits quietly, and the main process
raises it once, in place of dask's "Nanny failed to start".
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator

from ..errors import MainGuardError

__all__ = ["importing_main_script", "refuse_in_script_import", "unguarded_scripts_reported"]

#: Names the file a worker started by explorer writes the message to.
REPORT_VARIABLE = "EXPLORER_MAIN_GUARD_REPORT"


def importing_main_script() -> bool:
    """Whether this process is a spawned worker importing the main script right now."""
    importing = sys.modules.get("__mp_main__")
    return getattr(importing, "__name__", None) == "__mp_main__" and \
        importing is not sys.modules.get("__main__")


def _message(what: str) -> str:
    script = getattr(sys.modules.get("__mp_main__"), "__file__", None)
    script = f" {script}" if script else ""
    return (f"{what} was called while a worker process imported your script{script}: "
            "worker processes (dask's, with workers=N) import the main script, and its "
            "top-level code runs again in each of them. Put the code that creates and runs "
            "the Environment under `if __name__ == \"__main__\":`, e.g.\n\n"
            "    if __name__ == \"__main__\":\n"
            "        env = ex.Environment(traj, ..., workers=2)\n"
            "        env.run(run_function)\n\n"
            "(define run functions at the top level, outside the guard, so that workers find "
            "them)")


def refuse_in_script_import(what: str) -> None:
    """Raise :class:`MainGuardError` if a spawned worker is importing the main script.

    In a worker of a cluster explorer started, write the message for the main
    process and exit the worker instead (``SystemExit``), without a traceback.

    Parameters
    ----------
    what : str
        The call refused, for the message (``"explorer.Environment(...)"``).
    """
    if not importing_main_script():
        return
    message = _message(what)
    report = os.environ.get(REPORT_VARIABLE)
    if report:
        with contextlib.suppress(OSError):
            with open(report, "r+", encoding="utf-8") as stream:  # only if it still exists
                stream.write(message)
            raise SystemExit(1)  # the main process raises it, once
    raise MainGuardError(message)


@contextlib.contextmanager
def unguarded_scripts_reported() -> Iterator[None]:
    """Within the block, workers started that import an unguarded script report it.

    An exception raised within (dask's cluster failing to start) is then
    replaced by the :class:`MainGuardError` a worker reported.
    """
    handle, path = tempfile.mkstemp(prefix="explorer-main-guard-", suffix=".txt")
    os.close(handle)
    previous = os.environ.get(REPORT_VARIABLE)
    os.environ[REPORT_VARIABLE] = path  # workers inherit it when they are spawned
    try:
        try:
            yield
        except Exception:
            with open(path, encoding="utf-8") as stream:
                message = stream.read()
            if message:
                raise MainGuardError(message) from None
            raise
    finally:
        if previous is None:
            os.environ.pop(REPORT_VARIABLE, None)
        else:
            os.environ[REPORT_VARIABLE] = previous
        with contextlib.suppress(OSError):
            os.unlink(path)
