"""pyradiomics parameter files through rlnfast, against pyradiomics itself in the same run (issue 13, item 5).

    python bench/bench_pyradiomics.py [--quick] [--pyradiomics-regions N] [--repeat R] [--only a,b,c] [--json PATH]

(a) pyradiomics' default ``Params.yaml`` (shape, first-order, glcm, glrlm, glszm, gldm) on the seeded synthetic CT
    of bench_firstorder.py (512x512x200 int16, 1000 node-like regions; --quick: 256x256x80, 200 regions):
    ``rlnfast.extract`` on all regions at once against pyradiomics' ``execute(image, labelmap, label=L)`` loop
    as users call it (SimpleITK images in memory, one extractor), timed on a sample of regions (its per-region
    cost scaled to all). Target: >= 50x per region.
(b) The drop-in's single-label ``execute`` against pyradiomics' on each configuration of pyradiomics' own test
    cases (the golden baseline's 20: 5 cases x plain, normalisation, resampling, resegmentation; --quick:
    breast1's 4), with first-order only and with every class. Target: at least as fast everywhere, >= 3x on
    first-order only.
(c) ``exampleCT.yaml`` (resampling to 1 mm, LoG 1-5 mm, Wavelet; shape, first-order, glcm, glrlm, glszm) on the
    sarcoma CTs (../shared/data/ibsi/sts_validation): the ratio, and per stage (cProfile, CPU time) where
    rlnfast's time goes.

Every timed configuration is first checked equal (every feature key, 1e-9 relative; delegated classes exactly)
to pyradiomics on the same inputs; a mismatch aborts. Times are medians of --repeat runs after a warm-up, wall
and CPU (process_time) both; judge loaded machines by CPU time.
"""
from __future__ import annotations

import argparse
import ast
import cProfile
import logging
import pstats
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table, write_json  # noqa: E402

import rlnfast  # noqa: E402
from rlnfast.segmentation.synthetic import make_ct  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
GLCM = ["Autocorrelation", "JointAverage", "ClusterProminence", "ClusterShade", "ClusterTendency", "Contrast",
        "Correlation", "DifferenceAverage", "DifferenceEntropy", "DifferenceVariance", "JointEnergy",
        "JointEntropy", "Imc1", "Imc2", "Idm", "Idmn", "Id", "Idn", "InverseVariance", "MaximumProbability",
        "SumEntropy", "SumSquares"]
# pyradiomics' examples/exampleSettings/Params.yaml (settings written out, comments left out)
PARAMS = {"setting": {"binWidth": 25, "label": 1, "interpolator": "sitkBSpline", "resampledPixelSpacing": None,
                      "weightingNorm": None},
          "imageType": {"Original": {}},
          "featureClass": {"shape": None, "firstorder": [], "glcm": GLCM, "glrlm": None, "glszm": None, "gldm": None}}
# exampleCT.yaml, spelled for pyradiomics 3 (pyradiomics 3 refuses the file's older spelling)
EXAMPLE_CT = {"imageType": {"Original": {}, "LoG": {"sigma": [1.0, 2.0, 3.0, 4.0, 5.0]}, "Wavelet": {}},
              "featureClass": {"shape": ["MeshVolume", "SurfaceArea", "SurfaceVolumeRatio", "Sphericity",
                                         "SphericalDisproportion", "Maximum3DDiameter", "Maximum2DDiameterSlice",
                                         "Maximum2DDiameterColumn", "Maximum2DDiameterRow", "MajorAxisLength",
                                         "MinorAxisLength", "LeastAxisLength", "Elongation", "Flatness"],
                               "firstorder": None, "glcm": None, "glrlm": None, "glszm": None},
              "setting": {"interpolator": "sitkBSpline", "resampledPixelSpacing": [1, 1, 1], "padDistance": 10,
                          "binWidth": 25, "voxelArrayShift": 1000, "label": 1}}


