"""Fuzzing the value codec: every value explorer accepts comes back exactly, or is refused.

Hypothesis draws values (Python and numpy scalars, arrays of many dtypes and
byte orders, masked arrays, sequences, sparse matrices, pandas objects, dicts),
names and explorations, and stores them every way API.md allows: as parameters,
as results added outside runs, as per-run results and as run return values
(through a real serial ``Environment``), into real files reloaded with
``ex.load_trajectory``. The property: a value is either refused when it is
added, with an ``ExplorerError``, or read back exactly (type, dtype and byte
order, shape, values with NaN positions, masks, pandas dtypes, categories,
index types and names).

In CI the examples are derived from a fixed seed (``derandomize=True``).
``EXPLORER_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz_values.py -s`` runs that
many random examples per test instead; ``-s`` shows the accepted / refused
counts per category.
"""
from __future__ import annotations

import collections
import os
import string
import struct
import tempfile
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import tables
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import explorer as ex

pytestmark = pytest.mark.slow

_LONG = int(os.environ.get("EXPLORER_FUZZ_EXAMPLES", "0"))


def _settings(ci_examples: int) -> settings:
    return settings(max_examples=_LONG or ci_examples, derandomize=not _LONG, deadline=None,
                    database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


#: ``(test, category, path) -> Counter(accepted=..., refused=...)``
COUNTS: dict[tuple[str, str, str], collections.Counter] = collections.defaultdict(
    collections.Counter)


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    yield
    print("\nfuzz counts (test, category, path: accepted / refused)")
    for (test, category, path), counter in sorted(COUNTS.items()):
        print(f"  {test:12} {category:12} {path:10} {counter['accepted']:6} / "
              f"{counter['refused']:6}")


# ------------------------------------------------------------- exact equality
def assert_exact(got, expected, where="value"):
    """``got`` is ``expected``: same type, dtype (with byte order), shape and bits."""
    assert type(got) is type(expected), f"{where}: {type(got)} is not {type(expected)}"
    if isinstance(expected, pd.DataFrame):
        _assert_frame(got, expected, where)
    elif isinstance(expected, pd.Series):
        pd.testing.assert_series_equal(got, expected, check_exact=True, check_index_type=True,
                                       check_series_type=True, check_categorical=True,
                                       check_freq=True, check_flags=True, check_names=True)
        _assert_index(got.index, expected.index, f"{where}.index")
        _assert_dtype(got.dtype, expected.dtype, where)
        assert_exact(got.name, expected.name, f"{where}.name")
    elif sp.issparse(expected):
        assert (got.format, got.dtype, got.shape) == (expected.format, expected.dtype,
                                                       expected.shape), where
        np.testing.assert_array_equal(got.toarray(), expected.toarray(), strict=True)
    elif isinstance(expected, dict):
        assert list(got) == list(expected), where
        for key in expected:
            assert_exact(got[key], expected[key], f"{where}[{key!r}]")
    elif isinstance(expected, np.ma.MaskedArray):
        assert_exact(np.asarray(got.data), np.asarray(expected.data), f"{where}.data")
        assert repr(np.asarray(got.fill_value).tolist()) == \
            repr(np.asarray(expected.fill_value).tolist()), f"{where}.fill_value"
        assert_exact(np.ma.getmaskarray(got), np.ma.getmaskarray(expected), f"{where}.mask")
        assert (got.mask is np.ma.nomask) == (expected.mask is np.ma.nomask), where
    elif isinstance(expected, (np.ndarray, np.generic)):
        assert got.dtype.str == expected.dtype.str, f"{where}: {got.dtype.str} {expected.dtype.str}"
        assert np.shape(got) == np.shape(expected), where
        assert np.asarray(got).tobytes() == np.asarray(expected).tobytes(), \
            f"{where}: {got!r} != {expected!r}"
    elif isinstance(expected, (list, tuple)):
        assert len(got) == len(expected), where
        for i, (g, e) in enumerate(zip(got, expected)):
            assert_exact(g, e, f"{where}[{i}]")
    elif isinstance(expected, float):
        assert struct.pack("<d", got) == struct.pack("<d", expected), f"{where}: {got!r}"
    elif isinstance(expected, complex):
        assert_exact(got.real, expected.real, where)
        assert_exact(got.imag, expected.imag, where)
    else:
        assert got == expected, f"{where}: {got!r} != {expected!r}"


def _assert_dtype(got, expected, where):
    assert got == expected and str(got) == str(expected), f"{where}: {got!r} != {expected!r}"
    if isinstance(expected, pd.CategoricalDtype):
        _assert_index(got.categories, expected.categories, f"{where}.categories")
        assert got.ordered == expected.ordered, where


def _assert_index(got, expected, where):
    pd.testing.assert_index_equal(got, expected, exact=True, check_exact=True,
                                  check_categorical=True, check_names=True)
    assert type(got) is type(expected), where
    _assert_dtype(got.dtype, expected.dtype, where)
    assert_exact(got.name, expected.name, f"{where}.name")
    assert getattr(got, "freq", None) == getattr(expected, "freq", None), where


def _assert_frame(got, expected, where):
    pd.testing.assert_frame_equal(got, expected, check_exact=True, check_index_type=True,
                                  check_column_type=True, check_frame_type=True,
                                  check_categorical=True, check_freq=True, check_flags=True,
                                  check_names=True)
    _assert_index(got.index, expected.index, f"{where}.index")
    _assert_index(got.columns, expected.columns, f"{where}.columns")
    for i in range(expected.shape[1]):
        _assert_dtype(got.dtypes.iloc[i], expected.dtypes.iloc[i], f"{where} column {i}")


# ------------------------------------------------------------------ strategies
_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=6) | \
    st.sampled_from(["", "a\x00", "\x00", "a\x00b", "é\x00\x00", "日本", "\udc80x"])
