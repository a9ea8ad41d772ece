"""Fractal features (MaskFD, SurfaceFD, Lacunarity, MaskFD_local_0..2, DBCFD x 3 image types) for every
region: rlnfast against the NumPy reference run region by region.

    python bench/bench_fractal.py [--quick] [--backends cpu,cuda,cupy] [--min-box-size MM] [--json PATH]

Data: the seeded synthetic CT of bench_firstorder.py (512x512x200 int16, 0.7x0.7x2.5 mm, 1000 node-like
ellipsoids of 5-15 mm; --quick: 256x256x80, 200 nodes). Box sizes: the features.md default (s_min = the
smallest spacing, 0.7 mm here, doubling up to the region's largest extent L), so every node gets 3-5 sizes;
--min-box-size MM sets fractalMinBoxSize (2.5 mm: most nodes get fewer than 3 sizes, i.e. NaN).
DBC runs on Original, Elasticity and DEM when those image types are registered (else on Original three
times); the image-type maps and their bounding-box crops are computed before the timer (they belong to the
image types, not to the fractal class) and the packing cost is printed beside.

Method (bench/README.md): results of rlnfast and of the reference are checked equal first (integer counts
exactly, dimensions to 1e-9); rlnfast is timed as median (min-max) of --repeat runs after a warm-up, the
reference once (it is slow). Timed on the rlnfast side: packing the mask crops from the label map, the
region features, and DBC on each image type's packed intensities.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table, timeit, write_json  # noqa: E402

import rlnfast  # noqa: E402
from rlnfast import _backends  # noqa: E402
from rlnfast.ops import fractal as op  # noqa: E402
from rlnfast.reference import fractal as ref  # noqa: E402


def make_case(quick: bool):
    shape, n_nodes = ((80, 256, 256), 200) if quick else ((200, 512, 512), 1000)
    try:
        from rlnfast.segmentation.synthetic import make_ct
    except ImportError:  # pragma: no cover - the generator ships with rlnfast
        raise SystemExit("rlnfast.segmentation.synthetic.make_ct is missing")
    return make_ct(shape=shape, spacing=(0.7, 0.7, 2.5), n_nodes=n_nodes, seed=0)


def image_type_values(ct, regions, crops, backend):
    """[(image type, packed float64 intensities on the crops, seconds to build)] for three DBC runs."""
    from rlnfast.imagetypes import REGISTRY, ImageTypeContext
    from rlnfast.io import Volume
    from rlnfast.params import load_params

    vol = Volume(ct.image, ct.spacing, name="synthetic CT")
    p = load_params(None)
    names = [t for t in ("Original", "Elasticity", "DEM") if t in REGISTRY]
    out = []
    for t in names:
        try:
            t0 = time.perf_counter()
            data = REGISTRY[t](ImageTypeContext(vol, regions, p.settings_for(t), backend))
            v = op.pack_values(crops, data.crop)
            out.append((t, v, time.perf_counter() - t0))
        except Exception as exc:  # an image type still in development: say so and go on
            print(f"note: image type {t} unavailable ({type(exc).__name__}: {exc}); DBC on Original instead")
    while len(out) < 3:
        out.append(("Original", out[0][1], out[0][2]))
    return out


def run_rlnfast(ct, regions, types, kw, backend):
    crops = op.crops_from_label_map(ct.labels, regions.label, regions.bbox, ct.spacing[::-1])
    rf = op.region_features(crops, backend=backend, **kw)
    dbc = [op.dbc_features(crops, v, backend=backend, **kw) for _, v, _ in types]
    return crops, rf, dbc


def run_reference(ct, regions, crops, types, kw):
    """The reference region by region: crop the mask, all region features, DBC on each image type."""
    units = op.to_units(ct.spacing[::-1])
    out = []
    for i in range(len(regions)):
        sl = regions.bbox_slices(i)
        m = ct.labels[sl] == regions.label[i]
        rf = ref.region_features_one(m, units, kw.get("min_box_size"), kw.get("box_sizes"))
        d = [ref.dbc_features_one(m, v[crops.offsets[i]:crops.offsets[i + 1]].reshape(m.shape), units,
                                  kw.get("min_box_size"), kw.get("box_sizes")) for _, v, _ in types]
        out.append((rf, d))
    return out


def check_equal(rf, dbc, refres):
    n_checked = 0
    for i, (r, d) in enumerate(refres):
        k = len(r["sizes"])
        assert rf.n_sizes[i] == k, (i, rf.n_sizes[i], k)
        assert rf.counts["MaskFD"][i, :k].tolist() == r["n_mask"].tolist(), i
        assert rf.counts["SurfaceFD"][i, :k].tolist() == r["n_surface"].tolist(), i
        assert rf.counts["Lacunarity_SumM2"][i, :k].tolist() == r["sum_m2"].tolist(), i
        assert rf.counts["Lacunarity_GridBoxes"][i, :k].tolist() == r["n_grid"].tolist(), i
        for f in op.REGION_FEATURES:
            a, b = rf.features[f][i], r["features"][f]
            assert (np.isnan(a) and np.isnan(b)) or abs(a - b) <= 1e-9 * max(1.0, abs(b)), (i, f, a, b)
        for t, res in enumerate(dbc):
            assert res.counts["DBCFD"][i, :k].tolist() == d[t]["n_dbc"].tolist(), (i, t)
            a, b = res.features["DBCFD"][i], d[t]["DBCFD"]
            assert (np.isnan(a) and np.isnan(b)) or abs(a - b) <= 1e-9 * max(1.0, abs(b)), (i, t, a, b)
        n_checked += 1
    return n_checked


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small synthetic CT (256x256x80, 200 regions)")
    ap.add_argument("--backends", default="cpu", help="comma-separated rlnfast backends to time (cpu,cuda,cupy)")
    ap.add_argument("--min-box-size", type=float, default=None,
                    help="fractalMinBoxSize in mm (default: none set, i.e. the smallest spacing)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", default=None, help="output JSON (default bench/results/bench_fractal.json)")
    args = ap.parse_args(argv)
    kw = {"min_box_size": args.min_box_size}

    from rlnfast.regions import find_regions

    ct = make_case(args.quick)
    regions = find_regions(ct.labels)
    n = len(regions)
    crops0 = op.crops_from_label_map(ct.labels, regions.label, regions.bbox, ct.spacing[::-1])
    types = image_type_values(ct, regions, crops0, "cpu")

    # --- correctness first: rlnfast cpu against the reference, region by region (timed once)
    crops, rf, dbc = run_rlnfast(ct, regions, types, kw, "cpu")
    t0 = time.perf_counter()
    refres = run_reference(ct, regions, crops, types, kw)
    t_ref = time.perf_counter() - t0
    n_checked = check_equal(rf, dbc, refres)

    results = {"load_average_1_5_15": list(os.getloadavg()),
               "case": f"synthetic {ct.image.shape[2]}x{ct.image.shape[1]}x{ct.image.shape[0]}",
               "regions": n, "voxels_in_regions": int(regions.count.sum()),
               "bbox_voxels": int(crops.offsets[-1]), "settings": {"fractalMinBoxSize": args.min_box_size},
               "image_types": [t for t, _, _ in types],
               "image_type_prep_s": {f"{t}#{j}": s for j, (t, _, s) in enumerate(types)},
               "pairs": int(op.plan_box_sizes(crops, **kw).pair_region.size),
               "regions_with_nan_MaskFD": int(np.isnan(rf.features["MaskFD"]).sum()),
               "checked_equal_regions": n_checked, "reference_per_region": {"total_s": t_ref, "runs": 1}}
    rows = []
    for be in [b.strip() for b in args.backends.split(",") if b.strip()]:
        ok, why = _backends.available(be)
        if not ok:
            print(f"backend {be}: skipped ({why})")
            results[f"rlnfast_{be}"] = {"skipped": why}
            continue
        if be != "cpu":   # the GPU backends must agree with the checked cpu results
            _, rf2, dbc2 = run_rlnfast(ct, regions, types, kw, be)
            for k in rf.counts:
                assert np.array_equal(rf2.counts[k], rf.counts[k]), (be, k)
            for a, b in zip(dbc2, dbc):
                assert np.array_equal(a.counts["DBCFD"], b.counts["DBCFD"]), be
        steps = {
            "mask crops": lambda: op.crops_from_label_map(ct.labels, regions.label, regions.bbox, ct.spacing[::-1]),
            "region features": lambda: op.region_features(crops, backend=be, **kw),
        }
        for j, (t, v, _) in enumerate(types):
            steps[f"DBC {t}" + (f" #{j}" if [x for x, _, _ in types].count(t) > 1 else "")] = \
                (lambda v=v: op.dbc_features(crops, v, backend=be, **kw))
        timings = {k: timeit(f, repeat=args.repeat) for k, f in steps.items()}
        total = timeit(lambda: run_rlnfast(ct, regions, types, kw, be), repeat=args.repeat)
        results[f"rlnfast_{be}"] = {"steps": timings, "total": total, "speedup_vs_reference": t_ref / total["median_s"],
                                    "regions_per_s": n / total["median_s"]}
        for k, tm in timings.items():
            rows.append([be, k, f"{tm['median_s'] * 1e3:.1f} ({tm['min_s'] * 1e3:.1f}-{tm['max_s'] * 1e3:.1f})", "", ""])
        rows.append([be, "TOTAL all fractal features", f"{total['median_s'] * 1e3:.1f} ({total['min_s'] * 1e3:.1f}-"
                     f"{total['max_s'] * 1e3:.1f})", f"{t_ref:.2f}", f"{t_ref / total['median_s']:.0f}x"])
    print(table(rows, ["backend", "step", "rlnfast ms median (min-max)", "reference s", "speedup"]))
    print(f"{n} regions, {results['pairs']} (region, size) pairs, {results['regions_with_nan_MaskFD']} regions "
          f"with < 3 sizes (NaN); DBC image types: {', '.join(results['image_types'])}; "
          f"{n_checked} regions checked equal to the reference before timing.")
    prep = ", ".join(f"{k} {v:.2f} s" for k, v in results["image_type_prep_s"].items())
    print(f"machine load average at the start (1, 5, 15 min): {results['load_average_1_5_15']} on "
          f"{os.cpu_count()} CPUs (other jobs share them: timings are wall-clock)")
    print(f"not timed above (image-type maps + packing their crops): {prep}")
    cpu = results.get("rlnfast_cpu", {})
    if "total" in cpu:
        tgt = {"speedup_vs_reference_min": 50, "total_s_max": 2.0,
               "met_speedup": cpu["speedup_vs_reference"] >= 50, "met_time": cpu["total"]["median_s"] < 2.0}
        results["targets"] = tgt
        print(f"targets: >= 50x vs reference: {'met' if tgt['met_speedup'] else 'NOT met'} "
              f"({cpu['speedup_vs_reference']:.0f}x); < 2 s: {'met' if tgt['met_time'] else 'NOT met'} "
              f"({cpu['total']['median_s']:.3f} s)")
    path = write_json("bench_fractal", {"results": results}, args.json)
    print(f"wrote {path}")
    return results


if __name__ == "__main__":
    main()