def _pyradiomics():
    import radiomics
    from radiomics import featureextractor

    radiomics.setVerbosity(logging.ERROR)
    return getattr(featureextractor.RadiomicsFeatureExtractor, "_rlnfast_original",
                   featureextractor.RadiomicsFeatureExtractor)


def _equal(ours, ref, where):
    """Every non-diagnostic key of pyradiomics' result present in ``ours`` (a dict or a table row) and equal."""
    n = 0
    for k, v in ref.items():
        if k.startswith("diagnostics_"):
            continue
        a, b = float(ours[k]), float(v)
        ok = (np.isnan(a) and np.isnan(b)) or (a == b if "_firstorder_" not in k
                                               else abs(a - b) <= 1e-9 * max(abs(b), 1e-3))
        if not ok:
            raise AssertionError(f"{where}: {k}: rlnfast {a!r} != pyradiomics {b!r}")
        n += 1
    return n


def _timed(fn, repeat, warmup=1):
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return {"median_s": statistics.median(wall), "min_s": min(wall), "max_s": max(wall),
            "cpu_median_s": statistics.median(cpu), "runs": repeat}


# ---- (a)
def bench_params_many_regions(quick, n_pyrad, repeat):
    import SimpleITK as sitk

    original = _pyradiomics()
    shape, n_nodes = ((80, 256, 256), 200) if quick else ((200, 512, 512), 1000)
    ct = make_ct(shape=shape, spacing=(0.7, 0.7, 2.5), n_nodes=n_nodes, seed=0)
    img, lm = sitk.GetImageFromArray(ct.image), sitk.GetImageFromArray(ct.labels)
    for im in (img, lm):
        im.SetSpacing(tuple(float(v) for v in ct.spacing))
    params = {**PARAMS, "setting": {k: v for k, v in PARAMS["setting"].items() if k != "label"}}
    # correctness first: all regions by rlnfast, two sampled regions by pyradiomics
    df = rlnfast.extract(img, lm, params, backend="cpu")
    n = len(df)
    ex = original(PARAMS)
    sample = np.linspace(0, n - 1, max(n_pyrad, 1)).astype(int)
    checked = 0
    for i in sample[:2]:
        checked += _equal(df.iloc[i], ex.execute(img, lm, label=int(df["label"].iloc[i])), f"region {i}")
    t_rl = _timed(lambda: rlnfast.extract(img, lm, params, backend="cpu"), repeat, warmup=0)

    def pyrad_loop():
        for i in sample:
            ex.execute(img, lm, label=int(df["label"].iloc[i]))

    t_pr = _timed(pyrad_loop, 1, warmup=0)
    per_rl = {k: t_rl[k] / n for k in ("median_s", "cpu_median_s")}
    per_pr = {k: t_pr[k] / len(sample) for k in ("median_s", "cpu_median_s")}
    return {"case": f"synthetic {shape[2]}x{shape[1]}x{shape[0]}, {n} regions", "regions": n,
            "pyradiomics_regions_timed": len(sample), "keys_checked": checked, "rlnfast_all_regions": t_rl,
            "pyradiomics_sample": t_pr, "rlnfast_per_region": per_rl, "pyradiomics_per_region": per_pr,
            "ratio_wall": per_pr["median_s"] / per_rl["median_s"],
            "ratio_cpu": per_pr["cpu_median_s"] / per_rl["cpu_median_s"], "target": 50}


# ---- (b)
def _configurations(quick):
    import pandas as pd

    b = pd.read_csv(SHARED / "pyradiomics" / "baseline" / "baseline_firstorder.csv", index_col=0)
    out = []
    for col in b.columns:
        case = b.loc["diagnostics_Configuration_TestCase", col]
        if quick and case != "breast1":
            continue
        img = SHARED / "pyradiomics" / f"{case}_image.nrrd"
        if not img.exists():
            continue
        settings = ast.literal_eval(b.loc["diagnostics_Configuration_Settings", col])
        types = ast.literal_eval(b.loc["diagnostics_Configuration_EnabledImageTypes", col])
        out.append((col, str(img), str(SHARED / "pyradiomics" / f"{case}_label.nrrd"), settings, types))
    return out