_NATIVE = ["?", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "c8", "c16",
           "U1", "U5", "S1", "S4", "M8[D]", "M8[s]", "M8[ns]", "m8[ms]", "m8[ns]"]
_DTYPES = [np.dtype(code) for code in _NATIVE] + \
    [np.dtype(f">{code}") for code in ("i2", "i4", "i8", "u4", "f4", "f8", "c16", "U3", "M8[s]")]
_dtypes = st.sampled_from(_DTYPES)
_shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)


def _arrays(dtype, shape):
    return hnp.arrays(dtype, shape, elements=None if dtype.kind not in "mM"
                      else hnp.from_dtype(dtype, allow_nan=True))


arrays = st.builds(lambda pair: pair, st.tuples(_dtypes, _shapes)).flatmap(
    lambda pair: _arrays(*pair))
np_scalars = _dtypes.flatmap(lambda dtype: _arrays(dtype, ()).map(lambda a: a[()]))
py_scalars = st.one_of(st.booleans(), st.integers(), st.integers(-2**70, 2**70),
                       st.floats(allow_nan=True), st.complex_numbers(allow_nan=True), _TEXT)
scalars = py_scalars | np_scalars


@st.composite
def masked(draw):
    data = draw(arrays)
    if draw(st.booleans()):
        return np.ma.MaskedArray(data)
    return np.ma.MaskedArray(data, mask=draw(hnp.arrays(np.bool_, data.shape)))


sequences = st.one_of(
    st.lists(scalars, max_size=5), st.lists(scalars, max_size=5).map(tuple),
    _dtypes.flatmap(lambda dtype: st.lists(_arrays(dtype, ()).map(lambda a: a[()]),
                                           max_size=4)),             # uniform numpy
    st.lists(st.one_of(st.integers(), st.floats(), _TEXT), max_size=4).map(tuple),
    st.lists(st.lists(st.integers(), max_size=2), min_size=1, max_size=3))   # nested


@st.composite
def sparse(draw):
    dtype = draw(st.sampled_from(["f8", "i8", "?", "c16", "f4"]))
    dense = draw(hnp.arrays(np.dtype(dtype), hnp.array_shapes(min_dims=2, max_dims=2,
                                                                min_side=1, max_side=4)))
    name = draw(st.sampled_from(["csr", "csc", "coo", "lil", "dok", "bsr", "dia"]))
    kind = draw(st.sampled_from(["matrix", "array"]))
    return getattr(sp, f"{name}_{kind}")(dense)


