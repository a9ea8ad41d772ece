"""Segmentation front end: nnU-Net v2 predictions in, one region per node, nnU-Net training sets out, Dice QC.

nnU-Net is used through its own Python API (package ``nnunetv2``), never re-implemented; torch and
nnunetv2 are an optional extra (``pip install "rlnfast[seg]"``, or ``pip install torch==2.13.0 nnunetv2``)
needed only by :func:`segment` and :func:`train_tiny_model`. Everything else needs NumPy, SciPy, pandas
and SimpleITK only.

The pieces:

:func:`split_nodes`
    a label map -> a node map with labels 1..K (one per node: a label value, or each connected component
    of a chosen label) and a table of the nodes (voxels, volume, centroid in index and physical space).
:func:`import_predictions`
    a folder of nnU-Net predictions (``<case>.nii.gz``) paired with the CT folder
    (``<case>_0000.nii.gz``), or a cohort CSV -> node maps on disk and the batch table
    (``ID, Image, Mask``, pyradiomics' batch convention) that ``rlnfast extract`` runs.
:func:`segment`
    run a trained nnU-Net model folder on CT files (``nnUNetPredictor``), then :func:`import_predictions`.
:func:`nnunet_dataset`
    CT + node masks -> an nnU-Net raw dataset (``DatasetXXX_Name/imagesTr``, ``labelsTr``,
    ``dataset.json``) that ``nnUNetv2_plan_and_preprocess`` and ``nnUNetv2_train`` take unchanged.
:func:`seg_eval`
    per case Dice, HD95 (mm), volume difference and per-node detection; cohort mean +- SD.
:func:`train_tiny_model`
    plan, preprocess and train a deliberately tiny nnU-Net on the CPU in about a minute (tests, demo).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .io import IMAGE_SUFFIXES, Volume, _fmt, geometry_mismatches, read_volume, write_volume

INSTALL_HINT = 'pip install "rlnfast[seg]"  (or: pip install torch==2.13.0 nnunetv2)'
NODE_TABLE_COLUMNS = ["node", "component", "source_label", "voxels", "volume_mm3",
                      "centroid_index_x", "centroid_index_y", "centroid_index_z",
                      "centroid_x_mm", "centroid_y_mm", "centroid_z_mm"]
_IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


# ----------------------------------------------------------------------------------------------------------
# nodes
# ----------------------------------------------------------------------------------------------------------

def _structure(connectivity: int):
    from scipy import ndimage

    if connectivity not in (6, 26):
        raise ValueError(f"connectivity={connectivity!r}: expected 6 (faces) or 26 (faces, edges and corners)")
    return ndimage.generate_binary_structure(3, 1 if connectivity == 6 else 3)


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
    from scipy import ndimage

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
    if label is _DEFAULT_LABEL:
        label = 1 if mode == "components" else None

    if mode == "components":
        structure = _structure(connectivity)
        fg = (lm > 0) if label is None else (lm == int(label))
        comp, n = ndimage.label(fg, structure=structure, output=np.int32)
        comp_ids = np.arange(1, n + 1)
        source = np.zeros(n + 1, dtype=np.int64)
        if n:
            flat = comp.ravel()
            source[flat] = lm.ravel()  # one label per component when `label` is given
            if label is not None:
                source[1:] = int(label)
        source = source[1:]
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
        comp_ids = values
        source = values
    else:
        raise ValueError(f"mode={mode!r}: expected 'components' or 'labels'")

    counts = np.bincount(comp.ravel(), minlength=n + 1)[1:].astype(np.int64) if n else np.zeros(0, np.int64)
    keep = counts * voxel_volume >= float(min_volume_mm3) if min_volume_mm3 else counts > 0
    if n and not np.all(keep):
        lut = np.zeros(n + 1, dtype=np.int32)
        lut[1:][keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
        comp = lut[comp]
    node_map = np.ascontiguousarray(comp, dtype=np.int32)
    comp_ids, source, counts = np.asarray(comp_ids)[keep], np.asarray(source)[keep], counts[keep]
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


# ----------------------------------------------------------------------------------------------------------
# geometry of files (headers only)
# ----------------------------------------------------------------------------------------------------------

def _header(path) -> dict:
    import SimpleITK as sitk

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file {str(path)!r} does not exist")
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise ValueError(f"file {str(path)!r} could not be read: {str(exc).strip().splitlines()[-1]}") from exc
    size = tuple(int(s) for s in reader.GetSize())
    if len(size) != 3:
        raise ValueError(f"file {str(path)!r}: expected a 3-D image, got size {size}")
    return {"size": size, "spacing": tuple(reader.GetSpacing()), "origin": tuple(reader.GetOrigin()),
            "direction": tuple(reader.GetDirection())}


def _fmt_geometry(g: dict) -> str:
    return (f"size {tuple(g['size'])}, spacing {_fmt(g['spacing'])}, origin {_fmt(g['origin'])}, "
            f"direction {_fmt(g['direction'])}")


def check_same_geometry(geo_a: dict, name_a: str, geo_b: dict, name_b: str, tolerance: float | None = None) -> None:
    """Raise ValueError naming both geometries when two images do not lie on the same grid
    (the comparison and its tolerance: :func:`rlnfast.io.geometry_mismatches`)."""
    tol = 1e-6 if tolerance is None else float(tolerance)
    bad = geometry_mismatches(geo_a, geo_b, tol)
    if bad:
        raise ValueError(f"{name_a} and {name_b} lie on different grids ({', '.join(bad)} differ, tolerance "
                         f"{tol:g}): {name_a} has {_fmt_geometry(geo_a)}; {name_b} has {_fmt_geometry(geo_b)}")


# ----------------------------------------------------------------------------------------------------------
# file naming
# ----------------------------------------------------------------------------------------------------------

def _strip_suffix(name: str) -> tuple[str, str] | None:
    for suf in sorted(IMAGE_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suf):
            return name[: -len(suf)], name[-len(suf):]
    return None


def _image_files(folder: Path) -> dict[str, Path]:
    """case id -> file for every image file directly in ``folder``."""
    out = {}
    for p in sorted(folder.iterdir()):
        if not p.is_file() or p.name.startswith("."):
            continue
        s = _strip_suffix(p.name)
        if s is None:
            continue
        case = s[0]
        if case in out:
            raise ValueError(f"folder {str(folder)!r}: case {case!r} has two files ({out[case].name!r} and {p.name!r})")
        out[case] = p
    return out


def _find_ct(ct_folder: Path, case: str) -> Path | None:
    for suf in IMAGE_SUFFIXES:
        p = ct_folder / f"{case}_0000{suf}"
        if p.is_file():
            return p
    return None


def _read_table(path_or_df, what: str, required=("ID", "Image", "Mask")):
    import pandas as pd

    if isinstance(path_or_df, pd.DataFrame):
        df, base = path_or_df.copy(), Path.cwd()
        src = "batch table"
    else:
        path = Path(path_or_df)
        if not path.is_file():
            raise FileNotFoundError(f"{what} {str(path)!r} does not exist")
        df = pd.read_csv(path)
        base, src = path.parent, f"{what} {str(path)!r}"
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"{src}: missing column(s) {missing}; expected columns {list(required)} "
                         f"(pyradiomics batch convention), found {list(df.columns)}")
    if len(df) == 0:
        raise ValueError(f"{src} has no rows")
    ids = df["ID"].astype(str)
    dup = ids[ids.duplicated()].unique().tolist()
    if dup:
        raise ValueError(f"{src}: duplicate ID(s) {dup[:10]}; each case needs a unique ID")
    df["ID"] = ids

    def resolve(p):
        p = Path(str(p))
        return p if p.is_absolute() else (base / p)

    for c in required:
        if c != "ID":
            df[c] = [str(resolve(p)) for p in df[c]]
    return df, src


_CASE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _check_case_id(case: str, src: str) -> str:
    if not _CASE_RE.match(case):
        raise ValueError(f"{src}: case ID {case!r} must be letters, digits, '.', '_' or '-' (it names files)")
    return case


# ----------------------------------------------------------------------------------------------------------
# import predictions
# ----------------------------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------------------------
# inference
# ----------------------------------------------------------------------------------------------------------

def _require_nnunet():
    try:
        import torch  # noqa: F401
        import nnunetv2  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"nnU-Net inference and training need torch and nnunetv2, which are not installed "
                          f"({exc}); install them with: {INSTALL_HINT}") from exc


def check_model_folder(model_folder, folds=(0,), checkpoint: str = "checkpoint_final.pth") -> Path:
    """Check an nnU-Net trained model folder (``.../nnUNetTrainer__nnUNetPlans__3d_fullres``): it must hold
    ``dataset.json``, ``plans.json`` and ``fold_<f>/<checkpoint>`` for every fold. Raises
    FileNotFoundError naming what is missing and what is there."""
    mf = Path(model_folder)
    if not mf.is_dir():
        raise FileNotFoundError(f"model folder {str(mf)!r} does not exist")
    for f in ("dataset.json", "plans.json"):
        if not (mf / f).is_file():
            raise FileNotFoundError(f"model folder {str(mf)!r} has no {f}: expected an nnU-Net trained model "
                                    "folder such as nnUNet_results/DatasetXXX_Name/nnUNetTrainer__nnUNetPlans__3d_fullres")
    for fold in folds:
        ck = mf / f"fold_{fold}" / checkpoint
        if not ck.is_file():
            found = sorted(str(p.relative_to(mf)) for p in mf.glob("fold_*/*.pth"))
            raise FileNotFoundError(f"model folder {str(mf)!r} has no checkpoint {str(ck.relative_to(mf))!r} "
                                    f"(checkpoints found: {', '.join(found) or 'none'})")
    return mf


def _segment_inputs(inputs) -> list[tuple[str, Path]]:
    """(case, CT file) pairs from a CT folder (``<case>_0000.nii.gz``), a CSV (ID, Image) or a list of files."""
    import pandas as pd

    if isinstance(inputs, (list, tuple)):
        out = []
        for p in inputs:
            p = Path(p)
            if not p.is_file():
                raise FileNotFoundError(f"CT file {str(p)!r} does not exist")
            s = _strip_suffix(p.name)
            if s is None:
                raise ValueError(f"CT file {str(p)!r}: expected an image file ({', '.join(IMAGE_SUFFIXES)})")
            case = s[0][:-5] if s[0].endswith("_0000") else s[0]
            out.append((_check_case_id(case, f"CT file {str(p)!r}"), p))
        return out
    if isinstance(inputs, pd.DataFrame) or Path(str(inputs)).suffix.lower() == ".csv":
        df, src = _read_table(inputs, "input CSV", required=("ID", "Image"))
        out = []
        for r in df.itertuples():
            p = Path(r.Image)
            if not p.is_file():
                raise FileNotFoundError(f"{src}: CT file {str(p)!r} of case {r.ID!r} does not exist")
            out.append((_check_case_id(r.ID, src), p))
        return out
    folder = Path(inputs)
    if not folder.is_dir():
        raise FileNotFoundError(f"CT input {str(folder)!r} does not exist (expected a folder of "
                                "<case>_0000.nii.gz or a CSV with columns ID, Image)")
    out = []
    for case, p in _image_files(folder).items():
        if case.endswith("_0000"):
            out.append((case[:-5], p))
    if not out:
        raise ValueError(f"CT folder {str(folder)!r} holds no <case>_0000.nii.gz files (nnU-Net's naming of "
                         "channel 0)")
    return out


def segment(model_folder, inputs, out_dir, folds=(0,), device: str = "cpu",
            checkpoint: str = "checkpoint_final.pth", *, use_mirroring: bool = True, step_size: float = 0.5,
            num_processes: int | None = None, label=None, mode: str = "components", connectivity: int = 26,
            min_volume_mm3: float = 0.0, verbose: bool = False):
    """Run a trained nnU-Net v2 model on CT files, then split the predictions into nodes.

    Wraps ``nnunetv2.inference.predict_from_raw_data.nnUNetPredictor``:
    ``initialize_from_trained_model_folder(model_folder, folds, checkpoint)`` then ``predict_from_files``
    with explicit file lists (a folder would make nnU-Net start a pool of its default 8-12 processes), or
    ``predict_from_files_sequential`` when ``num_processes=0`` (no worker processes at all).

    Parameters
    ----------
    model_folder
        nnU-Net trained model folder (``dataset.json``, ``plans.json``, ``fold_<f>/<checkpoint>``). The
        checkpoint is a pickle (torch ``weights_only=False``): load only models you trust.
    inputs
        A folder of ``<case>_0000.nii.gz`` CT files, a CSV (or DataFrame) with columns ``ID, Image``, or a
        list of CT files. The model must take one input channel (CT).
    out_dir
        Predictions are written as ``<out_dir>/<case>.nii.gz`` on the CT's exact grid (size, spacing,
        origin, direction copied from the CT), plus nnU-Net's dataset.json/plans.json, then the node maps,
        ``batch.csv`` and ``nodes.csv`` of :func:`import_predictions`.
    device
        'cpu' or 'cuda' (needs a CUDA build of torch and a GPU).
    use_mirroring
        nnU-Net's test-time mirroring (its default; off is up to 8 times faster). A model trained without
        mirroring (:func:`train_tiny_model`) is never mirrored.
    num_processes
        0: ``predict_from_files_sequential``, everything in this process (on 2 CPU cores about 7 times
        faster than starting workers for a few cases). n >= 1: ``predict_from_files`` with n spawned
        preprocessing and export workers (a script calling this then needs an ``if __name__ ==
        "__main__":`` guard, as for any spawned multiprocessing). None: 0 on 'cpu', 3 on 'cuda'.

    Returns ``(batch, nodes)`` as :func:`import_predictions`.
    """
    folds = tuple(folds) if folds is not None else (0,)
    folds = tuple(f if str(f) == "all" else int(f) for f in folds)
    mf = check_model_folder(model_folder, folds, checkpoint)
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device={device!r}: expected 'cpu' or 'cuda'")
    ds = json.loads((mf / "dataset.json").read_text())
    channels = ds.get("channel_names", ds.get("modality", {}))
    if len(channels) != 1:
        raise ValueError(f"model folder {str(mf)!r} expects {len(channels)} input channels ({channels}); "
                         "rlnfast segment feeds one CT channel")
    cases = _segment_inputs(inputs)
    _require_nnunet()
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device='cuda' but torch {torch.__version__} sees no CUDA device; use device='cpu'")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ending = ds.get("file_ending", ".nii.gz")
    predictor = nnUNetPredictor(tile_step_size=step_size, use_gaussian=True, use_mirroring=use_mirroring,
                                perform_everything_on_device=(device == "cuda"), device=torch.device(device),
                                verbose=verbose, verbose_preprocessing=verbose, allow_tqdm=verbose)
    predictor.initialize_from_trained_model_folder(str(mf), use_folds=folds, checkpoint_name=checkpoint)
    files = [[str(p)] for _, p in cases]
    targets = [str(out / case) for case, _ in cases]
    if num_processes is None:
        num_processes = 3 if device == "cuda" else 0
    if num_processes > 0:
        predictor.predict_from_files(files, targets, save_probabilities=False, overwrite=True,
                                     num_processes_preprocessing=int(num_processes),
                                     num_processes_segmentation_export=int(num_processes))
    else:
        predictor.predict_from_files_sequential(files, targets, save_probabilities=False, overwrite=True)
    pairs = []
    for case, ct_path in cases:
        pred_path = out / f"{case}{ending}"
        if not pred_path.is_file():
            raise RuntimeError(f"nnU-Net wrote no prediction {str(pred_path)!r} for CT {str(ct_path)!r}")
        _copy_geometry(pred_path, ct_path, tolerance=1e-4)
        pairs.append((case, ct_path, pred_path))
    return _build_batch(pairs, out, _label_names(mf), label=label, mode=mode, connectivity=connectivity,
                        min_volume_mm3=min_volume_mm3, geometry_tolerance=None)


def _copy_geometry(pred_path: Path, ct_path: Path, tolerance: float) -> None:
    """Give a prediction its CT's exact geometry (nnU-Net round-trips it through float32 properties)."""
    import SimpleITK as sitk

    g_ct, g_pred = _header(ct_path), _header(pred_path)
    if g_ct == g_pred:
        return
    check_same_geometry(g_pred, f"prediction {str(pred_path)!r}", g_ct, f"CT {str(ct_path)!r}", tolerance)
    img = sitk.ReadImage(str(pred_path))
    img.SetSpacing(g_ct["spacing"])
    img.SetOrigin(g_ct["origin"])
    img.SetDirection(g_ct["direction"])
    write_volume(img, pred_path)


