"""Error messages that name the thing and the fix: suggestions, types, how to go on."""
from __future__ import annotations

import pytest

from explorer.suggest import did_you_mean


# ---------------------------------------------------------------- did you mean
def test_did_you_mean_one_close_name():
    assert did_you_mean("tua_ref", ["tau_ref", "tau_V", "I"]) == "; did you mean 'tau_ref'?"


def test_did_you_mean_nothing_close():
    assert did_you_mean("xyz", ["tau_ref", "duration"]) == ""
    assert did_you_mean("tau_ref", []) == ""


def test_did_you_mean_two_names_closest_first():
    assert did_you_mean("tau_re", ["tau_refr", "duration", "tau_ref"]) == \
        "; did you mean 'tau_ref' or 'tau_refr'?"


def test_did_you_mean_at_most_three_names():
    suffix = did_you_mean("tau", ["tau_a", "tau_b", "tau_c", "tau_d"])
    assert suffix.startswith("; did you mean ") and suffix.endswith("?")
    assert suffix.count("'") == 6 and ", " in suffix and " or " in suffix


def test_did_you_mean_takes_any_iterable_once_per_name():
    names = (name for name in ["tau_ref", "tau_ref", "dt"])
    assert did_you_mean("tau_rf", names) == "; did you mean 'tau_ref'?"


@pytest.mark.parametrize("name", ["", "I"])
def test_did_you_mean_short_names(name):
    assert did_you_mean(name, ["I", "V"]) in ("", "; did you mean 'I'?")