_labels = st.one_of(st.none(), st.text(string.ascii_letters, max_size=3), st.integers(-3, 3),
                    st.floats(allow_nan=False, width=32), st.tuples(st.text(max_size=2),
                                                                    st.integers(0, 2)),
                    st.sampled_from([np.int64(3), pd.Timestamp("2020-01-01", tz="UTC"),
                                     pd.Timedelta(5, "s"), frozenset([1]), b"x"]))


def _column(n):
    """Strategies of pandas columns of length ``n`` (Series values)."""
    floats = st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=n, max_size=n)
    texts = st.lists(_TEXT, min_size=n, max_size=n)
    maybe = st.lists(st.one_of(_TEXT, st.none()), min_size=n, max_size=n)
    dates = st.lists(st.integers(0, 2**40), min_size=n, max_size=n)
    return st.one_of(
        st.lists(st.integers(-2**63, 2**63 - 1), min_size=n, max_size=n).map(
            lambda v: pd.array(v, dtype="int64")),
        floats.map(lambda v: np.array(v, dtype="f8")),
        st.lists(st.floats(width=32), min_size=n, max_size=n).map(
            lambda v: np.array(v, dtype=">f4")),
        st.lists(st.booleans(), min_size=n, max_size=n).map(np.array),
        st.lists(st.complex_numbers(allow_nan=False), min_size=n, max_size=n).map(np.array),
        texts.map(lambda v: pd.array(v, dtype="str")),
        maybe.map(lambda v: pd.array(v, dtype="string")),
        maybe.map(lambda v: pd.array(v, dtype=pd.StringDtype("python", na_value=np.nan))),
        st.lists(st.one_of(_TEXT, st.none(), st.just(np.nan), st.just(pd.NA)),
                 min_size=n, max_size=n).map(lambda v: np.array(v + [0], dtype=object)[:-1]),
        st.lists(st.one_of(st.booleans(), st.none()), min_size=n, max_size=n).map(
            lambda v: pd.array(v, dtype="boolean")),
        st.lists(st.one_of(st.integers(-100, 100), st.none()), min_size=n, max_size=n).map(
            lambda v: pd.array(v, dtype=st_int_dtype(v))),
        st.lists(st.one_of(st.floats(width=32), st.none()), min_size=n, max_size=n).map(
            lambda v: pd.array(v, dtype="Float32")),
        st.tuples(st.lists(st.sampled_from("abc"), min_size=n, max_size=n), st.booleans(),
                  st.sampled_from([[], ["z"], ["y", "z"]])).map(
            lambda t: pd.Categorical(t[0], categories=sorted(set(t[0]) | set(t[2])),
                                     ordered=t[1])),
        st.lists(st.integers(0, 3), min_size=n, max_size=n).map(
            lambda v: pd.Categorical(v, categories=[0, 1, 2, 3, 7])),
        dates.map(lambda v: pd.to_datetime(v, unit="s").as_unit("s").values),
        dates.map(lambda v: pd.array(pd.to_datetime(v, unit="ms", utc=True)
                                     .tz_convert("Europe/Paris"))),
        dates.map(lambda v: pd.to_timedelta(v, unit="us").values),
        st.lists(st.lists(st.integers(), max_size=2), min_size=n, max_size=n).map(
            lambda v: _objects(v)),                                     # refused
        st.just(pd.array(pd.period_range("2020", periods=n, freq="D"))),   # refused
    )


def st_int_dtype(values):
    return "Int64" if len(values) % 2 else "UInt8" if all(
        v is None or v >= 0 for v in values) else "Int16"


def _objects(items):
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array