def extract_nodes(batch, params=None, backend: str = "auto", *, nodes=None, out_dir=None):
    """Features of every node of every case of a batch: ``(features, skipped)``.

    ``batch`` is the table of :func:`import_predictions` / :func:`segment` (or its CSV): each row's Mask is
    a node map with labels 1..K, one per node, so feature extraction gives one row per node (``label`` =
    node id). With ``out_dir`` the cases run through the resumable cohort runner ``rlnfast.cohort.run``
    (per-case results and ``errors.csv`` under ``out_dir``); without it, ``rlnfast.extract.extract`` runs
    case by case in memory. Returns one DataFrame with columns ``ID, Image, Mask`` then the feature
    columns, joined with the node table's volume and centroid columns when ``nodes`` is given, and
    ``skipped``: {case: reason} for cases without features (zero nodes: an empty prediction; or the
    cohort runner's error for that case).
    """
    import importlib.util

    import pandas as pd

    if not isinstance(batch, pd.DataFrame):
        batch, _ = _read_table(batch, "batch CSV")
    batch = batch.assign(ID=batch["ID"].astype(str))
    skipped: dict[str, str] = {}
    todo = []
    for r in batch.itertuples():
        n = getattr(r, "n_nodes", None)
        if n is None or _isnan(n):
            n = int(np.count_nonzero(read_volume(r.Mask).array))
        if int(n) == 0:
            skipped[r.ID] = "zero nodes (empty prediction)"
        else:
            todo.append(r.Index)
    run_batch = batch.loc[todo, ["ID", "Image", "Mask"]]
    if not len(run_batch):
        feats = pd.DataFrame(columns=["ID", "Image", "Mask", "label"])
    elif out_dir is not None and importlib.util.find_spec("rlnfast.cohort") is not None:
        from . import cohort

        res = cohort.run(run_batch.reset_index(drop=True), params, out_dir=out_dir, backend=backend, progress=False)
        for e in res.errors.itertuples():
            skipped[str(e.ID)] = str(e.error)
        feats = _numeric_features(res.table).merge(run_batch, on="ID", how="left")
        feats = feats[["ID", "Image", "Mask"] + [c for c in feats.columns if c not in ("ID", "Image", "Mask")]]
    else:
        from .extract import extract

        frames = []
        for r in run_batch.itertuples():
            f = extract(r.Image, r.Mask, params, backend)
            f.insert(0, "Mask", r.Mask)
            f.insert(0, "Image", r.Image)
            f.insert(0, "ID", r.ID)
            frames.append(f)
        feats = pd.concat(frames, ignore_index=True)
    if nodes is not None and len(feats):
        cols = ["ID", "node", "volume_mm3", "centroid_x_mm", "centroid_y_mm", "centroid_z_mm"]
        nt = nodes[cols].rename(columns={"node": "label"}).assign(ID=nodes["ID"].astype(str))
        feats = feats.assign(label=feats["label"].astype(np.int64)).merge(nt, on=["ID", "label"], how="left")
    return feats, skipped


