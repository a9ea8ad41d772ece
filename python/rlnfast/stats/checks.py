"""Input checks shared by the statistics: 0/1 outcomes, finite scores, probabilities, orientation.

Every check raises ``ValueError`` naming the input and what was expected; nothing is dropped silently.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as _sps

__all__ = ["check_binary"]


def check_binary(y, name: str = "outcome") -> np.ndarray:
    """Return ``y`` as an int8 array of 0/1, or raise ``ValueError`` naming ``name``.

    Accepted: numbers equal to 0 or 1 (int, float, bool). Missing values and any other value are errors,
    never silently dropped: ``outcome 'N' must be 0/1; found values [0, 1, 2]``.
    """
    arr = np.asarray(y)
    if arr.dtype == bool:
        return arr.astype(np.int8)
    try:
        num = pd.to_numeric(pd.Series(arr.ravel()), errors="raise").to_numpy(dtype=float)
    except (ValueError, TypeError):
        vals = sorted(map(str, pd.unique(pd.Series(arr.ravel()))))[:10]
        raise ValueError(f"{name} must be 0/1 (numbers); found non-numeric values {vals}") from None
    if np.isnan(num).any():
        raise ValueError(f"{name} must be 0/1; {int(np.isnan(num).sum())} value(s) are missing (NaN)")
    bad = ~np.isin(num, (0.0, 1.0))
    if bad.any():
        vals = sorted(set(num.tolist()))[:10]
        raise ValueError(f"{name} must be 0/1; found values {vals}")
    return num.reshape(arr.shape).astype(np.int8)


def _scores(score, name: str = "score", n: int | None = None) -> np.ndarray:
    s = np.asarray(score, dtype=float)
    if s.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional; got shape {s.shape}")
    if n is not None and s.shape[0] != n:
        raise ValueError(f"{name} has {s.shape[0]} values; expected {n} (one per outcome)")
    if not np.isfinite(s).all():
        raise ValueError(f"{name} must be finite; {int((~np.isfinite(s)).sum())} value(s) are NaN or infinite")
    return s


def _both_classes(y: np.ndarray, name: str) -> None:
    n1 = int(y.sum())
    if n1 == 0 or n1 == y.size:
        only = 1 if n1 else 0
        raise ValueError(f"{name} has only outcome {only} (n={y.size}); both classes 0 and 1 are needed")


def _orient(score: np.ndarray, direction: str) -> np.ndarray:
    if direction == "<":
        return score
    if direction == ">":
        return -score
    raise ValueError(f"direction must be '<', '>' or 'auto'; got {direction!r}")


def _z(conf_level: float) -> float:
    if not 0.0 < conf_level < 1.0:
        raise ValueError(f"conf_level must lie in (0, 1); got {conf_level}")
    return float(_sps.norm.ppf(0.5 + conf_level / 2.0))


def _prob_inputs(y, p, name="predicted probability"):
    yy = check_binary(y)
    pp = np.asarray(p, dtype=float)
    if pp.shape != yy.shape:
        raise ValueError(f"{name} has shape {pp.shape}; expected {yy.shape} (one per outcome)")
    if np.isnan(pp).any() or (pp < 0).any() or (pp > 1).any():
        raise ValueError(f"{name} must lie in [0, 1] without NaN")
    return yy, pp
