"""The device-resident pipeline of the cuda backend (issue 12 item 2; docs/architecture.md, "GPU").

With ``backend="cuda"``, :func:`rlnfast.extract` and the cohort runner (``extract_many``) run a case on the
device through ``rlnfast._core.cuda.Pipeline`` (csrc/cuda/pipeline_cuda.cu) whenever the parameters allow it
(:func:`unsupported` says why not otherwise, and the usual per-op path runs):

1. ``load``: the CT and the label map (cast to its smallest integer type: uint8, uint16 or int32) go to the device
   once; one kernel counts every label's voxels (and finite CT voxels) and bounding box; one download.
2. The regions are chosen on the host from those tables (:func:`rlnfast.regions.find_regions` with ``stats``),
   and so are the small per-region plans (value offsets, DEM box descriptors, fractal box sizes).
3. ``run``: one upload of the packed plan, then on the device: DEM passes on the regions' bounding boxes, one
   gather of Original / E / DEM values (C order) and of the fractal crops, one segmented sort, first-order per
   image type, fractal box counts and DBC counts; one download of the packed results.

So a case costs 3 uploads, 2 downloads and 2 synchronisations whatever the number of regions, and device scratch
is pooled (grow-only) in the Pipeline object, so a warm pipeline allocates nothing. The fits, the column assembly
and the diagnostics run on the host on per-region numbers. A case with non-finite CT voxels inside a region (or
inside a DEM box's halo) falls back to the per-op path, which reports or drops them exactly as the cpu backend.
``RLNFAST_DEVICE_PIPELINE=0`` switches the pipeline off.
"""
from __future__ import annotations

import os
import threading

import numpy as np

from . import _backends

KINDS = {"Original": 0, "Elasticity": 1, "DEM": 2}
# The device's per-label tables are dense by label value: above this the case takes the per-op path.
DENSE_LABEL_LIMIT = 1 << 22
CLASSES = ("firstorder", "fractal")
_STATE: dict = {}
# One Pipeline per process holds one case at a time: a thread loads and runs its case under this lock (threads of
# a Dask worker share the process).
_LOCK = threading.RLock()


def unsupported(p, backend: str) -> str | None:
    """Why the device pipeline cannot run these parameters on this backend (None: it can)."""
    if backend != "cuda":
        return f"backend {backend!r}"
    if os.environ.get("RLNFAST_DEVICE_PIPELINE", "1").strip() == "0":
        return "RLNFAST_DEVICE_PIPELINE=0"
    if not hasattr(_backends.core().cuda, "Pipeline"):   # pragma: no cover - an old build
        return "this build has no device pipeline"
    bad = [t for t in p.image_types if t not in KINDS]
    if bad:
        return f"image type(s) {bad} run per op"
    bad = [c for c in p.feature_classes if c not in CLASSES]
    if bad:
        return f"feature class(es) {bad} run per op"
    if p.settings.get("connectedComponents"):
        return "connectedComponents"
    from .features import feature_classes
    from .imagetypes import REGISTRY
    from .preprocessing import active

    classes = feature_classes()
    filters = any(getattr(REGISTRY.get(t), "pyradiomics", False) and t != "Original" for t in p.image_types)
    if active(p.settings, filters, any(classes[c].delegated for c in p.feature_classes if c in classes)):
        return "pyradiomics preprocessing"
    return None


def _pipeline():
    pl = _STATE.get("pipeline")
    if pl is None:
        pl = _STATE["pipeline"] = _backends.core().cuda.Pipeline()
    return pl


def _small_labels(lm: np.ndarray):
    """(label map in uint8 / uint16 / int32, largest label); labels <= 0 are background (sent as 0)."""
    if lm.size == 0:
        return np.zeros(lm.shape, np.uint8), 0
    hi = int(lm.max())
    lo = int(lm.min())
    if lo < 0:
        lm = np.where(lm < 0, 0, lm)
    hi = max(hi, 0)
    dt = np.uint8 if hi <= 0xFF else (np.uint16 if hi <= 0xFFFF else np.int32)
    return np.ascontiguousarray(lm, dtype=dt), hi