def _numeric_features(table):
    """Feature columns back to numbers: a per-case CSV round trip can leave a NaN feature as '' (object)."""
    import pandas as pd

    table = table.copy()
    for c in table.columns:
        if c in ("ID", "Image", "Mask") or c.startswith("diagnostics_") or table[c].dtype != object:
            continue
        vals = table[c].replace("", np.nan)
        try:
            table[c] = pd.to_numeric(vals)
        except (ValueError, TypeError):
            pass
    return table


# ----------------------------------------------------------------------------------------------------------
# training set
# ----------------------------------------------------------------------------------------------------------

def nnunet_dataset(batch, dataset_id: int = 501, name: str = "RLNNodes", out_raw_dir=".", label_names=None, *,
                   overwrite: bool = False, geometry_tolerance=None) -> Path:
    """Write an nnU-Net v2 raw dataset from CT + node masks; returns the ``DatasetXXX_Name`` folder.

    Parameters
    ----------
    batch
        CSV path or DataFrame with columns ``ID, Image, Mask`` (pyradiomics batch convention; relative paths
        are resolved against the CSV's folder) and optionally ``Label`` (only that mask value is the node
        label of that case).
    dataset_id, name
        The folder is ``<out_raw_dir>/Dataset{dataset_id:03d}_{name}`` (id 1..999, name letters/digits/_-).
    label_names
        None: binary training data, every positive mask voxel becomes label 1 ``node`` (node maps with
        labels 1..K, one per node, are merged). Or a dict ``{"background": 0, "node": 1, ...}`` (consecutive
        values from 0): masks are written as they are and must hold only those values.

    Writes ``imagesTr/<ID>_0000.nii.gz`` (the CT, voxel values and geometry unchanged), ``labelsTr/<ID>.nii.gz``
    (uint8, on the CT's exact grid after checking that the mask's grid matches within the tolerance) and
    ``dataset.json`` (``channel_names {"0": "CT"}``, ``labels``, ``numTraining``, ``file_ending ".nii.gz"``),
    which ``nnUNetv2_plan_and_preprocess -d ID`` and ``nnUNetv2_train`` read unchanged.
    """
    import SimpleITK as sitk

    df, src = _read_table(batch, "batch CSV")
    did = int(dataset_id)
    if not 1 <= did <= 999:
        raise ValueError(f"dataset id {dataset_id!r}: expected 1..999 (nnU-Net's three-digit DatasetXXX)")
    if not re.match(r"^[A-Za-z0-9_-]+$", str(name)):
        raise ValueError(f"dataset name {name!r}: expected letters, digits, '_' or '-'")
    if label_names is None:
        labels = {"background": 0, "node": 1}
        binary = True
    else:
        labels = {str(k): int(v) for k, v in dict(label_names).items()}
        vals = sorted(labels.values())
        if vals != list(range(len(vals))) or len(vals) < 2:
            raise ValueError(f"label_names {labels}: expected consecutive values 0..N with background 0")
        binary = False
    allowed = np.asarray(sorted(labels.values()))
    root = Path(out_raw_dir) / f"Dataset{did:03d}_{name}"
    if root.exists() and any(root.iterdir()) and not overwrite:
        raise ValueError(f"nnU-Net dataset folder {str(root)!r} exists and is not empty "
                         "(overwrite=True, or --overwrite, writes into it)")
    # check every case (files exist, grids agree; headers only) before writing anything
    for r in df.itertuples():
        case = _check_case_id(str(r.ID), src)
        g_img = _header(_must_exist(r.Image, f"{src}: image of case {case!r}"))
        g_msk = _header(_must_exist(r.Mask, f"{src}: mask of case {case!r}"))
        check_same_geometry(g_msk, f"mask {str(r.Mask)!r}", g_img, f"image {str(r.Image)!r}", geometry_tolerance)
        if not binary and not ("Label" in df.columns and not _isnan(getattr(r, "Label"))):
            arr = _as_label_array(read_volume(r.Mask).array, f"mask {str(r.Mask)!r}")
            bad = np.setdiff1d(np.unique(arr), allowed)
            if len(bad):
                raise ValueError(f"mask {str(r.Mask)!r} of case {case!r} holds label value(s) "
                                 f"{bad[:10].tolist()} not in label_names {labels}")
    (root / "imagesTr").mkdir(parents=True, exist_ok=True)
    (root / "labelsTr").mkdir(parents=True, exist_ok=True)
    for r in df.itertuples():
        case = str(r.ID)
        img = sitk.ReadImage(str(r.Image))
        msk = read_volume(r.Mask, name=f"mask {r.Mask!r}")
        arr = _as_label_array(msk.array, f"mask {str(r.Mask)!r}")
        if "Label" in df.columns and not _isnan(getattr(r, "Label")):
            arr = (arr == int(getattr(r, "Label"))).astype(np.uint8)
        elif binary:
            arr = (arr > 0).astype(np.uint8)
        else:
            arr = arr.astype(np.uint8 if allowed.max() < 256 else np.uint16)
        lab = sitk.GetImageFromArray(arr)
        lab.CopyInformation(img)
        write_volume(img, root / "imagesTr" / f"{case}_0000.nii.gz")
        write_volume(lab, root / "labelsTr" / f"{case}.nii.gz")
    ds = {"name": str(name), "description": "rlnfast nnunet-dataset: CT and lymph node masks",
          "channel_names": {"0": "CT"}, "labels": labels, "numTraining": int(len(df)), "file_ending": ".nii.gz"}
    (root / "dataset.json").write_text(json.dumps(ds, indent=2))
    return root


