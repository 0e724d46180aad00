"""When two stored values are the same: for comparing parameters and finding duplicate points."""
from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from ..values import is_sparse

__all__ = ["same_value", "point_key"]


def same_value(a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` hold the same value (arrays, sparse matrices and pandas
    objects compared element-wise, with their dtypes and shapes; NaN equals NaN)."""
    if type(a) is not type(b):
        return False
    if is_sparse(a):
        return a.shape == b.shape and a.dtype == b.dtype and (a != b).nnz == 0
    if type(a).__module__.startswith("pandas"):  # a frame or series (pandas not imported)
        return bool(a.equals(b))
    if isinstance(a, (np.ndarray, np.generic)):
        return a.shape == b.shape and a.dtype == b.dtype and \
            bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and a != a:
        return b != b
    return bool(a == b)


def point_key(values: Sequence[Any]) -> Hashable:
    """A hashable key of one point's explored values: equal for the same values."""
    return tuple(_key(value) for value in values)


def _key(value: Any) -> Hashable:
    if isinstance(value, np.ndarray):
        return ("ndarray", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, np.generic):
        return ("numpy", value.dtype.str, value.tobytes())
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_key(item) for item in value))
    if is_sparse(value):
        coo = value.tocoo()
        return ("sparse", value.shape, coo.row.tobytes(), coo.col.tobytes(), coo.data.tobytes())
    if isinstance(value, float) and value != value:
        return ("nan",)
    return (type(value).__name__, value)