def _index(n):
    return st.one_of(
        st.tuples(st.integers(-5, 5), st.integers(1, 3)).map(
            lambda t: pd.RangeIndex(t[0], t[0] + n * t[1], t[1])),
        st.lists(st.integers(-2**40, 2**40), min_size=n, max_size=n).map(pd.Index),
        st.lists(st.text(max_size=3), min_size=n, max_size=n).map(pd.Index),
        st.lists(st.text(max_size=3), min_size=n, max_size=n).map(
            lambda v: pd.Index(v, dtype=object)),
        st.lists(st.floats(), min_size=n, max_size=n).map(pd.Index),
        st.sampled_from(["D", "h", "2min", "W-SUN", "MS"]).map(
            lambda f: pd.date_range("2021-03-01", periods=n, freq=f)),
        st.just(pd.date_range("2021-03-28", periods=n, freq="h", tz="Europe/Berlin")),
        st.just(pd.DatetimeIndex(["2020-01-03", "2020-01-01", "2020-02-01"][:n] * n)[:n]),
        st.just(pd.timedelta_range("1s", periods=n, freq="s")),
        st.lists(st.sampled_from("xy"), min_size=n, max_size=n).map(pd.CategoricalIndex),
        st.just(pd.MultiIndex.from_arrays([list(range(n)), list(range(n))])),   # refused
        st.just(pd.interval_range(0, n) if n else pd.RangeIndex(0)),            # refused
    )


@st.composite
def frames(draw):
    n = draw(st.integers(0, 3))
    ncols = draw(st.integers(0, 3))
    data = {i: draw(_column(n)) for i in range(ncols)}
    index = draw(_index(n))
    frame = pd.DataFrame({i: pd.Series(values, index=index, copy=False)
                          for i, values in data.items()}, index=index)
    labels = draw(st.one_of(
        st.lists(st.text(max_size=3), min_size=ncols, max_size=ncols, unique=True).map(
            pd.Index),
        st.just(pd.RangeIndex(ncols)),
        st.lists(st.integers(0, 9), min_size=ncols, max_size=ncols).map(pd.Index)))
    frame.columns = labels
    frame.index.name = draw(_labels)
    frame.columns.name = draw(_labels)
    return frame


@st.composite
def series(draw):
    n = draw(st.integers(0, 3))
    index = draw(_index(n))
    return pd.Series(draw(_column(n)), index=index, name=draw(_labels), copy=False)


def _matrix():
    with warnings.catch_warnings():     # numpy asks to use arrays instead: the point here
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return np.matrix([[1]])


others = st.sampled_from([{1, 2}, object(), b"bytes", bytearray(b"x"), _matrix(),
                          np.array([1, "a"], dtype=object), np.zeros(2, dtype="i4,f4"),
                          np.datetime64("NaT"), np.void(b"x"), range(3), Ellipsis])

CATEGORIES = {
    "py_scalar": py_scalars, "np_scalar": np_scalars, "ndarray": arrays, "masked": masked(),
    "sequence": sequences, "sparse": sparse(), "dataframe": frames(), "series": series(),
    "none": st.none(), "other": others,
}
CATEGORIES["dict"] = st.dictionaries(st.text(max_size=3),
                                     st.one_of(*CATEGORIES.values()), max_size=3)
tagged_values = st.one_of(*(strategy.map(lambda v, c=category: (c, v))
                            for category, strategy in CATEGORIES.items()))


# ------------------------------------------------------------------- storing
def _attempt(counts, path, add):
    """Call ``add``; True if it took the value, False if it refused it (ExplorerError)."""
    try:
        add()
    except ex.ExplorerError:
        counts[path] = "refused"
        return False
    counts[path] = "accepted"
    return True


def _count(test, category, outcomes):
    for path, outcome in outcomes.items():
        COUNTS[(test, category, path)][outcome] += 1


def _store_outside_runs(values, filename):
    """Add each value as a parameter and as a result item; return which were taken."""
    traj = ex.Trajectory("Fuzz")
    outcomes, params, items = [], {}, {}
    for i, value in enumerate(values):
        outcome = {}
        if _attempt(outcome, "parameter", lambda: traj.add_parameter(f"p.v{i}", value)):
            params[i] = value
        if _attempt(outcome, "result", lambda: traj.add_result(f"r.v{i}", item=value)):
            items[i] = value
        outcomes.append(outcome)
    traj.store(filename)
    return outcomes, params, items


