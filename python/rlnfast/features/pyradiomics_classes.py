"""pyradiomics' feature classes rlnfast does not compute natively: shape, shape2D, glcm, glrlm, glszm, gldm,
ngtdm, delegated to pyradiomics' own classes on each region's crop (so the values are pyradiomics' by
construction), with pyradiomics' column names and order.

Each region's crop is what pyradiomics' ``execute`` would hand its ``computeShape`` / ``computeFeatures`` for
that label: rlnfast.preprocessing replays pyradiomics' preprocessing (normalisation, resampling, resegmentation,
mask checks) and image types for all regions of a case, and these classes run on its output. pyradiomics is
an optional dependency: enabling one of these classes without it is an error naming the class.
"""
from __future__ import annotations

import importlib.util

import numpy as np

from ..spec.pyradiomics_classes import CLASS_NAMES, DELEGATED
from . import FeatureClass, register

SHAPE_SETTINGS = {"force2D": False, "force2Ddimension": 0}
TEXTURE_SETTINGS = {
    "glcm": {"distances": [1], "symmetricalGLCM": True, "weightingNorm": None},
    "glrlm": {"weightingNorm": None},
    "glszm": {},
    "gldm": {"distances": [1], "gldm_a": 0},
    "ngtdm": {"distances": [1]},
}
WEIGHTING_NORMS = (None, "manhattan", "euclidean", "infinity", "no_weighting")


def _unavailable() -> str | None:
    if importlib.util.find_spec("radiomics") is None:
        return ("is computed by pyradiomics, an optional dependency of rlnfast that is not installed "
                "(pip install --no-build-isolation pyradiomics)")
    return None


def _check(s: dict) -> None:
    d = s.get("distances")
    if d is not None and (not isinstance(d, (list, tuple)) or not d or any(
            isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in d)):
        raise ValueError(f"distances={d!r}: expected a list of integers >= 1")
    if s.get("weightingNorm") not in WEIGHTING_NORMS:
        raise ValueError(f"weightingNorm={s['weightingNorm']!r}: expected one of {WEIGHTING_NORMS[1:]} or nothing")
    if s.get("force2Ddimension") not in (None, 0, 1, 2):
        raise ValueError(f"force2Ddimension={s['force2Ddimension']!r}: expected 0, 1 or 2")
    a = s.get("gldm_a")
    if a is not None and (isinstance(a, bool) or not isinstance(a, (int, float)) or a < 0):
        raise ValueError(f"gldm_a={a!r}: expected a number >= 0")


def _classes():
    from radiomics import getFeatureClasses

    return getFeatureClasses()


def _columns(rows: list, n: int) -> dict:
    """Per-region OrderedDicts (None: no features) -> columns; keys in first-seen order, NaN where missing."""
    keys: dict = {}
    for row in rows:
        if row:
            keys.update(dict.fromkeys(row))
    return {k: np.array([float(row[k]) if row and k in row else np.nan for row in rows]) for k in keys}


def _run(cls_name: str, image, mask, feats, kwargs) -> dict:
    """pyradiomics' computeFeatures / computeShape body for one class: {feature name: value}."""
    obj = _classes()[cls_name](image, mask, **kwargs)
    for f in feats or []:
        obj.enableFeatureByName(f)
    return obj.execute()


def texture(cls_name):
    def per_image_type(itype, datas, ctxs, features):
        out = []
        for data, ctx in zip(datas, ctxs):
            if data.region_inputs is None:
                raise ValueError(f"featureClass {cls_name!r} runs on pyradiomics' image types only; image type "
                                 f"{itype!r} is rlnfast's own")
            rows = []
            for it in data.region_inputs:
                if it is None:
                    rows.append(None)
                    continue
                ci, cm, kw = it
                rows.append({f"{data.name}_{cls_name}_{k}": v for k, v in _run(cls_name, ci, cm, features, kw).items()})
            out.append((_columns(rows, len(data.region_inputs)), {}))
        return out
    return per_image_type


def shape(cls_name):
    def per_case(ctxs, features):
        from ..imagetypes import case_prep
        from ..preprocessing import crop_to_mask

        out = []
        for ctx in ctxs:
            prep = case_prep(ctx)
            rows, reasons = [], {}
            for r in range(len(ctx.regions)):
                rp = prep.region(r)
                if rp.reason:
                    rows.append(None)
                    continue
                kw = prep.kwargs(r)
                # pyradiomics' computeShape: crop to the bounding box, shape2D only with force2D and a 2-D slab
                ci, cm = crop_to_mask(rp.image, rp.shape_mask, rp.bbox)
                if cls_name == "shape2D":
                    dim = int(kw.get("force2Ddimension", 0))
                    if not (rp.bbox[1::2] - rp.bbox[0::2] + 1)[dim] > 1:   # pyradiomics' test, as written there
                        reasons[r] = (f"shape2D: the region is 1 voxel thick in force2Ddimension {dim}; "
                                      "pyradiomics computes no 2-D shape for it")
                        rows.append(None)
                        continue
                try:
                    res = _run(cls_name, ci, cm, features, kw)
                except ValueError as exc:
                    reasons[r] = f"{cls_name}: {exc}"
                    rows.append(None)
                    continue
                rows.append({f"original_{cls_name}_{k}": v for k, v in res.items()})
            diag = {}
            if reasons:
                diag[f"diagnostics_{cls_name}_Reason"] = [reasons.get(r, "") for r in range(len(ctx.regions))]
            out.append((_columns(rows, len(ctx.regions)), diag))
        return out
    return per_case


for _name, _feats in DELEGATED.items():
    _docs = {f: f"pyradiomics' {CLASS_NAMES[_name]}.get{f}FeatureValue (formula: pyradiomics' documentation); "
                f"computed by pyradiomics on the region's crop" for f in _feats}
    _defaults = tuple(f for f, dep in _feats.items() if not dep)
    if _name.startswith("shape"):
        register(FeatureClass(_name, features=tuple(_feats), docs=_docs, default_features=_defaults,
                              settings=dict(SHAPE_SETTINGS), check_settings=_check, per_case=shape(_name),
                              delegated=True, unavailable=_unavailable))
    else:
        register(FeatureClass(_name, features=tuple(_feats), docs=_docs, default_features=_defaults,
                              settings={**TEXTURE_SETTINGS[_name], **SHAPE_SETTINGS}, check_settings=_check,
                              per_image_type=texture(_name), delegated=True, unavailable=_unavailable))
