"""Nodes from predictions: a label map -> one region per node (:func:`split_nodes`), and a folder of nnU-Net
predictions or a cohort CSV -> node maps on disk and the batch ``rlnfast extract`` runs
(:func:`import_predictions`)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..io import Volume, read_volume, write_volume
from ..regions import connected_components
from .files import _check_case_id, _find_ct, _header, _image_files, _read_table, check_same_geometry

NODE_TABLE_COLUMNS = ["node", "component", "source_label", "voxels", "volume_mm3",
                      "centroid_index_x", "centroid_index_y", "centroid_index_z",
                      "centroid_x_mm", "centroid_y_mm", "centroid_z_mm"]
_IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def _as_label_array(mask, name: str) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.dtype == bool:
        arr = arr.view(np.uint8)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f"{name}: expected a 3-D label map (z, y, x), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            return arr.astype(np.int64)
        raise ValueError(f"{name}: expected an integer label map, got dtype {arr.dtype} with non-integer values")
    return arr


class _Default:
    def __repr__(self):
        return "default"


_DEFAULT_LABEL = _Default()


def split_nodes(mask, spacing=None, label=_DEFAULT_LABEL, connectivity: int = 26, min_volume_mm3: float = 0.0, *,
                mode: str = "components", origin=None, direction=None, name: str = "mask"):
    """Split a label map into nodes: returns ``(node_map, table)``.

    Parameters
    ----------
    mask
        Integer label map (z, y, x) as a NumPy array, or a :class:`rlnfast.io.Volume` (its geometry is
        then used for ``spacing``, ``origin`` and ``direction`` unless given).
    spacing, origin, direction
        SimpleITK geometry in (x, y, z) order: spacing in mm (default 1 mm), origin in mm (default 0),
        direction cosines as 9 numbers (default identity).
    mode
        ``"components"``: each connected component of ``label`` is one node, found by
        ``scipy.ndimage.label`` with ``connectivity`` 26 (faces, edges, corners) or 6 (faces);
        ``label=None`` takes every positive voxel as foreground. Nodes keep scipy's numbering (raster
        order of each component's first voxel), renumbered 1..K consecutively after dropping components
        smaller than ``min_volume_mm3``.
        ``"labels"``: each positive label value is one node (``label`` None: every label present; or an
        int / list of labels), numbered 1..K in ascending label order; ``min_volume_mm3`` drops small ones.
    label
        Default: 1 in "components" mode, every positive label in "labels" mode.
    min_volume_mm3
        Nodes with ``voxels * spacing_x * spacing_y * spacing_z < min_volume_mm3`` are dropped (specks).

    Returns
    -------
    node_map : numpy.ndarray, int32, same shape: 0 background, 1..K nodes.
    table : pandas.DataFrame, one row per node, columns ``node`` (1..K), ``component`` (scipy's component
        id, or the label value in "labels" mode), ``source_label``, ``voxels``, ``volume_mm3``,
        ``centroid_index_x/y/z`` (mean voxel index, continuous, SimpleITK (x, y, z) order) and
        ``centroid_x/y/z_mm`` (that index mapped by SimpleITK's
        ``TransformContinuousIndexToPhysicalPoint``: origin + direction * (index * spacing)).
        An empty mask gives an all-zero map and an empty table (zero nodes is a valid result).
    """
    import pandas as pd

    if isinstance(mask, Volume):
        spacing = mask.spacing if spacing is None else spacing
        origin = mask.origin if origin is None else origin
        direction = mask.direction if direction is None else direction
        mask = mask.array
    lm = _as_label_array(mask, name)
    sp = tuple(float(s) for s in (spacing if spacing is not None else (1.0, 1.0, 1.0)))
    if len(sp) != 3 or any(not np.isfinite(s) or s <= 0 for s in sp):
        raise ValueError(f"{name}: spacing {sp} must be 3 finite values > 0 (x, y, z) in mm")
    org = tuple(float(v) for v in (origin if origin is not None else (0.0, 0.0, 0.0)))
    drc = tuple(float(v) for v in (direction if direction is not None else _IDENTITY))
    voxel_volume = sp[0] * sp[1] * sp[2]
    min_voxels = _min_voxels(min_volume_mm3, voxel_volume)
    if label is _DEFAULT_LABEL:
        label = 1 if mode == "components" else None

    if mode == "components":
        cc = connected_components(lm, None if label is None else [int(label)], merge_labels=True,
                                  connectivity=connectivity, min_voxels=min_voxels)
        comp, comp_ids, source, counts = cc.label_map, cc.scipy_number, cc.source_label, cc.count
    elif mode == "labels":
        present = np.unique(lm)
        present = present[present > 0]
        if label is None:
            values = present
        else:
            values = np.unique(np.atleast_1d(np.asarray(label, dtype=np.int64)))
            values = values[np.isin(values, present)]
        values = values.astype(np.int64)
        n = len(values)
        comp = np.zeros(lm.shape, dtype=np.int32)
        if n:
            lut_size = int(max(lm.max(), values.max())) + 1
            if lut_size <= (1 << 24) and lm.min() >= 0:
                lut = np.zeros(lut_size, dtype=np.int32)
                lut[values] = np.arange(1, n + 1, dtype=np.int32)
                comp = lut[lm]
            else:
                idx = np.searchsorted(values, lm)
                idx = np.clip(idx, 0, n - 1)
                comp = np.where(values[idx] == lm, idx + 1, 0).astype(np.int32)
        counts = np.bincount(comp.ravel(), minlength=n + 1)[1:].astype(np.int64) if n else np.zeros(0, np.int64)
        keep = counts >= min_voxels
        if n and not np.all(keep):
            lut = np.zeros(n + 1, dtype=np.int32)
            lut[1:][keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
            comp = lut[comp]
        comp_ids, source, counts = values[keep], values[keep], counts[keep]
    else:
        raise ValueError(f"mode={mode!r}: expected 'components' or 'labels'")

    node_map = np.ascontiguousarray(comp, dtype=np.int32)
    k = len(counts)

    if k:
        nz = np.nonzero(node_map)
        ids = node_map[nz]
        sums = [np.bincount(ids, weights=c.astype(np.float64), minlength=k + 1)[1:] for c in nz]  # z, y, x
        cz, cy, cx = (s / counts for s in sums)
        phys = _index_to_physical(np.stack([cx, cy, cz], axis=1), sp, org, drc)
    else:
        cx = cy = cz = np.zeros(0)
        phys = np.zeros((0, 3))
    table = pd.DataFrame({
        "node": np.arange(1, k + 1, dtype=np.int64), "component": np.asarray(comp_ids, np.int64),
        "source_label": np.asarray(source, np.int64), "voxels": counts,
        "volume_mm3": counts * voxel_volume,
        "centroid_index_x": cx, "centroid_index_y": cy, "centroid_index_z": cz,
        "centroid_x_mm": phys[:, 0], "centroid_y_mm": phys[:, 1], "centroid_z_mm": phys[:, 2],
    }, columns=NODE_TABLE_COLUMNS)
    return node_map, table


def _min_voxels(min_volume_mm3, voxel_volume: float) -> int:
    """The fewest voxels n with ``n * voxel_volume >= min_volume_mm3``: a node of ``voxels`` voxels is kept
    exactly when ``voxels >= n`` (the comparison in mm^3, with its rounding, decides the boundary)."""
    m = float(min_volume_mm3) if min_volume_mm3 else 0.0
    if m <= 0.0:
        return 1
    if not math.isfinite(m):  # inf or NaN: no node reaches it
        return np.iinfo(np.int64).max
    n = max(int(math.ceil(m / voxel_volume)), 1)
    while n > 1 and (n - 1) * voxel_volume >= m:
        n -= 1
    while n * voxel_volume < m:
        n += 1
    return n


def _index_to_physical(index_xyz: np.ndarray, spacing, origin, direction) -> np.ndarray:
    """Continuous indices (N, 3) in (x, y, z) -> physical points (mm) through SimpleITK."""
    import SimpleITK as sitk

    img = sitk.Image(1, 1, 1, sitk.sitkUInt8)
    img.SetSpacing(tuple(spacing))
    img.SetOrigin(tuple(origin))
    img.SetDirection(tuple(direction))
    out = np.zeros((len(index_xyz), 3))
    for i, idx in enumerate(index_xyz):
        out[i] = img.TransformContinuousIndexToPhysicalPoint(tuple(float(v) for v in idx))
    return out


def _label_names(folder: Path | None) -> dict:
    """Label name -> value from dataset.json in ``folder`` (nnU-Net writes it beside its predictions)."""
    if folder is None:
        return {}
    for fname in ("dataset.json",):
        p = folder / fname
        if p.is_file():
            try:
                labels = json.loads(p.read_text()).get("labels", {})
            except (ValueError, OSError) as exc:
                raise ValueError(f"{str(p)!r} is not valid JSON: {exc}") from exc
            out = {}
            for k, v in labels.items():
                if isinstance(v, (list, tuple)):  # region-based training: a region is a list of labels
                    continue
                out[str(k)] = int(v)
            return out
    return {}


def _resolve_label(label, names: dict, src: str):
    """An int label from an int, a label name (dataset.json) or None (the single foreground label)."""
    if label is None:
        fg = {k: v for k, v in names.items() if v > 0}
        if "node" in fg:
            return fg["node"]
        if len(fg) == 1:
            return next(iter(fg.values()))
        return None  # any positive label
    if isinstance(label, str) and not label.lstrip("-").isdigit():
        if label not in names:
            raise ValueError(f"{src}: label name {label!r} not in dataset.json labels {names or '(no dataset.json)'}")
        return names[label]
    return int(label)


def import_predictions(predictions, ct=None, out_dir=None, *, label=None, mode: str = "components",
                       connectivity: int = 26, min_volume_mm3: float = 0.0, geometry_tolerance=None):
    """Turn nnU-Net predictions into node maps and the batch ``rlnfast extract`` runs.

    Parameters
    ----------
    predictions
        A folder of nnU-Net predictions ``<case>.nii.gz`` (any SimpleITK suffix), with the CT folder
        ``ct`` holding ``<case>_0000.nii.gz`` (nnU-Net's channel-0 naming). Label names come from
        ``dataset.json`` beside the predictions when present (nnU-Net writes it there). Or a cohort CSV
        (or DataFrame) with columns ``ID, Image, Mask`` where Mask is the prediction (relative paths are
        resolved against the CSV's folder); ``ct`` is then not used.
    out_dir
        Where node maps (``<out_dir>/nodes/<case>_nodes.nii.gz``), ``batch.csv`` and ``nodes.csv`` are
        written (default: the prediction folder, or the CSV's folder).
    label, mode, connectivity, min_volume_mm3
        What a node is (:func:`split_nodes`). ``label`` may be a value or a name from dataset.json;
        default: the label named "node", else the only foreground label, else any positive voxel.

    Returns
    -------
    (batch, nodes) : two pandas DataFrames.
        ``batch``: one row per case, columns ``ID, Image, Mask`` (pyradiomics batch convention; Mask is the
        node map, labels 1..K one per node), ``Prediction`` (the nnU-Net file) and ``n_nodes`` (0 for an
        empty prediction: a valid result). ``nodes``: one row per node, ``ID`` plus :func:`split_nodes`'
        columns. Both are also written as CSV to ``out_dir``.

    Raises ValueError for a prediction without its CT (naming the file expected) and for a prediction
    whose grid differs from its CT's (naming both geometries).
    """
    import pandas as pd

    if isinstance(predictions, pd.DataFrame) or (Path(str(predictions)).suffix.lower() == ".csv"):
        df, src = _read_table(predictions, "cohort CSV")
        pairs = [(_check_case_id(r.ID, src), Path(r.Image), Path(r.Mask)) for r in df.itertuples()]
        base = None if isinstance(predictions, pd.DataFrame) else Path(predictions).parent
        names = {}
        default_out = base
    else:
        pred_dir = Path(predictions)
        if not pred_dir.is_dir():
            raise FileNotFoundError(f"prediction folder {str(pred_dir)!r} does not exist")
        if ct is None:
            raise ValueError(f"prediction folder {str(pred_dir)!r}: the CT folder (with <case>_0000.nii.gz) is needed")
        ct_dir = Path(ct)
        if not ct_dir.is_dir():
            raise FileNotFoundError(f"CT folder {str(ct_dir)!r} does not exist")
        preds = _image_files(pred_dir)
        if not preds:
            raise ValueError(f"prediction folder {str(pred_dir)!r} holds no image files "
                             f"(expected <case>.nii.gz)")
        pairs = []
        for case, p in preds.items():
            c = _find_ct(ct_dir, case)
            if c is None:
                raise ValueError(f"prediction {str(p)!r} has no matching CT: expected "
                                 f"{str(ct_dir / (case + '_0000.nii.gz'))!r}")
            pairs.append((case, c, p))
        names = _label_names(pred_dir)
        default_out = pred_dir
    if out_dir is None:
        if default_out is None:
            raise ValueError("import_predictions: out_dir is needed for a DataFrame input")
        out_dir = default_out
    return _build_batch(pairs, Path(out_dir), names, label=label, mode=mode, connectivity=connectivity,
                        min_volume_mm3=min_volume_mm3, geometry_tolerance=geometry_tolerance)


def _build_batch(pairs, out_dir: Path, names: dict, *, label, mode, connectivity, min_volume_mm3,
                 geometry_tolerance):
    import pandas as pd
    import SimpleITK as sitk

    lab = _resolve_label(label, names, "predictions")
    node_dir = out_dir / "nodes"
    rows, tables = [], []
    for case, ct_path, pred_path in pairs:
        g_ct = _header(ct_path)
        pred = read_volume(pred_path, name=f"prediction {str(pred_path)!r}")
        check_same_geometry(pred.geometry(), f"prediction {str(pred_path)!r}", g_ct, f"CT {str(ct_path)!r}",
                            geometry_tolerance)
        node_map, table = split_nodes(pred.array, g_ct["spacing"], label=lab, connectivity=connectivity,
                                      min_volume_mm3=min_volume_mm3, mode=mode, origin=g_ct["origin"],
                                      direction=g_ct["direction"], name=f"prediction {str(pred_path)!r}")
        img = sitk.GetImageFromArray(node_map)
        img.SetSpacing(g_ct["spacing"])
        img.SetOrigin(g_ct["origin"])
        img.SetDirection(g_ct["direction"])  # the CT's own geometry, exactly
        node_path = write_volume(img, node_dir / f"{case}_nodes.nii.gz")
        rows.append({"ID": case, "Image": str(Path(ct_path).resolve()), "Mask": str(node_path.resolve()),
                     "Prediction": str(Path(pred_path).resolve()),
                     "n_nodes": len(table)})
        table.insert(0, "ID", case)
        tables.append(table)
    batch = pd.DataFrame(rows, columns=["ID", "Image", "Mask", "Prediction", "n_nodes"])
    nodes = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=["ID"] + NODE_TABLE_COLUMNS)
    out_dir.mkdir(parents=True, exist_ok=True)
    batch.to_csv(out_dir / "batch.csv", index=False)
    nodes.to_csv(out_dir / "nodes.csv", index=False)
    return batch, nodes