def _store_in_runs(values, filename, how):
    """Add ``values[i]`` in run ``i`` (as a result item or a return value); return refusals."""
    refused = set()

    def run(view):
        value = values[view.i]
        if how == "item":
            try:
                view.add_result("out.$", item=value)
            except ex.ExplorerError:
                refused.add(view.i)
        return value if how == "return" else None

    with ex.Environment("Fuzz", filename, progress=False) as env:
        env.trajectory.add_parameter("i", 0)
        env.trajectory.explore({"i": list(range(len(values)))})
        try:
            returned = dict(env.run(run))
        except ex.RunsFailedError as err:
            for run_idx, error in err.failed:
                assert error.startswith(tuple(_EXPLORER_ERRORS)), error
                refused.add(run_idx)
            returned = None
    if returned is None:  # the completed runs' values, as stored
        with ex.Environment.resume(filename, "Fuzz", progress=False, on_error="record") as env:
            returned = dict(env.run(run))
    if how == "return":
        assert len(refused) + len(returned) == len(values)
    return refused, returned


_EXPLORER_ERRORS = [name for name in dir(ex) if isinstance(getattr(ex, name), type)
                    and issubclass(getattr(ex, name), ex.ExplorerError)]


@pytest.fixture(autouse=True)
def _plain_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tables.NaturalNameWarning)
        yield


@_settings(ci_examples=150)
@given(st.lists(tagged_values, min_size=1, max_size=4))
def test_values_round_trip_or_are_refused(tagged):
    categories = [category for category, _ in tagged]
    values = [value for _, value in tagged]
    with tempfile.TemporaryDirectory() as directory:
        filename = os.path.join(directory, "outside.h5")
        outcomes, params, items = _store_outside_runs(values, filename)
        loaded = ex.load_trajectory(filename)
        for i, value in params.items():
            assert_exact(loaded[f"parameters.p.v{i}"], value, f"parameter {i}")
        for i, value in items.items():
            assert_exact(loaded[f"results.r.v{i}.item"], value, f"result {i}")

        filename = os.path.join(directory, "items.h5")
        refused, _ = _store_in_runs(values, filename, "item")
        loaded = ex.load_trajectory(filename)
        for i, value in enumerate(values):
            outcomes[i]["per-run"] = "refused" if i in refused else "accepted"
            if i not in refused:
                assert_exact(loaded.res.out[loaded.run_names[i]].item, value, f"run {i} item")

        filename = os.path.join(directory, "returns.h5")
        refused, returned = _store_in_runs(values, filename, "return")
        for i, value in enumerate(values):
            outcomes[i]["return"] = "refused" if i in refused else "accepted"
            if i not in refused:
                assert_exact(returned[i], value, f"run {i} return value")
    for category, outcome in zip(categories, outcomes):
        _count("values", category, outcome)


# --------------------------------------------------------------------- names
_segment = st.one_of(
    st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,6}", fullmatch=True),
    st.sampled_from(["été", "ß", "x1", "class", "par", "results", "crun", "run_00000001", "$",
                     "", "_x", "1a", "a-b", "a b", "dé jà", "\x00", "a\x00", "tau_V"]))
names = st.lists(_segment, min_size=1, max_size=4).map(".".join)


@_settings(ci_examples=100)
@given(st.lists(st.tuples(names, st.integers()), min_size=1, max_size=4))
def test_names_are_stored_or_refused(named):
    traj = ex.Trajectory("Names")
    kept: dict[str, dict[str, int]] = {"parameter": {}, "result": {}}
    for name, value in named:
        outcome = {}
        if _attempt(outcome, "parameter", lambda: traj.add_parameter(name, value)):
            kept["parameter"][traj.get(name).full_name] = value
        if _attempt(outcome, "result", lambda: traj.add_result(name, item=value)):
            kept["result"][name] = value
        _count("names", "dot path", outcome)
    with tempfile.TemporaryDirectory() as directory:
        filename = os.path.join(directory, "names.h5")
        traj.store(filename)
        loaded = ex.load_trajectory(filename)
        for full_name, value in kept["parameter"].items():
            assert_exact(loaded[full_name], value, full_name)
        for name, value in kept["result"].items():
            assert_exact(loaded.get(f"results.{name.removeprefix('results.')}")["item"],
                         value, name)