def bench_dropin(quick, repeat):
    import SimpleITK as sitk

    from rlnfast.pyradiomics import RadiomicsFeatureExtractor as Dropin

    original = _pyradiomics()
    rows = []
    for col, img_path, msk_path, settings, types in _configurations(quick):
        img, msk = sitk.ReadImage(img_path), sitk.ReadImage(msk_path)   # in memory: reading is not timed
        for classes in ("firstorder", "all"):
            exs = []
            for cls in (Dropin, original):
                ex = cls(**settings)
                ex.disableAllImageTypes()
                ex.enableImageTypes(**types)
                ex.disableAllFeatures()
                if classes == "firstorder":
                    ex.enableFeatureClassByName("firstorder")
                else:
                    ex.enableAllFeatures()
                exs.append(ex)
            ours, theirs = (ex.execute(img, msk) for ex in exs)
            if list(ours) != list(theirs):
                raise AssertionError(f"{col} {classes}: keys differ")
            checked = _equal(ours, theirs, f"{col} {classes}")
            t_d = _timed(lambda: exs[0].execute(img, msk), repeat)
            t_p = _timed(lambda: exs[1].execute(img, msk), repeat)
            rows.append({"configuration": col, "classes": classes, "keys_checked": checked, "dropin": t_d,
                         "pyradiomics": t_p, "ratio_wall": t_p["median_s"] / t_d["median_s"],
                         "ratio_cpu": t_p["cpu_median_s"] / t_d["cpu_median_s"],
                         "target": 3.0 if classes == "firstorder" else 1.0})
    return rows


# ---- (c)
STAGES = {   # stage: (file name part, function name) whose cumulative CPU time (cProfile) is that stage's
    "read": ("rlnfast/extract.py", "load_inputs"),
    "resample": ("radiomics/imageoperations.py", "resampleImage"),
    "LoG filter": ("radiomics/imageoperations.py", "getLoGImage"),
    "Wavelet filter": ("radiomics/imageoperations.py", "getWaveletImage"),
    "delegated classes": ("rlnfast/features/pyradiomics_classes.py", "_run"),
    "first-order": ("rlnfast/features/firstorder.py", "compute"),
}


def _stages(prof):
    st = pstats.Stats(prof)
    out = dict.fromkeys(STAGES, 0.0)
    for (fname, _, func), (_, _, _, ct, _) in st.stats.items():
        for stage, (part, name) in STAGES.items():
            if func == name and fname.replace("\\", "/").endswith(part):
                out[stage] += ct
    return out


