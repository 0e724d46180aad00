"""Every ``python`` block of the documentation runs.

Each page of ``docs/**/*.md`` and ``README.md`` runs its ``python`` blocks in
order, in one namespace, in a fresh directory (never the checkout). Blocks that
are not meant to run (signatures, pypet code, shell, output) are fenced as
something else: ``text``, ``console``, ``bash``.

Pages whose own test already runs every block, and compares what it prints, are
left to that test here: inspecting (``test_docs_inspecting.py``), cluster
(``test_docs_cluster.py``, which also knows its ``<!-- not run -->`` blocks),
pypet (``test_docs_pypet.py``) and storage (``test_docs_storage.py``, which
builds the layered file its block reads). Their blocks are still compiled here.
"""
from __future__ import annotations

import contextlib
import io
import pathlib
import re
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs").rglob("*.md")) + [ROOT / "README.md"]
TESTED_ELSEWHERE = {"inspecting.md", "cluster.md", "pypet.md", "storage.md"}
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<language>[^\n`]*)\n"
                   r"(?P<body>.*?)^(?P=indent)```[ \t]*$", flags=re.S | re.M)

pytestmark = [
    # a page's local dask cluster keeps the default dashboard port, which another
    # cluster on this machine may hold: dask then warns and takes another port
    pytest.mark.filterwarnings("ignore:Port 8787 is already in use:UserWarning"),
]


def name(page: pathlib.Path) -> str:
    return page.relative_to(ROOT).as_posix()


def python_blocks(page: pathlib.Path) -> list[tuple[int, str]]:
    """``(line number, source)`` of the page's ``python`` blocks, in order."""
    text = page.read_text()
    found = []
    for match in FENCE.finditer(text):
        if match["language"].strip() in ("python", "py", "python3"):
            line = text.count("\n", 0, match.start()) + 1
            body = "".join(row.removeprefix(match["indent"])
                           for row in match["body"].splitlines(keepends=True))
            found.append((line, body))
    return found


RUN = [page for page in PAGES
       if page.name not in TESTED_ELSEWHERE and python_blocks(page)]


@pytest.mark.parametrize("page", PAGES, ids=name)
def test_every_python_block_is_python(page):
    """A signature or a shell line fenced as ``python`` fails here."""
    for line, source in python_blocks(page):
        compile(source, f"{name(page)}:{line}", "exec")


@pytest.mark.slow
@pytest.mark.parametrize("page", RUN, ids=name)
def test_the_python_blocks_of_a_page_run_in_order(page, tmp_path, monkeypatch):
    blocks = python_blocks(page)
    if any("import matplotlib" in source for _, source in blocks):
        pytest.importorskip("matplotlib", reason="the page plots: pip install -e '.[plot]'")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__main__"}
    try:
        for number, (line, source) in enumerate(blocks):
            # a real file, so that numba can cache what a block compiles (into tmp_path)
            path = tmp_path / f"block_{number}_line_{line}.py"
            path.write_text(source)
            with contextlib.redirect_stdout(io.StringIO()):
                try:
                    exec(compile(source, str(path), "exec"), namespace)  # noqa: S102
                except BaseException as error:
                    raise AssertionError(f"{name(page)}, the block on line {line} raised "
                                         f"{type(error).__name__}: {error}") from error
    finally:
        for value in list(namespace.values()):  # what the page left open
            if type(value).__name__ in ("Environment", "Client", "LocalCluster"):
                with contextlib.suppress(Exception):
                    value.close()
        if "matplotlib.pyplot" in sys.modules:
            sys.modules["matplotlib.pyplot"].close("all")


def test_every_page_is_run_here_or_by_its_own_test():
    own = {path.name.removeprefix("test_docs_").removesuffix(".py") + ".md"
           for path in (ROOT / "tests").glob("test_docs_*.py")}
    assert TESTED_ELSEWHERE <= own
    assert {page.name for page in PAGES if page.name in TESTED_ELSEWHERE} == TESTED_ELSEWHERE
