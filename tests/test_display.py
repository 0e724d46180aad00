"""The notebook (HTML) and text views of trajectories, groups and results (issue 17).

Built on a real run of the tutorial's trajectory, stored and reloaded; the HTML
is checked by parsing it (text, nesting, no scripts) rather than by snapshots.
"""
from __future__ import annotations

import html
from html.parser import HTMLParser

import numpy as np
import pytest

import explorer as ex
from explorer.display import (
    MAX_LINES,
    group_html,
    group_text,
    result_html,
    result_text,
    trajectory_html,
    trajectory_text,
)

FAILING = {7, 27, 47}
EVIL = "tag <b>& 'quoted' \"x\""
_VOID = {"br", "hr", "img", "input", "meta", "link", "wbr", "col", "area", "base", "source"}
_CELLS = {"exr-name", "exr-value", "exr-count", "exr-comment", "exr-more", "exr-title"}


class Page(HTMLParser):
    """The text of an HTML fragment, and what would make it unsafe or badly nested."""

    def __init__(self, markup: str):
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.stack: list[str] = []
        self.tags: list[str] = []
        self.problems: list[str] = []
        self.handlers: list[str] = []
        self._in_style = False
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.handlers += [name for name, _ in attrs if name.startswith("on")]
        self._in_style = tag == "style"
        if tag in ("li", "summary", "div", "br") or dict(attrs).get("class") in _CELLS:
            self.chunks.append(" ")  # a new cell or line: words apart
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        self._in_style = False
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        if not self._in_style:
            self.chunks.append(data)

    @property
    def text(self) -> str:
        """The shown text, on one line."""
        return " ".join("".join(self.chunks).split())


def check_html(markup: str) -> str:
    """Check that ``markup`` is static, self-contained and well nested; return its text."""
    page = Page(markup)
    assert page.problems == [] and page.stack == []
    assert markup.count("<details") == markup.count("</details>") == page.tags.count("details")
    assert "script" not in page.tags and "<script" not in markup.lower()
    assert page.handlers == [] and "javascript:" not in markup.lower()
    for external in ("http://", "https://", "url(", "@import", "src=", "<link", "<iframe"):
        assert external not in markup
    return page.text


@pytest.fixture(scope="module")
def stored(tmp_path_factory, make_tutorial_trajectory) -> str:
    """The tutorial's trajectory run over its 63-point grid, 3 runs failing, stored."""
    path = tmp_path_factory.mktemp("display") / "t.h5"
    traj = make_tutorial_trajectory()
    traj.add_parameter("labels.evil", "a<b>&c", comment=EVIL)
    traj.explore(ex.cartesian_product({"neuron.I": np.arange(0, 1.01, 0.05).tolist(),
                                       "neuron.tau_ref": [5.0, 7.5, 10.0]},
                                      order=("neuron.tau_ref", "neuron.I")))

    def run(view):
        if view.v_idx in FAILING:
            raise RuntimeError("made to fail")
        view.add_result("neuron.$", V=np.linspace(0.0, view.I, 50), nspikes=int(view.v_idx),
                        comment="membrane potential and spike count")
        return view.I

    env = ex.Environment(traj, filename=str(path), progress=False)
    with pytest.raises(ex.RunsFailedError):
        env.run(run)
    traj.add_result("summary.rates", table=np.zeros(3), comment=f"rates {EVIL}")
    env.close()
    return str(path)


@pytest.fixture
def traj(stored):
    """The stored trajectory, freshly reloaded (lazily)."""
    loaded = ex.load_trajectory(stored)
    yield loaded
    loaded.close()


# ---------------------------------------------------------------------- trajectory
def test_html_shows_name_comment_and_run_counts(traj):
    markup = trajectory_html(traj)
    assert markup.count("<details") >= 5  # the exploration, four branches, their groups
    text = check_html(markup)
    assert "explorer.Trajectory FiringRate" in text
    assert "LIF firing rates" in text
    assert "runs 63 (completed 60, failed 3, pending 0)" in text
    assert "63 points over 2 parameters" in text


def test_html_shows_parameters_with_values_and_comments(traj):
    text = check_html(trajectory_html(traj))
    assert "tau_V 12.0 membrane time constant in ms" in text
    assert "V_init 0.0 initial membrane potential" in text
    assert "I explored: 63 values [0.0, 0.05, 0.1, ...] applied current" in text
    assert "tau_ref explored: 63 values [5.0, 5.0, 5.0, ...]" in text
    assert "simulation 2 nodes dt and duration" in text
    assert "derived_parameters" in text and "steps 10000" in text
    assert "config" in text and "seed 42" in text


def test_html_shows_results_without_reading_them(traj):
    text = check_html(trajectory_html(traj))
    assert "$ per run, 2 items membrane potential and spike count" in text
    assert "V float64 (50,), in 60 of 63 runs" in text
    assert "nspikes int64 scalar, in 60 of 63 runs" in text
    assert "table not loaded" in text
    assert not traj.res.summary.rates.is_loaded("table")


def test_html_escapes_every_text(traj):
    markup = trajectory_html(traj)
    assert "<b>" not in markup and "a<b>&c" not in markup
    assert html.escape(EVIL) in markup and html.escape(repr("a<b>&c")) in markup
    text = check_html(markup)
    assert f"evil 'a<b>&c' {EVIL}" in text
    assert f"rates {EVIL}" in text