def load(ct: np.ndarray, label_map: np.ndarray):
    """Upload a case and return its per-label tables ``(counts, finite, bbox)`` dense by label value (bbox rows -1
    where a label has no voxel), or None when the label values are too large for dense tables."""
    from .ops.elasticity import ct_array

    small, hi = _small_labels(label_map)
    if hi > DENSE_LABEL_LIMIT:
        return None
    with _LOCK:
        raw = _pipeline().load(ct_array(ct), small, hi)
        _STATE["case"] = (object(), ct, label_map, None)
    n = hi + 1
    counts, finite = raw[:n].copy(), raw[n:2 * n].copy()
    bbox = np.concatenate([raw[2 * n:5 * n].reshape(n, 3), raw[5 * n:].reshape(n, 3)], axis=1)
    bbox[counts == 0] = -1
    tables = (counts, finite, bbox)
    with _LOCK:
        st = _STATE["case"]
        _STATE["case"] = (st[0], ct, label_map, tables)   # st[0]: a token for what the pipeline holds now
    return tables


def _loaded(regions, ct):
    """The tables of the case on the device when it is this one (loaded by find_regions for these regions
    within the same extract call), else None."""
    st = _STATE.get("case")
    tok = regions.__dict__.get(_TOKEN)
    if st is not None and tok is st[0] and st[1] is ct and st[2] is regions.label_map:
        return st[3]
    return None


_TOKEN = "_rlnfast_device_case"


def find_regions(img, lab, p):
    """The regions of ``lab`` (rlnfast.io.Volume) from the device's per-label tables (uploading the case), as
    :func:`rlnfast.regions.find_regions` finds them; None when the label values are too large for dense tables."""
    from .regions import _check_label_map, find_regions as host_find

    lm = _check_label_map(lab.array, lab.name)
    ct = np.asarray(img.array)
    tables = load(ct, lm)
    if tables is None:
        return None
    counts, _, bbox = tables
    present = np.nonzero(counts)[0]
    present = present[present > 0]
    # copy=False: the Regions hold the array just uploaded (used within this extract call, never edited)
    regions = host_find(lm, p.settings.get("label"), name=lab.name, copy=False,
                        stats=(present.astype(np.int64), counts[present], bbox[present]))
    regions.__dict__[_TOKEN] = _STATE["case"][0]
    return regions


def case_columns(img, regions, p):
    """``(columns, diagnostics)`` of one case computed on the device (rlnfast.extract builds the table from
    them as from the per-op path's), or None when the case must take the per-op path
    (non-finite CT voxels in a region or a DEM halo, label values too large)."""
    n = len(regions)
    if n == 0:
        return None
    ct = np.asarray(img.array)
    with _LOCK:   # the case on the device stays this one until its run is done
        return _case_columns_locked(img, regions, p, ct, n)


