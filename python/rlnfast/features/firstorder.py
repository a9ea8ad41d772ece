"""The ``firstorder`` feature class: pyradiomics' first-order features on every image type
(formulas: rlnfast.spec.firstorder.FEATURE_DOCS; kernels: rlnfast.ops.firstorder).

Settings: ``binWidth`` (default 25) or ``binCount``, ``voxelArrayShift`` (default 0), general or per image type.
The regions of several cases are packed into one kernel call per value dtype; TotalEnergy is V_voxel * Energy
with each case's own voxel volume (the same multiplication the kernel does), so packing changes no value.
"""
from __future__ import annotations

import numpy as np

from ..imagetypes import prefix
from ..ops import firstorder as op
from ..regions import RaggedBatch, pack
from ..spec.firstorder import DEFAULT_FEATURES, FEATURE_DOCS, FEATURES
from . import FeatureClass, register

# General pyradiomics settings (checked in rlnfast.params), listed as the ones this class reads.
PYRADIOMICS_ORDER = sorted(DEFAULT_FEATURES, key=lambda f: f"get{f}FeatureValue")
SETTINGS = {"binWidth": 25.0, "binCount": None, "voxelArrayShift": 0}


def compute(itype, datas, ctxs, features) -> list:
    s = ctxs[0].settings
    # the user's order, else pyradiomics' (dir() order of the getXFeatureValue methods), as pyradiomics
    names = list(dict.fromkeys(features)) if features else PYRADIOMICS_ORDER
    out: list = [({}, {}) for _ in datas]
    groups: dict[str, list[int]] = {}
    for i, d in enumerate(datas):
        groups.setdefault(str(np.dtype(d.value_dtype or np.float64)), []).append(i)
    e_col, te_col = FEATURES.index("Energy"), FEATURES.index("TotalEnergy")
    for members in groups.values():
        if len(members) == 1:  # nothing to pack: no copy
            d = datas[members[0]]
            batch = RaggedBatch(d.values, d.offsets, np.zeros(len(d.offsets) - 1, np.int64), np.zeros(0, np.int64))
        else:
            batch = pack([(datas[i].values, datas[i].offsets, np.zeros(len(datas[i].offsets) - 1)) for i in members])
        feats = op.firstorder(
            batch.values, batch.offsets, bin_width=s.get("binWidth", 25.0), bin_count=s.get("binCount"),
            voxel_array_shift=s.get("voxelArrayShift", 0) or 0, voxel_volume=1.0,
            value_dtype=datas[members[0]].value_dtype, backend=ctxs[0].backend)
        for j, i in enumerate(members):
            rows = feats[batch.case == j]
            d = datas[i]
            # pyradiomics' image types: each region's own voxel volume (resampled) and image name
            vv = ctxs[i].volume.voxel_volume if d.voxel_volume is None else d.voxel_volume
            rows[:, te_col] = vv * rows[:, e_col]
            p = prefix(itype) if d.name is None else f"{d.name}_"
            out[i] = ({f"{p}firstorder_{f}": rows[:, FEATURES.index(f)] for f in names}, {})
    return out


CLASS = register(FeatureClass(
    "firstorder", features=FEATURES, docs=FEATURE_DOCS, default_features=DEFAULT_FEATURES, settings=SETTINGS,
    per_image_type=compute))