def _isnan(v) -> bool:
    try:
        return v is None or (isinstance(v, float) and np.isnan(v))
    except TypeError:
        return False


def _must_exist(p, what) -> Path:
    p = Path(str(p))
    if not p.is_file():
        raise FileNotFoundError(f"{what} {str(p)!r} does not exist")
    return p


# ----------------------------------------------------------------------------------------------------------
# quality control
# ----------------------------------------------------------------------------------------------------------

def _gpu_array_module(backend: str):
    """(xp, ndimage) for the metric arrays: CuPy when the rlnfast backend is a GPU one, NumPy/SciPy otherwise."""
    from . import _backends

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

    st = _structure(connectivity)
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


# ----------------------------------------------------------------------------------------------------------
# synthetic data and a tiny model (tests, `rlnfast demo --segment`)
# ----------------------------------------------------------------------------------------------------------

def synthetic_node_cases(out_dir, n_cases: int = 10, seed: int = 0, shape=(24, 48, 48), spacing=(0.8, 0.8, 2.0),
                         nodes_per_case=(2, 4)):
    """Write ``n_cases`` small synthetic CTs with bright node-like ellipsoids; returns the batch table.

    Each case: soft tissue ~40 HU with a smooth gradient and Gaussian noise (SD 20), fat (-100 HU) slab,
    and 2-4 non-overlapping ellipsoidal nodes (semi-axes 2.4-4.8 mm in-plane, 2-4 mm along z) of
    ~140 HU. Files ``<out_dir>/<ID>_ct.nii.gz`` (int16) and ``<ID>_mask.nii.gz`` (node map, labels 1..K
    one per node); the returned DataFrame has columns ``ID, Image, Mask, n_nodes``. Seeded: the same
    ``seed`` gives the same files.
    """
    import pandas as pd
    import SimpleITK as sitk

    rng = np.random.default_rng(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sx, sy, sz = (float(s) for s in spacing)
    zz, yy, xx = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    rows = []
    for c in range(n_cases):
        case = f"case{c:03d}"
        ct = 40.0 + 10.0 * (yy / shape[1]) + rng.normal(0.0, 20.0, shape)
        fat_y = int(rng.integers(shape[1] // 4, shape[1] // 2))
        ct[:, :fat_y // 3, :] = -100.0 + rng.normal(0.0, 20.0, ct[:, :fat_y // 3, :].shape)
        mask = np.zeros(shape, np.int16)
        k = int(rng.integers(nodes_per_case[0], nodes_per_case[1] + 1))
        placed = 0
        for _ in range(200):
            if placed == k:
                break
            r_xy = rng.uniform(2.4, 4.8)
            r_z = rng.uniform(2.0, 4.0)
            cz = rng.uniform(r_z / sz + 1, shape[0] - r_z / sz - 2)
            cy = rng.uniform(r_xy / sy + 1, shape[1] - r_xy / sy - 2)
            cx = rng.uniform(r_xy / sx + 1, shape[2] - r_xy / sx - 2)
            e = (((xx - cx) * sx / r_xy) ** 2 + ((yy - cy) * sy / r_xy) ** 2 + ((zz - cz) * sz / r_z) ** 2) <= 1.0
            grown = e | np.roll(e, 1, 0) | np.roll(e, -1, 0) | np.roll(e, 1, 1) | np.roll(e, -1, 1) \
                | np.roll(e, 1, 2) | np.roll(e, -1, 2)
            if np.any(mask[grown] > 0) or e.sum() < 8:
                continue
            placed += 1
            mask[e] = placed
            ct[e] = 140.0 + rng.normal(0.0, 20.0, int(e.sum()))
        img = sitk.GetImageFromArray(np.round(ct).astype(np.int16))
        img.SetSpacing((sx, sy, sz))
        img.SetOrigin((-20.0, 15.0, 100.0 + 5 * c))
        lab = sitk.GetImageFromArray(mask)
        lab.CopyInformation(img)
        ip, mp = out.resolve() / f"{case}_ct.nii.gz", out.resolve() / f"{case}_mask.nii.gz"
        write_volume(img, ip)
        write_volume(lab, mp)
        rows.append({"ID": case, "Image": str(ip), "Mask": str(mp), "n_nodes": placed})
    df = pd.DataFrame(rows)
    df.to_csv(out / "batch.csv", index=False)
    return df


TINY_PLAN = {"patch_size": [16, 32, 32], "batch_size": 2, "features_per_stage": [8, 16, 32]}


def train_tiny_model(raw_dataset_dir, work_dir, epochs: int = 5, *, iterations_per_epoch: int = 50,
                     val_iterations_per_epoch: int = 2, fold=0, seed: int = 0, patch_size=(16, 32, 32),
                     batch_size: int = 2, features_per_stage=(8, 16, 32), timeout: float | None = 900,
                     log=None) -> Path:
    """Plan, preprocess and train a tiny nnU-Net v2 (3d_fullres, base ``nnUNetTrainer``) on the CPU.

    For tests and demos only: about a minute on 2 CPU cores for a few small cases. Everything runs through
    nnunetv2's Python API in a child Python process whose environment points ``nnUNet_raw`` at the folder
    holding ``raw_dataset_dir`` (a ``DatasetXXX_Name`` folder from :func:`nnunet_dataset`) and
    ``nnUNet_preprocessed`` / ``nnUNet_results`` into ``work_dir``, with ``nnUNet_def_n_proc=1`` and
    ``nnUNet_compile=false`` set before nnunetv2 is imported (the caller's environment is untouched).

    The recipe: nnU-Net's own fingerprint and 3d_fullres plan, shrunk before preprocessing to
    ``patch_size``, ``batch_size``, ``len(features_per_stage)`` stages with those features and one
    convolution per stage (encoder and decoder); the trainer runs ``epochs`` epochs of
    ``iterations_per_epoch`` iterations (``val_iterations_per_epoch`` validation batches) with one torch
    thread, data augmentation in-process (``nnUNet_n_proc_DA=0``, set only after planning), seeds set and
    no mirroring (neither augmentation nor test-time). nnU-Net's final validation is skipped.

    Returns the trained model folder (``<work_dir>/results/DatasetXXX_Name/nnUNetTrainer__nnUNetPlans__3d_fullres``)
    for :func:`segment`. Raises RuntimeError with the end of the log (``<work_dir>/train_tiny.log``) if the
    child fails, ImportError if torch/nnunetv2 are missing.
    """
    _require_nnunet()
    raw = Path(raw_dataset_dir).resolve()
    m = re.match(r"^Dataset(\d{3})_(.+)$", raw.name)
    if not raw.is_dir() or m is None:
        raise ValueError(f"raw dataset {str(raw)!r}: expected an existing DatasetXXX_Name folder")
    if not (raw / "dataset.json").is_file():
        raise FileNotFoundError(f"raw dataset {str(raw)!r} has no dataset.json")
    work = Path(work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update({"nnUNet_raw": str(raw.parent), "nnUNet_preprocessed": str(work / "preprocessed"),
                "nnUNet_results": str(work / "results"), "nnUNet_def_n_proc": "1", "nnUNet_compile": "false",
                "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": str(seed)})
    env.pop("nnUNet_n_proc_DA", None)
    pkg_parent = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = pkg_parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cfg = {"dataset_id": int(m.group(1)), "epochs": int(epochs), "iterations": int(iterations_per_epoch),
           "val_iterations": int(val_iterations_per_epoch), "fold": fold, "seed": int(seed),
           "patch_size": [int(v) for v in patch_size], "batch_size": int(batch_size),
           "features": [int(v) for v in features_per_stage]}
    log_path = work / "train_tiny.log"
    with open(log_path, "w") as fh:
        try:
            proc = subprocess.run([sys.executable, "-c", "import sys; from rlnfast.segmentation import "
                                   "_train_tiny_child; _train_tiny_child(sys.argv[1])", json.dumps(cfg)],
                                  env=env, stdout=fh, stderr=subprocess.STDOUT, timeout=timeout, cwd=str(work))
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"tiny nnU-Net training timed out after {timeout} s (log: {log_path})") from exc
    text = log_path.read_text(errors="replace")
    if log is not None:
        log.write(text)
    if proc.returncode != 0:
        raise RuntimeError(f"tiny nnU-Net training failed (exit {proc.returncode}); end of {log_path}:\n"
                           + "\n".join(text.splitlines()[-30:]))
    model = work / "results" / raw.name / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    check_model_folder(model, (fold,))
    return model


def _shrink_plans(plans: dict, cfg: dict) -> dict:
    """nnU-Net's generated plan -> the tiny 3d_fullres-only plan of :func:`train_tiny_model`."""
    conf = plans["configurations"]["3d_fullres"]
    for k in list(plans["configurations"]):
        if k != "3d_fullres":
            del plans["configurations"][k]
    n = len(cfg["features"])
    conf["patch_size"] = list(cfg["patch_size"])
    conf["batch_size"] = int(cfg["batch_size"])
    arch = conf["architecture"]["arch_kwargs"]
    arch["n_stages"] = n
    arch["features_per_stage"] = list(cfg["features"])
    arch["kernel_sizes"] = [[3, 3, 3]] * n
    strides = [[1, 1, 1]]
    for i in range(1, n):
        # halve every axis still at least 8 voxels long at this depth
        prev = [int(p // np.prod([s[a] for s in strides])) for a, p in enumerate(cfg["patch_size"])]
        strides.append([2 if v >= 8 else 1 for v in prev])
    arch["strides"] = strides
    arch["n_conv_per_stage"] = [1] * n
    arch["n_conv_per_stage_decoder"] = [1] * (n - 1)
    return plans


def _train_tiny_child(cfg_json: str) -> None:  # pragma: no cover - runs in the child process
    cfg = json.loads(cfg_json)
    import random

    import torch

    torch.set_num_threads(1)
    random.seed(cfg["seed"])
    np.random.seed(cfg["seed"])
    torch.manual_seed(cfg["seed"])
    from nnunetv2.experiment_planning.plan_and_preprocess_api import (
        extract_fingerprint_dataset, plan_experiment_dataset, preprocess_dataset)
    from nnunetv2.utilities.dataset_name_id_conversion import convert_id_to_dataset_name

    did = cfg["dataset_id"]
    name = convert_id_to_dataset_name(did)
    extract_fingerprint_dataset(did, num_processes=1, check_dataset_integrity=True, clean=True, verbose=False,
                                show_progress_bar=False)
    _, plans_id = plan_experiment_dataset(did)
    plans_file = Path(os.environ["nnUNet_preprocessed"]) / name / f"{plans_id}.json"
    plans = _shrink_plans(json.loads(plans_file.read_text()), cfg)
    plans_file.write_text(json.dumps(plans, indent=2))
    preprocess_dataset(did, plans_id, configurations=("3d_fullres",), num_processes=(1,), verbose=False,
                       show_progress_bar=False)

    os.environ["nnUNet_n_proc_DA"] = "0"  # in-process augmentation; set only now (it breaks planning)
    from nnunetv2.run.run_training import get_trainer_from_args

    trainer = get_trainer_from_args(str(did), "3d_fullres", cfg["fold"], "nnUNetTrainer", plans_id,
                                    device=torch.device("cpu"))
    trainer.num_epochs = cfg["epochs"]
    trainer.num_iterations_per_epoch = cfg["iterations"]
    trainer.num_val_iterations_per_epoch = cfg["val_iterations"]
    base = trainer.configure_rotation_dummyDA_mirroring_and_inital_patch_size

    def no_mirroring():
        rot, dummy2d, init_patch, _ = base()
        trainer.inference_allowed_mirroring_axes = None
        return rot, dummy2d, init_patch, None

    trainer.configure_rotation_dummyDA_mirroring_and_inital_patch_size = no_mirroring
    torch.manual_seed(cfg["seed"])
    trainer.run_training()
    print("RLNFAST_TINY_MODEL_DONE", trainer.output_folder_base, flush=True)
