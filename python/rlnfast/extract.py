"""``rlnfast.extract``: one feature table row per region, pyradiomics column names, all regions at once."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np

from . import _backends
from ._version import __version__
from .features import feature_classes
from .imagetypes import REGISTRY as IMAGE_TYPE_REGISTRY
from .imagetypes import PIPELINE, ImageTypeContext
from .io import Volume, check_geometry, geometry_mismatches, read_volume
from .params import Params, load_params
from .regions import Regions, find_regions

if TYPE_CHECKING:
    import pandas as pd


def load_inputs(image, labels, *, spacing=None, geometry_tolerance=None, correct_mask=False,
                settings=None) -> tuple[Volume, Volume]:
    """Read image and label map (paths, SimpleITK images or arrays) and check that their geometry agrees (or,
    with ``correct_mask``, resample a label map of another geometry onto the image: :func:`correct_mask`)."""
    img = read_volume(image, spacing=spacing, name="image")
    # a bare array label map lies on the image's grid: it takes the image's spacing
    lab = read_volume(labels, spacing=spacing if spacing is not None else img.spacing, name="label map")
    if not _is_file_or_sitk(labels):
        # a bare array label map lies on the image's grid
        lab = Volume(lab.array, img.spacing, img.origin, img.direction, lab.name)
    if correct_mask and geometry_mismatches(lab.geometry(), img.geometry(), geometry_tolerance):
        lab = _correct_mask(img, lab, settings or {})
    check_geometry(img, lab, geometry_tolerance)
    img.meta["mask_reader"] = lab.reader  # reported as diagnostics_Mask-original_Reader
    return img, lab


def _correct_mask(img: Volume, lab: Volume, settings: dict) -> Volume:
    """pyradiomics' ``correctMask``: a label map whose geometry differs from the image's is resampled onto the
    image grid as ``imageoperations.checkMask`` does it (``_correctMask``: pyradiomics' ``_checkROI`` for each
    label, then SimpleITK's ResampleImageFilter with the image as reference and nearest-neighbour
    interpolation, of the mask cast to UInt32 as ``getMask`` casts it), by pyradiomics' own functions. A label
    pyradiomics would refuse (its ROI reaches outside the image) is an error naming the label and pyradiomics'
    reason. pyradiomics resamples such a mask differently when it also resamples the image, so
    ``resampledPixelSpacing`` together with a correction is refused by name."""
    import SimpleITK as sitk

    from .preprocessing import is_set, require

    io = require("setting 'correctMask'")
    if is_set(settings, "resampledPixelSpacing"):
        raise ValueError(f"setting 'correctMask' with 'resampledPixelSpacing': {lab.name} does not match "
                         f"{img.name}, and pyradiomics then resamples image and mask onto a grid of its own "
                         "(resampleImage) before any correction; not supported: resample the mask onto the "
                         "image first, or remove 'resampledPixelSpacing'")
    ref = img.to_sitk()
    mask = sitk.Cast(lab.to_sitk(), sitk.sitkUInt32)
    labels = np.unique(lab.array)
    want = settings.get("label")
    for lv in labels[labels > 0]:
        if want is not None and int(lv) != int(want):
            continue
        try:
            io._checkROI(ref, mask, label=int(lv))
        except ValueError as exc:
            raise ValueError(f"setting 'correctMask': label {int(lv)} of {lab.name} cannot be resampled onto "
                             f"{img.name} (pyradiomics: {str(exc).splitlines()[0]})") from None
    rif = sitk.ResampleImageFilter()
    rif.SetReferenceImage(ref)
    rif.SetInterpolator(sitk.sitkNearestNeighbor)
    out = Volume(sitk.GetArrayFromImage(rif.Execute(mask)), img.spacing, img.origin, img.direction, lab.name)
    out.reader = lab.reader
    return out


def _is_file_or_sitk(x) -> bool:
    import os

    return isinstance(x, (str, os.PathLike, Volume)) or type(x).__module__.startswith("SimpleITK")


def extract(image, labels, params=None, backend: str = "auto", *, spacing=None, **settings) -> pd.DataFrame:
    """Features of every region of ``labels`` on ``image``: a DataFrame with one row per region.

    Parameters
    ----------
    image, labels
        File paths (NIfTI, NRRD, DICOM folder), SimpleITK images, or NumPy arrays (z, y, x) with
        ``spacing`` (x, y, z) in mm: required for an array image (an error otherwise, never a silent 1 mm;
        ``spacing=(1, 1, 1)`` for 1 mm voxels). 3-D only: a 2-D image is refused. An array label map lies
        on the image's grid. The label map must be an integer image on the image's grid; every
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
    rlnfast.features (each class's FEATURE_DOCS) and docs/features.md.
    """
    p = params if isinstance(params, Params) and not settings else load_params(params, **settings)
    name = _backends.resolve(backend)
    img, lab = load_inputs(image, labels, spacing=spacing, geometry_tolerance=p.settings.get("geometryTolerance"),
                           correct_mask=bool(p.settings.get("correctMask")), settings=p.settings)
    regions = find_regions(lab.array, p.settings.get("label"),
                           connected_components=bool(p.settings.get("connectedComponents")),
                           connectivity=int(p.settings.get("connectivity", 26)),
                           min_voxels=int(p.settings.get("minimumComponentVoxels", 1)), name=lab.name,
                           copy=False)   # used here and now, never edited
    return extract_regions(img, regions, p, name)


def extract_regions(img: Volume, regions: Regions, p: Params, backend: str) -> pd.DataFrame:
    """The feature table of already-found regions of one image (see :func:`extract_many`)."""
    return extract_many([(img, regions)], p, backend)[0]


def extract_many(items, p: Params, backend: str) -> list[pd.DataFrame]:
    """Feature tables of several (image Volume, Regions) pairs. For each enabled image type, every enabled
    feature class (rlnfast.features) computes on all cases' regions together (first-order runs one kernel
    call for the regions of all cases; the cohort runner packs a chunk of cases this way); then the classes'
    region-only parts. No class or image type is special to this loop."""
    classes = feature_classes()
    for cls in p.feature_classes:
        if cls not in classes:
            raise ValueError(f"featureClass {cls!r} is not available in this build of rlnfast")
    enabled = [(classes[cls], feats) for cls, feats in p.feature_classes.items()]
    per_case_cols: list[dict] = [{} for _ in items]
    per_case_diag: list[dict] = [{} for _ in items]
    caches: list[dict] = [{} for _ in items]   # per case, shared by its image types (e.g. the gathered HU)
    from .preprocessing import active

    filters = any(getattr(IMAGE_TYPE_REGISTRY.get(t), "pyradiomics", False) and t != "Original" for t in p.image_types)
    if active(p.settings, filters, any(fc.delegated for fc, _ in enabled)):
        # pyradiomics' preprocessing and image types (rlnfast.preprocessing), shared through the case cache
        for cache in caches:
            cache.update({PIPELINE: True, "general settings": p.settings, "lbp3d": "LBP3D" in p.image_types})

    def collect(outputs):
        for cols, diag, (c, d) in zip(per_case_cols, per_case_diag, outputs):
            cols.update(c)
            diag.update(d)

    general = [ImageTypeContext(img, regions, dict(p.settings), backend, cache)
               for (img, regions), cache in zip(items, caches)]
    for fc, feats in enabled:
        if fc.per_case is not None:   # pyradiomics' shape: first, as in pyradiomics
            collect(fc.per_case(general, feats))
    for itype in p.image_types:
        if itype not in IMAGE_TYPE_REGISTRY:
            raise ValueError(f"imageType {itype!r} is not available in this build of rlnfast")
        ctxs = [ImageTypeContext(img, regions, p.settings_for(itype), backend, cache)
                for (img, regions), cache in zip(items, caches)]
        per_case = [IMAGE_TYPE_REGISTRY[itype](ctx) for ctx in ctxs]
        per_case = [d if isinstance(d, list) else [d] for d in per_case]
        # a pyradiomics image type yields several images (LoG sigmas, wavelet decompositions): by name
        names = list(dict.fromkeys(d.name for ds in per_case for d in ds))
        for cache, diag in zip(caches, per_case_diag):
            why = cache.get("image type reasons", {}).get(itype)
            if why:
                diag[f"diagnostics_{itype}_Reason"] = why
        for name in names:
            datas = [next((d for d in ds if d.name == name), None) for ds in per_case]
            datas = [d if d is not None else _no_image(name, len(regions)) for d, (_, regions) in zip(datas, items)]
            for (img, regions), data, diag in zip(items, datas, per_case_diag):
                empty = np.diff(data.offsets) == 0
                if empty.any():
                    # nonFinite: drop, or pyradiomics refusing the region (checkMask, resegmentation)
                    reasons = diag.setdefault("diagnostics_Reason", np.array([""] * len(regions), dtype=object))
                    for i in np.nonzero(empty)[0]:
                        why = data.reasons.get(int(i), f"empty region: no finite voxels in {itype}")
                        if why not in reasons[i]:
                            reasons[i] = "; ".join(r for r in (reasons[i], why) if r)
                for k, v in data.diagnostics.items():
                    diag[f"diagnostics_{itype}_{k}"] = v
            for fc, feats in enabled:
                if fc.applies_to(itype):
                    collect(fc.per_image_type(itype, datas, ctxs, feats))
    for fc, feats in enabled:
        if fc.per_region is not None:
            collect(fc.per_region(items, p, feats, backend))
    # voxels the features used: after nonFinite: drop, those of the gathered CT (one cache entry per case)
    used = [np.diff(np.asarray(c[("hu", "drop")][1], np.int64)) if ("hu", "drop") in c else None for c in caches]
    return [_table(img, regions, p, backend, cols, diag, n_used)
            for (img, regions), cols, diag, n_used in zip(items, per_case_cols, per_case_diag, used)]


def _no_image(name, n):
    from .imagetypes import ImageTypeData

    return ImageTypeData(np.zeros(0), np.zeros(n + 1, np.int64), np.float64, None, {}, name=name,
                         voxel_volume=np.full(n, np.nan), reasons={r: f"pyradiomics yields no {name} image" for r in range(n)},
                         region_inputs=[None] * n)


def _table(img, regions, p, backend, columns, diag, used=None) -> pd.DataFrame:
    import pandas as pd   # here, not at import: `import rlnfast` stays light (cohort workers, the CLI's start)

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
    # which reader decoded the files: 'rlnfast-nifti', 'SimpleITK' or 'SimpleITK (why)'; '' for arrays
    out["diagnostics_Image-original_Reader"] = [img.reader] * n
    out["diagnostics_Mask-original_Reader"] = [img.meta.get("mask_reader", "")] * n
    bb = np.stack([bbox[:, 2], bbox[:, 1], bbox[:, 0], bbox[:, 5] - bbox[:, 2] + 1, bbox[:, 4] - bbox[:, 1] + 1,
                   bbox[:, 3] - bbox[:, 0] + 1], axis=1) if n else np.zeros((0, 6), np.int64)
    out["diagnostics_Mask-original_BoundingBox"] = list(map(tuple, bb.tolist()))
    # the voxels the features used (after nonFinite: drop), and how many were dropped
    count = regions.count.astype(np.int64)
    out["diagnostics_Mask-original_VoxelNum"] = count if used is None else np.asarray(used, np.int64)
    if p.settings.get("nonFinite") == "drop":
        out["diagnostics_Mask-original_NonFiniteDropped"] = count - out["diagnostics_Mask-original_VoxelNum"]
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
