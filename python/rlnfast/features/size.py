"""The ``size`` feature class (docs/features.md, "Node size"; kernels: rlnfast.ops.size): the short- and
long-axis diameters of each region in the axial plane and the number of axial slices it spans, once per
region (``original_size_<Feature>``), with diagnostics ``diagnostics_size_ShortAxisSlice`` /
``LongAxisSlice`` (z index of the slice that gave each axis) and ``diagnostics_size_Reason`` (why NaN).
No settings: the spacing is the image's.
"""
from __future__ import annotations

from ..ops import size as op
from . import FeatureClass, register
from .fractal import region_crops   # the same bounding-box crops, packed once per case for both classes


def per_region(items, params, features, backend) -> list:
    out = []
    want = CLASS.wanted(features)
    for img, regions in items:
        if not want:
            out.append(({}, {}))
            continue
        crops = region_crops(regions, img.spacing_zyx)
        res = op.size_of_crops(crops, img.spacing_zyx, backend)
        cols = {f"original_size_{f}": res.features[f] for f in want}
        out.append((cols, res.diagnostics(z0=regions.bbox[:, 0])))
    return out


CLASS = register(FeatureClass("size", features=op.FEATURES, docs=op.FEATURE_DOCS, per_region=per_region))