# -------------------------------------------------------------- explorations
_explorable = st.one_of(
    st.integers(-2**63, 2**63 - 1), st.floats(), st.booleans(), st.complex_numbers(), _TEXT,
    np_scalars, arrays, masked(), sparse(),
    st.lists(st.integers(), max_size=3), st.lists(st.floats(), max_size=3).map(tuple),
    st.none(), st.sampled_from([{1}, object()]))


def _like(default):
    """Values of the type (and dtype, number of dimensions) of ``default``."""
    if type(default) in (int, float, bool, complex, str):
        return st.from_type(type(default)) if type(default) is not str else _TEXT
    if isinstance(default, np.ma.MaskedArray):
        return masked()
    if isinstance(default, np.ndarray):
        return hnp.array_shapes(min_dims=default.ndim, max_dims=default.ndim, min_side=0,
                                max_side=3).flatmap(lambda shape: _arrays(default.dtype, shape)) \
            if default.ndim else st.just(default)
    if isinstance(default, np.generic):
        return _arrays(default.dtype, ()).map(lambda a: a[()])
    if isinstance(default, (list, tuple)):
        return st.lists(st.integers(), max_size=3).map(type(default))
    return sparse() if sp.issparse(default) else _explorable


@st.composite
def explorations(draw):
    """``(defaults, exploration, how)``: values of the default's type, now and then not."""
    count = draw(st.integers(1, 3))
    length = draw(st.integers(1, 3))
    defaults, lists = {}, {}
    for i in range(count):
        default = draw(_explorable)
        values = st.one_of(_like(default), _explorable) if draw(st.integers(0, 4)) == 4 \
            else _like(default)
        size = draw(st.integers(0, 3)) if draw(st.integers(0, 6)) == 6 else length
        defaults[f"g.p{i}"] = default
        lists[f"g.p{i}"] = draw(st.lists(values, min_size=size, max_size=size))
    how = draw(st.sampled_from(["cartesian", "explore", "explore", "expand"]))
    if how == "cartesian" and draw(st.integers(0, 5)) == 5:
        lists[draw(st.sampled_from(list(lists)))] = draw(st.sampled_from([None, 3, "abc"]))
    return defaults, lists, how


def _explore(traj, lists, how):
    if how == "cartesian":
        traj.explore(ex.cartesian_product(lists))
    elif how == "expand":
        first = {name: values[:1] for name, values in lists.items()}
        traj.explore(first)
        traj.expand({name: values[1:] for name, values in lists.items()})
    else:
        traj.explore(lists)


@_settings(ci_examples=100)
@given(explorations())
def test_explorations_round_trip_or_are_refused(case):
    defaults, lists, how = case
    traj = ex.Trajectory("Explored")
    outcome: dict[str, str] = {}
    try:
        for name, default in defaults.items():
            traj.add_parameter(name, default)
    except ex.ExplorerError:
        _count("explore", how, {"default": "refused"})
        return
    if not _attempt(outcome, "points", lambda: _explore(traj, lists, how)):
        _count("explore", how, outcome)
        return
    ranges = {name: traj.get(name).range for name in lists}
    seen: dict[int, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as directory:
        filename = os.path.join(directory, "explored.h5")
        with ex.Environment(traj, filename, progress=False) as env:
            env.run(lambda view: seen.__setitem__(view.idx, {n: view[n] for n in lists}))
        loaded = ex.load_trajectory(filename)
        for name, values in ranges.items():
            assert_exact(loaded.get(name).default, defaults[name], f"{name} default")
            assert_exact(list(loaded.get(name).range), list(values), f"{name} range")
            for idx, value in enumerate(values):
                assert_exact(seen[idx][name], value, f"{name} in run {idx}")
    _count("explore", how, outcome)
