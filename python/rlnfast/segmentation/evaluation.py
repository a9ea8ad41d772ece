"""Segmentation quality control: Dice, HD95 (mm), volume difference and per-node detection of predicted
masks against their truth, per case and as the cohort's mean +- SD (:func:`seg_eval`)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io import Volume, read_volume
from ..regions import connectivity_structure
from .files import _image_files, _strip_suffix, check_same_geometry
from .nodes import _as_label_array


def _gpu_array_module(backend: str):
    """(xp, ndimage) for the metric arrays: CuPy when the rlnfast backend is a GPU one, NumPy/SciPy otherwise."""
    from .. import _backends

    name = _backends.resolve(backend) if backend != "numpy" else "numpy"
    if name in ("cuda", "cupy"):
        try:
            import cupy as cp
            import cupyx.scipy.ndimage as cnd
        except ImportError:
            cp = None
        if cp is not None:
            return cp, cnd, name
    from scipy import ndimage

    return np, ndimage, "cpu" if name != "numpy" else "numpy"


def dice(pred, gt, backend: str = "auto") -> float:
    """Dice similarity coefficient of two binary masks: ``2 |P & G| / (|P| + |G|)``; NaN when both are
    empty (undefined; as nnU-Net's evaluation). Runs on CuPy when the rlnfast backend is a GPU one."""
    xp, _, _ = _gpu_array_module(backend)
    p, g = xp.asarray(pred).astype(bool), xp.asarray(gt).astype(bool)
    inter, sp, sg = (int(xp.count_nonzero(p & g)), int(xp.count_nonzero(p)), int(xp.count_nonzero(g)))
    return float("nan") if sp + sg == 0 else 2.0 * inter / (sp + sg)


def surface_distances(a, b, spacing_zyx, backend: str = "auto") -> np.ndarray:
    """Distances (mm) from every surface voxel of ``a`` to the nearest surface voxel of ``b``.

    Definition (MedPy's ``__surface_distances``, the common one behind ``hd95``): the surface of a mask
    is ``mask & ~binary_erosion(mask, 6-connected cross)`` with voxels outside the volume counted as
    background; distances are ``scipy.ndimage.distance_transform_edt(~surface_b, sampling=spacing)``
    read at the surface voxels of ``a``, voxel centre to voxel centre, in mm. Both masks must be
    non-empty. The computation is cropped to the union's bounding box grown by one voxel, which changes
    no distance.
    """
    xp, nd, _ = _gpu_array_module(backend)
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if not a.any() or not b.any():
        raise ValueError("surface_distances: both masks must be non-empty")
    crop = _bbox_slices(a | b, 1)
    a, b = xp.asarray(a[crop]), xp.asarray(b[crop])
    from scipy import ndimage

    cross = xp.asarray(ndimage.generate_binary_structure(3, 1))
    sa = a & ~nd.binary_erosion(a, structure=cross, border_value=0)
    sb = b & ~nd.binary_erosion(b, structure=cross, border_value=0)
    dt = nd.distance_transform_edt(~sb, sampling=tuple(float(s) for s in spacing_zyx))
    d = dt[sa]
    return d.get() if hasattr(d, "get") else np.asarray(d)


def _bbox_slices(m: np.ndarray, margin: int):
    idx = [np.nonzero(np.any(m, axis=tuple(j for j in range(3) if j != ax)))[0] for ax in range(3)]
    return tuple(slice(max(int(i[0]) - margin, 0), min(int(i[-1]) + margin + 1, m.shape[ax]))
                 for ax, i in enumerate(idx))


def hd95(pred, gt, spacing_zyx, backend: str = "auto") -> float:
    """95th-percentile Hausdorff distance in mm: ``numpy.percentile(concat(d(P->G), d(G->P)), 95)`` over the
    pooled surface distances of both directions (:func:`surface_distances`; MedPy's ``hd95``, linear
    interpolation between order statistics). NaN when either mask is empty."""
    p, g = np.asarray(pred, bool), np.asarray(gt, bool)
    if not p.any() or not g.any():
        return float("nan")
    d = np.concatenate([surface_distances(p, g, spacing_zyx, backend), surface_distances(g, p, spacing_zyx, backend)])
    return float(np.percentile(d, 95))


def node_detection(pred, gt, connectivity: int = 26) -> dict:
    """Per-node detection by overlap of connected components (``scipy.ndimage.label``, 26 or 6).

    A truth node is *matched* when at least one of its voxels is predicted foreground, *missed*
    otherwise; a predicted component that touches no truth voxel is a *false positive*.
    """
    from scipy import ndimage

    st = connectivity_structure(connectivity)
    p, g = np.asarray(pred, bool), np.asarray(gt, bool)
    gc, ng = ndimage.label(g, structure=st)
    pc, npred = ndimage.label(p, structure=st)
    both = (gc > 0) & (pc > 0)
    matched_gt = len(np.unique(gc[both]))
    matched_pred = len(np.unique(pc[both]))
    return {"gt_nodes": int(ng), "pred_nodes": int(npred), "matched": int(matched_gt),
            "missed": int(ng - matched_gt), "false_positive": int(npred - matched_pred)}


def evaluate_case(pred, gt, spacing=None, *, label=None, connectivity: int = 26, backend: str = "auto") -> dict:
    """Quality metrics of one predicted mask against its truth.

    ``pred`` and ``gt`` are label maps (arrays or Volumes on the same grid); foreground is ``> 0``, or
    ``== label``. ``spacing`` (x, y, z) mm defaults to the Volume's. Returns ``dice``, ``hd95_mm``
    (:func:`hd95`), ``volume_pred_mm3``, ``volume_gt_mm3``, ``volume_diff_mm3`` (pred - truth),
    ``volume_diff_pct`` (relative to truth) and the :func:`node_detection` counts; ``note`` says why a
    metric is NaN (an empty prediction is valid: zero nodes).
    """
    if isinstance(gt, Volume):
        spacing = gt.spacing if spacing is None else spacing
        gt = gt.array
    if isinstance(pred, Volume):
        spacing = pred.spacing if spacing is None else spacing
        pred = pred.array
    sp = tuple(float(s) for s in (spacing if spacing is not None else (1.0, 1.0, 1.0)))
    p, g = _as_label_array(pred, "prediction"), _as_label_array(gt, "truth")
    if p.shape != g.shape:
        raise ValueError(f"prediction shape {p.shape} differs from truth shape {g.shape}")
    p = p > 0 if label is None else p == int(label)
    g = g > 0 if label is None else g == int(label)
    vv = sp[0] * sp[1] * sp[2]
    vp, vg = int(np.count_nonzero(p)) * vv, int(np.count_nonzero(g)) * vv
    note = []
    if vp == 0:
        note.append("empty prediction (0 nodes)")
    if vg == 0:
        note.append("empty truth")
    row = {"dice": dice(p, g, backend), "hd95_mm": hd95(p, g, sp[::-1], backend),
           "volume_pred_mm3": vp, "volume_gt_mm3": vg, "volume_diff_mm3": vp - vg,
           "volume_diff_pct": (100.0 * (vp - vg) / vg) if vg else float("nan")}
    row.update(node_detection(p, g, connectivity))
    row["note"] = "; ".join(note)
    return row


@dataclass
class SegEval:
    """Result of :func:`seg_eval`: ``cases`` (one row per case), ``summary`` (metric, mean, sd, n) and ``text``."""

    cases: "object"
    summary: "object"
    text: str

    def write(self, out_dir) -> dict:
        """Write ``seg_eval_cases.csv``, ``seg_eval_summary.csv`` and ``seg_eval.txt`` into ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"cases": out / "seg_eval_cases.csv", "summary": out / "seg_eval_summary.csv",
                 "text": out / "seg_eval.txt"}
        self.cases.to_csv(paths["cases"], index=False)
        self.summary.to_csv(paths["summary"], index=False)
        paths["text"].write_text(self.text + "\n")
        return paths


SUMMARY_METRICS = (("dice", "Dice", ""), ("hd95_mm", "HD95", " mm"), ("volume_diff_mm3", "volume difference", " mm^3"),
                   ("volume_diff_pct", "volume difference", " %"))


def _pair_eval_inputs(pred, gt):
    """[(case, pred, gt)] from two files, two folders (paired by file name) or two lists."""
    if isinstance(pred, (list, tuple)) and isinstance(gt, (list, tuple)):
        if len(pred) != len(gt):
            raise ValueError(f"{len(pred)} predictions but {len(gt)} truths")
        return [(f"case{i}", p, g) for i, (p, g) in enumerate(zip(pred, gt))], ""
    if not isinstance(pred, (str, os.PathLike)) or not isinstance(gt, (str, os.PathLike)):
        return [("case", pred, gt)], ""
    pp, gp = Path(pred), Path(gt)
    if not pp.exists():
        raise FileNotFoundError(f"prediction {str(pp)!r} does not exist")
    if not gp.exists():
        raise FileNotFoundError(f"truth {str(gp)!r} does not exist")
    if pp.is_file() and gp.is_file():
        s = _strip_suffix(pp.name)
        return [(s[0] if s else pp.name, pp, gp)], ""
    if pp.is_dir() != gp.is_dir():
        raise ValueError(f"prediction {str(pp)!r} and truth {str(gp)!r}: expected two files or two folders")
    preds, gts = _image_files(pp), _image_files(gp)
    if not preds:
        raise ValueError(f"prediction folder {str(pp)!r} holds no image files")
    out = []
    for case, p in preds.items():
        g = gts.get(case)
        if g is None:
            raise ValueError(f"prediction {str(p)!r} has no truth: expected {str(gp / p.name)!r}")
        out.append((case, p, g))
    extra = len(set(gts) - set(preds))
    return out, (f"{extra} truth file(s) without a prediction were not evaluated" if extra else "")


def _mean_sd(v) -> tuple[float, float, int]:
    v = np.asarray(v, float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan"), 0
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else float("nan"), int(len(v))


def seg_eval(pred, gt, spacing=None, *, label=None, connectivity: int = 26, backend: str = "auto",
             geometry_tolerance=None) -> SegEval:
    """Segmentation quality control: per case metrics (:func:`evaluate_case`) and the cohort summary.

    ``pred``/``gt``: two files, two folders of label maps paired by file name (``<case>.nii.gz``), two lists,
    or two arrays/Volumes. File pairs must lie on the same grid (error naming both geometries); spacing
    comes from the truth file. The summary holds mean +- SD (sample SD, ddof=1; NaN and left out of the
    text for a single case) over the cases where the metric is defined (``n``; NaN values such as the
    HD95 of an empty prediction are left out), written like the study's ``Dice 0.898 ± 0.024``. Node
    detection is pooled over the cohort: sensitivity = matched / truth nodes, precision =
    matched / (matched + false positive components).
    """
    import pandas as pd

    pairs, extra = _pair_eval_inputs(pred, gt)
    rows = []
    for case, p, g in pairs:
        if isinstance(p, (str, os.PathLike)):
            pv = read_volume(p, name=f"prediction {str(p)!r}")
            gv = read_volume(g, name=f"truth {str(g)!r}")
            check_same_geometry(pv.geometry(), pv.name, gv.geometry(), gv.name, geometry_tolerance)
            r = evaluate_case(pv.array, gv.array, gv.spacing, label=label, connectivity=connectivity, backend=backend)
        else:
            r = evaluate_case(p, g, spacing, label=label, connectivity=connectivity, backend=backend)
        rows.append({"case": case, **r})
    cases = pd.DataFrame(rows)
    summ = []
    for key, _, _ in SUMMARY_METRICS:
        m, s, n = _mean_sd(cases[key])
        summ.append({"metric": key, "mean": m, "sd": s, "n": n})
    summary = pd.DataFrame(summ)
    lines = [f"seg-eval: {len(cases)} case(s)" + (f" ({extra})" if extra else "")]
    for (key, title, unit), r in zip(SUMMARY_METRICS, summ):
        if r["n"] == 0:
            lines.append(f"{title}: not defined for any case")
        else:
            digits = 3 if key == "dice" else 2
            sd = f" ± {r['sd']:.{digits}f}" if r["n"] > 1 else ""
            lines.append(f"{title} {r['mean']:.{digits}f}{sd}{unit} (n={r['n']})")
    tm, tg = int(cases["matched"].sum()), int(cases["gt_nodes"].sum())
    tfp, tmiss = int(cases["false_positive"].sum()), int(cases["missed"].sum())
    sens = tm / tg if tg else float("nan")
    prec = tm / (tm + tfp) if (tm + tfp) else float("nan")
    lines.append(f"nodes: {tg} in truth, {tm} matched, {tmiss} missed, {tfp} false positive "
                 f"(sensitivity {sens:.3f}, precision {prec:.3f})")
    for r in rows:
        if r["note"]:
            lines.append(f"  {r['case']}: {r['note']}")
    return SegEval(cases, summary, "\n".join(lines))
