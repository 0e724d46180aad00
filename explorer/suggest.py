"""Wording of error messages: the "did you mean ...?" of mistyped names, articles."""
from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["did_you_mean", "with_article"]

#: How alike a candidate must be to be suggested (``difflib``'s ratio, 0 to 1).
CUTOFF = 0.6
#: At most this many names are suggested, the closest first.
MOST = 3


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A suffix for an error message naming the candidates closest to ``name``.

    Parameters
    ----------
    name : str
        The name that was not found.
    candidates : iterable of str
        The names that exist.

    Returns
    -------
    str
        ``""`` if no candidate is close enough, else e.g.
        ``"; did you mean 'tau_ref'?"`` or ``"; did you mean 'a', 'b' or 'c'?"``.

    Examples
    --------
    >>> did_you_mean("tua_ref", ["tau_ref", "tau_V", "I"])
    "; did you mean 'tau_ref'?"
    >>> did_you_mean("xyz", ["tau_ref"])
    ''
    """
    close = difflib.get_close_matches(name, list(dict.fromkeys(candidates)), n=MOST,
                                      cutoff=CUTOFF)
    if not close:
        return ""
    quoted = [repr(item) for item in close]
    listed = quoted[0] if len(quoted) == 1 else \
        f"{', '.join(quoted[:-1])} or {quoted[-1]}"
    return f"; did you mean {listed}?"


def with_article(noun: str) -> str:
    """``noun`` with its article: ``"an int"``, ``"an ndarray"``, ``"a float"``, ``"a uint8"``."""
    vowel = noun[:1].lower() in "aeio" or noun.startswith("nd")
    return f"{'an' if vowel else 'a'} {noun}"
