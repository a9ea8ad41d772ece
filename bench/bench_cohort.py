"""A cohort of synthetic CT files: rlnfast extract vs the read-only floor vs the pyradiomics CLI.

    python bench/bench_cohort.py [--quick] [--cases N] [--workdir DIR] [--keep]

Data: N seeded synthetic cases written as .nii.gz (default 40 of 512x512x120 with 25 node-like regions;
--quick: 8 of 256x256x60 with 10 regions). Measured in one run:
  floor       a plain loop that only reads every image and mask with SimpleITK (the I/O floor);
  rlnfast     `rlnfast extract --jobs 2` on all cases: firstorder on Original, Elasticity and DEM plus the
              fractal class (the image types and classes available in this build; fractal box sizes at
              their default, features.md: s_min = the smallest spacing, doubling up to the region's largest
              extent L);
  pyradiomics `pyradiomics --jobs 2` (firstorder only) on the first 2 cases, its time per region scaled to
              the cohort.
Correctness first: rlnfast's original_firstorder values are compared with the pyradiomics CLI output on the
cases both ran. Writes bench/results/bench_cohort.json.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table, write_json  # noqa: E402


def make_cohort(folder: Path, n_cases: int, shape, n_nodes: int) -> Path:
    import SimpleITK as sitk

    from rlnfast.segmentation.synthetic import make_ct

    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n_cases):
        img_p, msk_p = folder / f"case{i:03d}_ct.nii.gz", folder / f"case{i:03d}_mask.nii.gz"
        if not (img_p.exists() and msk_p.exists()):
            ct = make_ct(shape=shape, spacing=(0.7, 0.7, 2.5), n_nodes=n_nodes, seed=1000 + i)
            img, lab = ct.to_sitk()
            sitk.WriteImage(img, str(img_p), True)
            sitk.WriteImage(sitk.Cast(lab, sitk.sitkUInt8), str(msk_p), True)
        rows.append({"ID": f"case{i:03d}", "Image": img_p.name, "Mask": msk_p.name})
    batch = folder / "batch.csv"
    pd.DataFrame(rows).to_csv(batch, index=False)
    return batch


def read_floor(batch: Path) -> float:
    import SimpleITK as sitk

    df = pd.read_csv(batch)
    t = time.perf_counter()
    for _, r in df.iterrows():
        sitk.GetArrayFromImage(sitk.ReadImage(str(batch.parent / r.Image)))
        sitk.GetArrayFromImage(sitk.ReadImage(str(batch.parent / r.Mask)))
    return time.perf_counter() - t


def rlnfast_params(path: Path) -> dict:
    itypes = ["Original", "Elasticity", "DEM"]
    classes = ["firstorder", "fractal"]
    text = "setting:\n  binWidth: 25\nimageType:\n" + "".join(f"  {t}: {{}}\n" for t in itypes)
    text += "featureClass:\n" + "".join(f"  {c}:\n" for c in classes)
    path.write_text(text)
    return {"image_types": itypes, "classes": classes}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--cases", type=int, default=None)
    ap.add_argument("--workdir", default=None, help="where the cohort is written (reused if present)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    shape, n_nodes, n_cases = ((60, 256, 256), 10, 8) if args.quick else ((120, 512, 512), 25, 40)
    n_cases = args.cases or n_cases
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="rlnfast-bench-cohort-"))
    try:
        t = time.perf_counter()
        batch = make_cohort(work / "data", n_cases, shape, n_nodes)
        print(f"cohort of {n_cases} cases ready in {time.perf_counter() - t:.0f} s ({work})")
        params = work / "params.yaml"
        enabled = rlnfast_params(params)
        floor = read_floor(batch)
        out = work / "rlnfast.csv"
        shutil.rmtree(work / "rlnfast_cases", ignore_errors=True)
        cmd = [sys.executable, "-m", "rlnfast", "extract", str(batch), "-p", str(params), "-o", str(out),
               "--out-dir", str(work / "rlnfast_cases"), "--jobs", str(args.jobs), "--quiet"]
        t = time.perf_counter()
        subprocess.run(cmd, check=True)
        t_rl = time.perf_counter() - t
        feats = pd.read_csv(out)
        n_regions = len(feats)
        res = {"cases": n_cases, "shape": list(shape), "regions": n_regions, "enabled": enabled,
               "read_floor_s": floor, "rlnfast_s": t_rl, "rlnfast_over_floor": t_rl / floor}
        pr_row = ["pyradiomics (2 cases, firstorder)", "n/a", "n/a", "n/a"]
        if shutil.which("pyradiomics"):
            sub = work / "batch2.csv"
            pd.read_csv(batch).head(2).assign(Image=lambda d: [str(batch.parent / p) for p in d.Image],
                                               Mask=lambda d: [str(batch.parent / p) for p in d.Mask]).to_csv(sub, index=False)
            pparams = work / "pyrad.yaml"
            pparams.write_text("setting:\n  binWidth: 25\n  label: 1\nimageType:\n  Original: {}\nfeatureClass:\n  firstorder:\n")
            # pyradiomics extracts one label per row: expand the batch to one row per label
            rows = []
            for _, r in pd.read_csv(sub).iterrows():
                import SimpleITK as sitk

                labels = np.unique(sitk.GetArrayFromImage(sitk.ReadImage(r.Mask)))
                rows += [{"ID": r.ID, "Image": r.Image, "Mask": r.Mask, "Label": int(l)} for l in labels if l > 0]
            pd.DataFrame(rows).to_csv(sub, index=False)
            pout = work / "pyrad.csv"
            t = time.perf_counter()
            subprocess.run(["pyradiomics", str(sub), "-p", str(pparams), "-o", str(pout), "-f", "csv", "--jobs",
                            str(args.jobs)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            t_pr = time.perf_counter() - t
            pr = pd.read_csv(pout)
            mine = feats[feats.ID.isin(pr.ID.unique())]
            merged = pr.merge(mine, left_on=["ID", "Label"], right_on=["ID", "label"], suffixes=("_pr", ""))
            assert len(merged) == len(pr), "pyradiomics and rlnfast disagree on the regions"
            for col in [c for c in pr.columns if c.startswith("original_firstorder_")]:
                np.testing.assert_allclose(merged[col].astype(float), merged[col + "_pr" if col + "_pr" in merged else col].astype(float), rtol=1e-9)
            per_region_pr = t_pr / len(pr)
            res.update(pyradiomics_s=t_pr, pyradiomics_regions=len(pr), pyradiomics_s_per_region=per_region_pr,
                       pyradiomics_scaled_s=per_region_pr * n_regions,
                       speedup_per_region=per_region_pr / (t_rl / n_regions))
            pr_row = [f"pyradiomics CLI ({len(pr)} regions, firstorder)", f"{t_pr:.1f}", f"{per_region_pr * 1e3:.1f}",
                      f"{per_region_pr * n_regions:.0f} (scaled)"]
        rows = [["read-only floor (SimpleITK)", f"{floor:.1f}", "-", "1.00x"],
                [f"rlnfast extract --jobs {args.jobs} ({'+'.join(enabled['image_types'])}; {'+'.join(enabled['classes'])})",
                 f"{t_rl:.1f}", f"{t_rl / n_regions * 1e3:.2f}", f"{t_rl / floor:.2f}x floor"],
                pr_row]
        print(table(rows, ["run", "seconds", "ms per region", "relative"]))
        if "speedup_per_region" in res:
            print(f"rlnfast is {res['speedup_per_region']:.0f}x faster per region than the pyradiomics CLI "
                  f"(target 50x) and {t_rl / floor:.2f}x the read-only floor (target <= 1.3x)")
        print(f"wrote {write_json('bench_cohort', res)}")
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