def _case_columns_locked(img, regions, p, ct, n):
    from .features import feature_classes
    from .features import firstorder as fo_class
    from .features import fractal as fr_class
    from .imagetypes import prefix
    from .ops import dem as dop
    from .ops import elasticity as eop
    from .ops import firstorder as fop
    from .ops import fractal as frop
    from .spec.firstorder import FEATURES

    tables = _loaded(regions, ct)
    regions.__dict__.pop(_TOKEN, None)   # once: a later call uploads again (the arrays may have changed)
    if tables is None:
        tables = load(ct, regions.label_map)
    if tables is None:
        return None
    counts, finite, _ = tables
    label = np.ascontiguousarray(regions.label, np.int64)
    count = np.ascontiguousarray(regions.count, np.int64)
    bbox = np.ascontiguousarray(regions.bbox, np.int64).reshape(-1, 6)
    if np.any(count <= 0) or np.any(label >= len(counts)) or np.any(counts[label] != count):
        return None   # empty or stale regions: the per-op path reports them
    if np.any(finite[label] != count):
        return None   # non-finite voxels in a region: error or drop, as the per-op path does
    classes = feature_classes()
    enabled = [(classes[c], feats) for c, feats in p.feature_classes.items()]
    spacing_zyx = img.spacing_zyx
    units = frop.to_units(spacing_zyx, "spacing")
    dims = bbox[:, 3:] - bbox[:, :3] + 1
    coff = np.zeros(n + 1, np.int64)
    np.cumsum(np.prod(dims, axis=1), out=coff[1:])
    crops = frop.Crops(np.zeros(0, np.uint8), coff, dims, units, count)

    types, plans = [], {}
    for itype in p.image_types:
        s = p.settings_for(itype)
        kw = eop.params_from_settings(s)
        lo, hi, rho_w, g = eop.elasticity_params(**kw)
        sigma = s.get("sigma")
        sigma = dop.check_sigma(dop.SIGMA if sigma is None else sigma) if itype == "DEM" else 1.0
        t = {"kind": KINDS[itype], "clip_lo": lo, "clip_hi": hi, "rho_w": rho_w, "gamma": g, "sigma": sigma,
             "firstorder": False, "bin_mode": 0, "bin_width": 25.0, "bin_count": 0, "edges_f32": False, "shift": 0.0,
             "dbc": False, "grey_levels": 256}
        for fc, feats in enabled:
            if fc.name == "firstorder":
                vd = ct.dtype if itype == "Original" else np.float64
                mode, width, cnt, f32 = fop.binning_args(s.get("binWidth", 25.0), s.get("binCount"), vd)
                t.update(firstorder=True, bin_mode=mode, bin_width=width, bin_count=cnt, edges_f32=f32,
                         shift=float(s.get("voxelArrayShift", 0) or 0))
            elif fc.name == "fractal" and fr_class.CLASS.wanted(feats, frop.IMAGE_FEATURES):
                mbs, bs, gl = fr_class._settings(s)
                plan = frop.plan_box_sizes(crops, mbs, bs)
                plans[itype] = (plan, mbs, bs)
                t.update(dbc=True, dbc_region=plan.pair_region, dbc_size=plan.pair_size, grey_levels=int(gl))
        types.append(t)
    region_plan = None
    if "fractal" in p.feature_classes and fr_class.CLASS.wanted(p.feature_classes["fractal"], frop.REGION_FEATURES):
        mbs, bs, _ = fr_class._settings(p.settings)
        region_plan = (frop.plan_box_sizes(crops, mbs, bs), mbs, bs)
    res = _pipeline().run(label, count, bbox, list(spacing_zyx), list(units), types,
                          None if region_plan is None else region_plan[0].pair_region,
                          None if region_plan is None else region_plan[0].pair_size)
    if np.any(np.asarray(res["dem_first_nan"]) >= 0):
        return None   # a NaN in a DEM box's halo: the per-op path raises, naming the voxel

    cols, diag = {}, {}
    e_col, te_col = FEATURES.index("Energy"), FEATURES.index("TotalEnergy")
    for k, itype in enumerate(p.image_types):
        s = p.settings_for(itype)
        t = types[k]
        if itype != "Original":
            lo, hi, rho_w, g = t["clip_lo"], t["clip_hi"], t["rho_w"], t["gamma"]
            d = {"gamma": g, "clipRange": (lo, hi), "referenceDensity": rho_w}
            if itype == "DEM":
                d = {"sigma": t["sigma"], **d,
                     "filterRadius": tuple(int(r) for r in dop.filter_radius(spacing_zyx, t["sigma"]))}
            for key, v in d.items():
                diag[f"diagnostics_{itype}_{key}"] = v
        for fc, feats in enabled:
            if not fc.applies_to(itype):
                continue
            if fc.name == "firstorder":
                offsets = np.zeros(n + 1, np.int64)
                np.cumsum(count, out=offsets[1:])
                rows = fop._check_binned(res["firstorder"][k], offsets, None, t["bin_mode"], t["bin_width"],
                                         t["bin_count"])
                rows[:, te_col] = img.voxel_volume * rows[:, e_col]
                names = list(dict.fromkeys(feats)) if feats else fo_class.PYRADIOMICS_ORDER
                cols.update({f"{prefix(itype)}firstorder_{f}": rows[:, FEATURES.index(f)] for f in names})
            elif fc.name == "fractal" and itype in plans:
                plan, mbs, bs = plans[itype]
                n_dbc, vmin, vmax = res["dbc"][k]
                reason = frop.size_reasons(crops, plan, mbs, bs)
                nbad = np.zeros(n, np.int64)
                r = frop.dbc_result(plan, reason, nbad, frop._scatter(plan, np.asarray(n_dbc, np.int64)),
                                    np.asarray(vmin, np.float64), np.asarray(vmax, np.float64))
                cols[f"{prefix(itype)}fractal_DBCFD"] = r.features["DBCFD"]
                diag.update(r.diagnostics(f"diagnostics_{itype}_fractal_"))
    if region_plan is not None:
        plan, mbs, bs = region_plan
        keys = ("n_mask", "n_surface", "sum_m2", "n_grid")
        c = {k: frop._scatter(plan, np.asarray(v, np.int64)) for k, v in zip(keys, res["boxes"])}
        r = frop.region_result(crops, plan, c, mbs, bs)
        want = fr_class.CLASS.wanted(p.feature_classes["fractal"], frop.REGION_FEATURES)
        cols.update({f"original_fractal_{f}": r.features[f] for f in want})
        diag.update(r.diagnostics("diagnostics_fractal_"))
    return cols, diag