def test_text_shows_the_same_facts(traj):
    text = trajectory_text(traj)
    lines = text.splitlines()
    assert lines[0] == "<Trajectory 'FiringRate'>  # LIF firing rates"
    assert "runs: 63 (completed 60, failed 3, pending 0)" in lines
    assert "    tau_V = 12.0  # membrane time constant in ms" in lines
    assert "    I = explored: 63 values [0.0, 0.05, 0.1, ...]  # applied current" in lines
    assert "    $/  (per run, 2 items)  # membrane potential and spike count" in lines
    assert "      V: float64 (50,), in 60 of 63 runs" in lines
    assert "      nspikes: int64 scalar, in 60 of 63 runs" in lines
    assert f"    rates  (1 item)  # rates {EVIL}" in lines
    assert "      table: not loaded" in lines
    assert not traj.res.summary.rates.is_loaded("table")


def test_in_memory_trajectory(neuron_traj, grid):
    neuron_traj.explore(grid)
    text = check_html(trajectory_html(neuron_traj))
    assert "file" not in text.split()
    assert "pending 63" in text
    assert "  seed = 42" in trajectory_text(neuron_traj).splitlines()


def test_unexplored_trajectory_says_so():
    traj = ex.Trajectory("Single")
    traj.add_parameter("x", 1)
    assert "exploration: nothing explored (a single run)" in trajectory_text(traj)
    assert "nothing explored" in check_html(trajectory_html(traj))


def test_long_and_big_values_are_shortened():
    traj = ex.Trajectory("Big")
    traj.add_parameter("long", "x" * 5000, comment="c" * 5000)
    traj.add_parameter("matrix", np.zeros((100, 100)))
    traj.add_parameter("small", np.arange(3))
    text = trajectory_text(traj)
    assert len(text) < 1000
    assert "long = 'xxxx" in text and "...  # ccc" in text
    assert "matrix = ndarray float64 (100, 100)" in text
    assert "small = array([0, 1, 2])" in text
    assert len(trajectory_html(traj)) < 10_000


def test_huge_trees_render_in_bounded_size():
    traj = ex.Trajectory("Huge")
    for i in range(1000):
        traj.add_parameter(f"many.p{i:04d}", float(i), comment=f"parameter number {i}")
        traj.add_config(f"g{i:04d}.value", i)
    traj.add_derived_parameter(".".join(f"d{i}" for i in range(200)), 1)
    traj.add_result("wide", **{f"item{i:04d}": i for i in range(1000)})
    lines = trajectory_text(traj).splitlines()
    assert len(lines) < 4 * (MAX_LINES + 10) + 10
    assert f"    ... {1000 - (MAX_LINES - 1)} more" in lines  # 'many' took one line
    assert sum("more" in line for line in lines) >= 4  # each branch was cut
    markup = trajectory_html(traj)
    assert len(markup) < 200_000
    assert "p0000" in check_html(markup) and "p0999" not in markup


# ---------------------------------------------------------------------- groups and results
def test_group_views(traj):
    text = check_html(group_html(traj.res.neuron))
    assert "explorer.Group results.neuron" in text
    assert "V float64 (50,), in 60 of 63 runs" in text
    text = check_html(group_html(traj.par))
    assert "explorer.Group parameters" in text and "tau_V 12.0" in text
    assert group_text(traj.par.neuron).splitlines()[:2] == [
        "<Group parameters.neuron>", "  I = explored: 63 values [0.0, 0.05, 0.1, ...]"
        "  # applied current"]
    assert "    nspikes: int64 scalar, in 60 of 63 runs" in group_text(traj.res)


def test_result_views(traj):
    result = traj.res.summary.rates
    text = check_html(result_html(result))
    assert "explorer.Result results.summary.rates" in text
    assert f"rates {EVIL}" in text and "table not loaded" in text
    assert result_text(result) == (f"<Result results.summary.rates>  # rates {EVIL}\n"
                                   "  table: not loaded")
    result.table  # read it: now its type and shape are known
    assert "table ndarray float64 (3,)" in check_html(result_html(result))
    assert result_text(result).endswith("  table: ndarray float64 (3,)")


def test_result_with_a_frame_and_a_dict():
    pd = pytest.importorskip("pandas")
    traj = ex.Trajectory("Frames")
    result = traj.add_result("summary", frame=pd.DataFrame({"a": [1, 2]}), info={"k": 1, "j": 2},
                             comment="several kinds")
    text = result_text(result)
    assert "frame: DataFrame (2, 1)" in text
    assert "info: dict of 2 items: k, j" in text


# ---------------------------------------------------------------------- the hooks
@pytest.mark.parametrize("cls, method, render, node", [
    ("Trajectory", "_repr_html_", trajectory_html, lambda t: t),
    ("Group", "_repr_html_", group_html, lambda t: t.res.neuron),
    ("Result", "_repr_html_", result_html, lambda t: t.res.summary.rates),
])
def test_notebook_hooks(traj, cls, method, render, node):
    if not hasattr(getattr(ex, cls), method):
        pytest.skip(f"ex.{cls}.{method} is not hooked up yet")
    target = node(traj)
    assert getattr(target, method)() == render(target)



def test_views_of_a_trajectory_whose_file_went_away_do_not_raise(tmp_path, monkeypatch):
    """A trajectory loaded by a relative name, then the directory changed: its views say
    the file cannot be read instead of raising."""
    monkeypatch.chdir(tmp_path)
    with ex.Environment(trajectory="Moved", filename="moved.h5", progress=False) as env:
        env.trajectory.add_parameter("x", 1)
        env.run(lambda traj: traj.x)
    traj = ex.load_trajectory("moved.h5")
    assert "completed 1" in repr(traj)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert "file: not readable: no file 'moved.h5'" in repr(traj)
    assert "not readable: no file &#x27;moved.h5&#x27;" in traj._repr_html_()