def bench_example_ct(quick, repeat):
    import SimpleITK as sitk

    original = _pyradiomics()
    root = SHARED / "ibsi" / "sts_validation"
    cases = sorted(p for p in root.glob("STS_*") if (p / "CT_image.nii.gz").exists())[: 1 if quick else None]
    rows = []
    for case in cases:
        img_path, msk_path = str(case / "CT_image.nii.gz"), str(case / "CT_mask.nii.gz")
        img, msk = sitk.ReadImage(img_path), sitk.ReadImage(msk_path)
        df = rlnfast.extract(img_path, msk_path, EXAMPLE_CT, backend="cpu")
        ex = original(EXAMPLE_CT)
        checked = _equal(df.iloc[0], ex.execute(img, msk), case.name)
        t_rl = _timed(lambda: rlnfast.extract(img_path, msk_path, EXAMPLE_CT, backend="cpu"), repeat)
        t_pr = _timed(lambda: ex.execute(img_path, msk_path), repeat)
        prof = cProfile.Profile(timer=time.process_time)
        prof.enable()
        rlnfast.extract(img_path, msk_path, EXAMPLE_CT, backend="cpu")
        prof.disable()
        stages = _stages(prof)
        total = pstats.Stats(prof).total_tt
        rows.append({"case": case.name, "size": list(img.GetSize()), "keys_checked": checked, "rlnfast": t_rl,
                     "pyradiomics": t_pr, "ratio_wall": t_pr["median_s"] / t_rl["median_s"],
                     "ratio_cpu": t_pr["cpu_median_s"] / t_rl["cpu_median_s"], "rlnfast_cpu_profiled_s": total,
                     "rlnfast_stages_cpu_s": stages})
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes: 256x256x80 / 200 regions, breast1, one STS")
    ap.add_argument("--pyradiomics-regions", type=int, default=20, help="regions pyradiomics is timed on in (a)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default="a,b,c", help="which parts to run (a, b, c)")
    ap.add_argument("--json", default=None, help="output JSON (default bench/results/bench_pyradiomics.json)")
    args = ap.parse_args(argv)
    parts = set(args.only.split(","))
    res = {}
    if "a" in parts:
        r = res["params_many_regions"] = bench_params_many_regions(args.quick, args.pyradiomics_regions,
                                                                     1 if not args.quick else args.repeat)
        print("(a) Params.yaml, per region (rlnfast: all regions at once; pyradiomics: execute(label=L) loop)")
        print(table([[r["case"], f"{r['rlnfast_per_region']['median_s'] * 1e3:.1f}",
                      f"{r['rlnfast_per_region']['cpu_median_s'] * 1e3:.1f}",
                      f"{r['pyradiomics_per_region']['median_s'] * 1e3:.0f}",
                      f"{r['pyradiomics_per_region']['cpu_median_s'] * 1e3:.0f}",
                      f"{r['ratio_wall']:.0f}x", f"{r['ratio_cpu']:.0f}x", ">= 50x"]],
                    ["case", "rlnfast ms", "rlnfast cpu ms", "pyradiomics ms", "pyradiomics cpu ms", "ratio",
                     "ratio cpu", "target"]))
    if "b" in parts:
        rows = res["dropin_single_label"] = bench_dropin(args.quick, args.repeat)
        print("\n(b) drop-in execute vs pyradiomics execute, one label (images in memory)")
        print(table([[r["configuration"], r["classes"], f"{r['dropin']['median_s'] * 1e3:.0f}",
                      f"{r['pyradiomics']['median_s'] * 1e3:.0f}", f"{r['ratio_wall']:.2f}x",
                      f"{r['ratio_cpu']:.2f}x", f">= {r['target']:g}x"] for r in rows],
                    ["configuration", "classes", "drop-in ms", "pyradiomics ms", "ratio", "ratio cpu", "target"]))
    if "c" in parts:
        rows = res["example_ct_sarcoma"] = bench_example_ct(args.quick, args.repeat)
        print("\n(c) exampleCT.yaml on the sarcoma CTs (files, read included)")
        print(table([[r["case"], "x".join(map(str, r["size"])), f"{r['rlnfast']['median_s']:.2f}",
                      f"{r['pyradiomics']['median_s']:.2f}", f"{r['ratio_wall']:.2f}x", f"{r['ratio_cpu']:.2f}x",
                      ", ".join(f"{k} {v:.2f}" for k, v in sorted(r["rlnfast_stages_cpu_s"].items(),
                                                                   key=lambda kv: -kv[1]) if v > 0)]
                     for r in rows],
                    ["case", "size", "rlnfast s", "pyradiomics s", "ratio", "ratio cpu", "rlnfast stages, cpu s"]))
    print("Every timed configuration checked equal to pyradiomics first (first-order 1e-9, other classes exact).")
    path = write_json("bench_pyradiomics", res, args.json)
    print(f"wrote {path}")
    return res


if __name__ == "__main__":
    main()
