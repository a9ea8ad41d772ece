"""Decision curves: net benefit of the model, treat-all and treat-none, computed by ``dcurves``."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from .checks import _prob_inputs

__all__ = ["DEFAULT_DCA_THRESHOLDS", "DEFAULT_DCA_REPORT_RANGE", "decision_curve", "net_benefit_table"]

#: decision-curve threshold grid: 0.01, 0.02, ..., 0.99 (the same floats as ``i / 100``)
DEFAULT_DCA_THRESHOLDS = tuple(i / 100 for i in range(1, 100))
#: the threshold range the report tabulates and plots (the study reported net benefit over 10-70 %)
DEFAULT_DCA_REPORT_RANGE = (0.10, 0.70)


def decision_curve(y, p, thresholds: Sequence[float] | None = None) -> pd.DataFrame:
    """Net benefit of the model, treat-all and treat-none over a threshold grid, by ``dcurves.dca``.

    Net benefit at threshold probability t (Vickers & Elkin 2006):
    NB = TP/N - FP/N * t/(1 - t), a node being treated when p >= t; treat-all uses p = 1 for everyone,
    treat-none p = 0 (NB 0). Default grid 0.01, 0.02, ..., 0.99. Returns one row per threshold with
    net_benefit_model, net_benefit_all, net_benefit_none, the model's test_pos_rate, tp_rate, fp_rate and
    net_intervention_avoided (per node), as computed by ``dcurves.dca`` (columns renamed, values as is).
    """
    from dcurves import dca

    yy, pp = _prob_inputs(y, p)
    thr = list(DEFAULT_DCA_THRESHOLDS if thresholds is None else thresholds)
    res = dca(data=pd.DataFrame({"outcome": yy.astype(int), "model": pp}), outcome="outcome",
              modelnames=["model"], thresholds=thr)
    wide = {"threshold": np.asarray(thr, dtype=float)}
    for name in ("model", "all", "none"):
        sub = res[res["model"] == name].reset_index(drop=True)
        wide[f"net_benefit_{name}"] = sub["net_benefit"].to_numpy(dtype=float)
        if name == "model":
            for col in ("test_pos_rate", "tp_rate", "fp_rate", "net_intervention_avoided"):
                wide[col] = sub[col].to_numpy(dtype=float)
    out = pd.DataFrame(wide)
    out.insert(1, "n", yy.size)
    out.insert(2, "prevalence", float(yy.mean()))
    return out


def net_benefit_table(y, p, thresholds: Sequence[float] | None = None) -> pd.DataFrame:
    """The table of :func:`decision_curve` computed directly with NumPy (same columns, same definitions:
    NB = TP/N - FP/N * t/(1 - t) with treatment when p >= t; treat-all NB = prev - (1 - prev) t/(1 - t);
    net interventions avoided = (NB_model - NB_all) / (t/(1 - t))). Equal to ``dcurves.dca`` (tested); used
    where many models are compared, since ``dcurves`` takes seconds per call."""
    yy, pp = _prob_inputs(y, p)
    thr = np.asarray(DEFAULT_DCA_THRESHOLDS if thresholds is None else thresholds, dtype=float)
    n = yy.size
    prev = float(yy.mean())
    treat = pp[None, :] >= thr[:, None]
    tp = (treat & (yy[None, :] == 1)).sum(axis=1) / n
    fp = (treat & (yy[None, :] == 0)).sum(axis=1) / n
    odds = thr / (1.0 - thr)
    nb_model = tp - fp * odds
    nb_all = prev - (1.0 - prev) * odds
    out = pd.DataFrame({"threshold": thr, "net_benefit_model": nb_model, "test_pos_rate": tp + fp, "tp_rate": tp,
                        "fp_rate": fp, "net_intervention_avoided": (nb_model - nb_all) / odds,
                        "net_benefit_all": nb_all, "net_benefit_none": np.zeros_like(thr)})
    out.insert(1, "n", n)
    out.insert(2, "prevalence", prev)
    return out
