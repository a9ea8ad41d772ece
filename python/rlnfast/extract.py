"""``rlnfast.extract``: one feature table row per region, pyradiomics column names, all regions at once."""
from __future__ import annotations

import json
from typing import Callable

import numpy as np
import pandas as pd

from . import __version__, _backends
from .imagetypes import REGISTRY as IMAGE_TYPE_REGISTRY
from .imagetypes import ImageTypeContext, ImageTypeData, prefix
from .io import Volume, check_geometry, read_volume
from .ops import firstorder as fo_op
from .params import Params, load_params
from .regions import RaggedBatch, Regions, find_regions, pack


def _firstorder_packed(itype: str, datas: list[ImageTypeData], ctxs: list[ImageTypeContext], features) -> list[dict]:
    """First-order features of the regions of several cases in one kernel call per value dtype.

    TotalEnergy is V_voxel * Energy with each case's own voxel volume (the same multiplication the kernel
    does), so packing changes no value.
    """
    s = ctxs[0].settings
    names = features or fo_op.DEFAULT_FEATURES
    p = prefix(itype)
    out: list[dict] = [{} for _ in datas]
    groups: dict[str, list[int]] = {}
    for i, d in enumerate(datas):
        groups.setdefault(str(np.dtype(d.value_dtype or np.float64)), []).append(i)
    e_col, te_col = fo_op.FEATURES.index("Energy"), fo_op.FEATURES.index("TotalEnergy")
    for members in groups.values():
        if len(members) == 1:  # nothing to pack: no copy
            d = datas[members[0]]
            batch = RaggedBatch(d.values, d.offsets, np.zeros(len(d.offsets) - 1, np.int64), np.zeros(0, np.int64))
        else:
            batch = pack([(datas[i].values, datas[i].offsets, np.zeros(len(datas[i].offsets) - 1)) for i in members])
        feats = fo_op.firstorder(
            batch.values, batch.offsets, bin_width=s.get("binWidth", 25.0), bin_count=s.get("binCount"),
            voxel_array_shift=s.get("voxelArrayShift", 0) or 0, voxel_volume=1.0,
            value_dtype=datas[members[0]].value_dtype, backend=ctxs[0].backend)
        for j, i in enumerate(members):
            rows = feats[batch.case == j]
            rows[:, te_col] = ctxs[i].volume.voxel_volume * rows[:, e_col]
            out[i] = {f"{p}firstorder_{f}": rows[:, fo_op.FEATURES.index(f)] for f in names}
    return out


# Feature classes computed per image type: fn(image_type, data, ctx, features) -> (columns, diagnostics).
# firstorder is computed by _firstorder_packed (several cases per call) and listed here for completeness.
PER_IMAGE_TYPE_CLASSES: dict[str, Callable] = {"firstorder": None}
# Feature classes computed once per region whatever the image types, and those with both parts:
# fn(regions, volume, settings, features, backend) -> (columns, diagnostics).
PER_REGION_CLASSES: dict[str, Callable] = {}


def load_inputs(image, labels, *, spacing=None, geometry_tolerance=None) -> tuple[Volume, Volume]:
    """Read image and label map (paths, SimpleITK images or arrays) and check that their geometry agrees."""
    img = read_volume(image, spacing=spacing, name="image")
    lab = read_volume(labels, spacing=spacing, name="label map")
    if not _is_file_or_sitk(labels):
        # a bare array label map lies on the image's grid
        lab = Volume(lab.array, img.spacing, img.origin, img.direction, lab.name)
    check_geometry(img, lab, geometry_tolerance)
    return img, lab


def _is_file_or_sitk(x) -> bool:
    import os

    return isinstance(x, (str, os.PathLike, Volume)) or type(x).__module__.startswith("SimpleITK")


def extract(image, labels, params=None, backend: str = "auto", *, spacing=None, **settings) -> pd.DataFrame:
    """Features of every region of ``labels`` on ``image``: a DataFrame with one row per region.

    Parameters
    ----------
    image, labels
        File paths (NIfTI, NRRD, DICOM folder), SimpleITK images, or NumPy arrays (z, y, x) with
        ``spacing`` (x, y, z) in mm. The label map must be an integer image on the image's grid; every
        positive label is a region (or only setting ``label``; or each connected component with
        ``connectedComponents: true``).
    params
        pyradiomics parameter file (YAML/JSON), dict or :class:`rlnfast.params.Params`; keyword
        ``settings`` override its ``setting:`` section (binWidth, binCount, voxelArrayShift, label,
        geometryTolerance, nonFinite, connectedComponents, ...).
    backend
        'auto' (cuda > cupy > cpu), 'cuda', 'cupy', 'cpu' or 'numpy' (the reference).

    Returns
    -------
    DataFrame with columns ``label``, ``diagnostics_*`` and ``<prefix><class>_<Feature>`` (e.g.
    ``original_firstorder_Entropy``, ``E_original_firstorder_Entropy``). Feature definitions:
    rlnfast.ops.firstorder.FEATURE_DOCS and docs in features.md.
    """
    p = params if isinstance(params, Params) and not settings else load_params(params, **settings)
    name = _backends.resolve(backend)
    img, lab = load_inputs(image, labels, spacing=spacing, geometry_tolerance=p.settings.get("geometryTolerance"))
    regions = find_regions(lab.array, p.settings.get("label"),
                           connected_components=bool(p.settings.get("connectedComponents")),
                           connectivity=int(p.settings.get("connectivity", 26)),
                           min_voxels=int(p.settings.get("minimumComponentVoxels", 1)), name=lab.name)
    return extract_regions(img, regions, p, name)


