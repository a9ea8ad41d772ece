"""The ``fractal`` feature class (docs/features.md, "Fractal features"; kernels: rlnfast.ops.fractal).

Two parts:

* region-only features (once per region, named ``original_fractal_<Feature>``): MaskFD, SurfaceFD,
  Lacunarity, MaskFD_local_0..2, with diagnostics ``diagnostics_fractal_*`` (box sizes, counts, R^2 of each
  fit, Lambda per size, ``diagnostics_fractal_Reason`` whenever the features are NaN, and
  ``diagnostics_fractal_MaskFD_local_k_Reason`` whenever MaskFD_local_k alone is NaN);
* DBCFD per enabled image type (``original_fractal_DBCFD``, ``E_original_fractal_DBCFD``,
  ``DEM_original_fractal_DBCFD``), with ``diagnostics_<ImageType>_fractal_DBCFD_*``.

Settings: ``fractalMinBoxSize`` (mm; default the smallest voxel spacing; sizes s_min * 2^k up to the largest
extent L of the bounding box), ``fractalBoxSizes`` (mm list; overrides the doubling series),
``fractalGreyLevels`` (G, default 256). Formulas: ``rlnfast.ops.fractal``.
"""
from __future__ import annotations

import numpy as np

from ..imagetypes import prefix
from ..ops import fractal as op
from . import FeatureClass, register

_CACHE_ATTR = "_rlnfast_fractal_crops"


SETTINGS = {"fractalMinBoxSize": None, "fractalBoxSizes": None, "fractalGreyLevels": 256}


def _settings(s: dict):
    """(min box size, box sizes, grey levels) of the settings, validated (ValueError naming the key)."""
    mbs = s.get("fractalMinBoxSize")
    bs = s.get("fractalBoxSizes")
    g = s.get("fractalGreyLevels", 256)
    if mbs is not None and (isinstance(mbs, bool) or not isinstance(mbs, (int, float)) or not mbs > 0):
        raise ValueError(f"fractalMinBoxSize={mbs!r}: expected a box size > 0 in mm")
    if bs is not None:
        if not isinstance(bs, (list, tuple)) or not bs or any(
                isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0 for v in bs):
            raise ValueError(f"fractalBoxSizes={bs!r}: expected a non-empty list of box sizes > 0 in mm")
    return mbs, bs, op.check_grey_levels(g if g is not None else 256)


def region_crops(regions, spacing_zyx) -> op.Crops:
    """The regions' bounding-box mask crops (computed once per Regions object and spacing)."""
    key = tuple(float(s) for s in spacing_zyx)
    cached = regions.__dict__.get(_CACHE_ATTR)
    if cached is not None and cached[0] == key and cached[1] is regions.label_map:
        return cached[2]
    crops = op.crops_from_label_map(regions.label_map, regions.label, regions.bbox, spacing_zyx)
    regions.__dict__[_CACHE_ATTR] = (key, regions.label_map, crops)
    return crops


def region_part(items, params, features, backend) -> list:
    """Region-only features of every case (per_region)."""
    return [region_columns(regions, img, params, features, backend) for img, regions in items]


def image_type_part(image_type, datas, ctxs, features) -> list:
    """DBCFD of one image type for every case (per_image_type)."""
    return [dbc_columns(image_type, data, ctx, features) for data, ctx in zip(datas, ctxs)]


def region_columns(regions, volume, params, features, backend):
    """Region-only features and their diagnostics of one case."""
    want = CLASS.wanted(features, op.REGION_FEATURES)
    if not want:
        return {}, {}
    mbs, bs, _ = _settings(params.settings)
    crops = region_crops(regions, volume.spacing_zyx)
    res = op.region_features(crops, min_box_size=mbs, box_sizes=bs, backend=backend)
    cols = {f"original_fractal_{f}": res.features[f] for f in want}
    return cols, res.diagnostics("diagnostics_fractal_")


def dbc_columns(image_type, data, ctx, features):
    """DBCFD of one image type of one case."""
    if not CLASS.wanted(features, op.IMAGE_FEATURES):
        return {}, {}
    mbs, bs, g = _settings(ctx.settings)
    crops = region_crops(ctx.regions, ctx.volume.spacing_zyx)
    name = f"{prefix(image_type)}fractal_DBCFD"
    dpre = f"diagnostics_{image_type}_fractal_"
    n = len(crops)
    if data.crop is None:
        return ({name: np.full(n, np.nan)},
                {f"{dpre}Reason": [f"image type {image_type} provides no bounding-box crops for DBC"] * n})
    values = op.pack_values(crops, data.crop)
    res = op.dbc_features(crops, values, min_box_size=mbs, box_sizes=bs, grey_levels=g, backend=ctx.backend)
    return {name: res.features["DBCFD"]}, res.diagnostics(dpre)


CLASS = register(FeatureClass(
    "fractal", features=op.FEATURES, docs=op.FEATURE_DOCS, settings=SETTINGS,
    check_settings=_settings, per_image_type=image_type_part, per_region=region_part))