def extract_regions(img: Volume, regions: Regions, p: Params, backend: str) -> pd.DataFrame:
    """The feature table of already-found regions of one image (see :func:`extract_many`)."""
    return extract_many([(img, regions)], p, backend)[0]


def extract_many(items, p: Params, backend: str) -> list[pd.DataFrame]:
    """Feature tables of several (image Volume, Regions) pairs: the first-order kernel runs once per image
    type for all their regions together (the cohort runner packs a chunk of cases this way)."""
    per_case_cols: list[dict] = [{} for _ in items]
    per_case_diag: list[dict] = [{} for _ in items]
    caches: list[dict] = [{} for _ in items]   # per case, shared by its image types (e.g. the gathered HU)
    for itype in p.image_types:
        if itype not in IMAGE_TYPE_REGISTRY:
            raise ValueError(f"imageType {itype!r} is not available in this build of rlnfast")
        ctxs = [ImageTypeContext(img, regions, p.settings_for(itype), backend, cache)
                for (img, regions), cache in zip(items, caches)]
        datas = [IMAGE_TYPE_REGISTRY[itype](ctx) for ctx in ctxs]
        for (img, regions), data, diag in zip(items, datas, per_case_diag):
            empty = np.diff(data.offsets) == 0
            if empty.any():
                # only possible after nonFinite: drop (find_regions refuses absent labels)
                reasons = diag.setdefault("diagnostics_Reason", np.array([""] * len(regions), dtype=object))
                for i in np.nonzero(empty)[0]:
                    reasons[i] = "; ".join(r for r in (reasons[i], f"empty region: no finite voxels in {itype}") if r)
            for k, v in data.diagnostics.items():
                diag[f"diagnostics_{itype}_{k}"] = v
        for cls, feats in p.feature_classes.items():
            if cls == "firstorder":
                for cols, got in zip(per_case_cols, _firstorder_packed(itype, datas, ctxs, feats)):
                    cols.update(got)
                continue
            fn = PER_IMAGE_TYPE_CLASSES.get(cls)
            if fn is not None:
                for data, ctx, cols, diag in zip(datas, ctxs, per_case_cols, per_case_diag):
                    c, d = fn(itype, data, ctx, feats)
                    cols.update(c)
                    diag.update(d)
    for cls, feats in p.feature_classes.items():
        fn = PER_REGION_CLASSES.get(cls)
        if fn is not None:
            for (img, regions), cols, diag in zip(items, per_case_cols, per_case_diag):
                c, d = fn(regions, img, p, feats, backend)
                cols.update(c)
                diag.update(d)
        elif cls not in PER_IMAGE_TYPE_CLASSES:
            raise ValueError(f"featureClass {cls!r} is not available in this build of rlnfast")
    return [_table(img, regions, p, backend, cols, diag)
            for (img, regions), cols, diag in zip(items, per_case_cols, per_case_diag)]


def _table(img, regions, p, backend, columns, diag) -> pd.DataFrame:
    n = len(regions)
    out = {"label": regions.label.astype(np.int64)}
    if regions.component is not None:
        out["source_label"] = regions.source_label
        out["component"] = regions.component
    bbox = regions.bbox
    # pyradiomics' BoundingBox: (x, y, z, size_x, size_y, size_z)
    out["diagnostics_Versions_rlnfast"] = [__version__] * n
    out["diagnostics_Configuration_Backend"] = [backend] * n
    out["diagnostics_Configuration_Settings"] = [json.dumps(_jsonable(p.settings), sort_keys=True)] * n
    out["diagnostics_Configuration_EnabledImageTypes"] = [json.dumps(_jsonable(p.image_types), sort_keys=True)] * n
    out["diagnostics_Image-original_Spacing"] = [tuple(float(s) for s in img.spacing)] * n
    out["diagnostics_Image-original_Size"] = [tuple(int(s) for s in img.array.shape[::-1])] * n
    bb = np.stack([bbox[:, 2], bbox[:, 1], bbox[:, 0], bbox[:, 5] - bbox[:, 2] + 1, bbox[:, 4] - bbox[:, 1] + 1,
                   bbox[:, 3] - bbox[:, 0] + 1], axis=1) if n else np.zeros((0, 6), np.int64)
    out["diagnostics_Mask-original_BoundingBox"] = list(map(tuple, bb.tolist()))
    out["diagnostics_Mask-original_VoxelNum"] = regions.count.astype(np.int64)
    reason = diag.pop("diagnostics_Reason", np.array([""] * n, dtype=object))
    for k, v in diag.items():
        out[k] = v if (isinstance(v, (list, np.ndarray)) and len(v) == n) else [v] * n
    out["diagnostics_Reason"] = reason
    for k, v in columns.items():
        out[k] = v
    return pd.DataFrame(out)


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    return x


def _register_optional_classes():
    """Feature classes beyond firstorder register themselves into the tables above when their module exists."""
    import importlib
    import importlib.util

    for mod in ("rlnfast.fractal",):
        if importlib.util.find_spec(mod) is not None:
            importlib.import_module(mod)


_register_optional_classes()
