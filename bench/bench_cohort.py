"""A cohort of synthetic CT files: rlnfast extract against the read-only floors and the pyradiomics CLI.

    python bench/bench_cohort.py [--quick] [--cases N] [--jobs J] [--repeat R] [--pyradiomics-cases K]
                                 [--workdir DIR] [--keep]

Data: N seeded synthetic cases written as .nii.gz by SimpleITK (default 40 of 512x512x120 with 25 node-like
regions; --quick: 8 of 256x256x60 with 10 regions). Measured in one run, each a fresh interpreter started with
this interpreter (sys.executable), at the same parallelism J (--jobs, 2):
  floor (SimpleITK)  J spawned processes (bench/_floor.py), once each has imported SimpleITK, read every image
                     and mask with SimpleITK.ReadImage: the reading alone, start-up excluded;
  floor (rlnfast)    the same with rlnfast.io.read_volume (rlnfast's NIfTI reader: libdeflate / ISA-L);
  rlnfast            `rlnfast extract --jobs J`, start-up included (also timed alone for reference):
                     firstorder on Original, Elasticity and DEM plus the fractal class (box sizes at
                     their default, features.md: s_min = the smallest spacing, doubling up to the
                     region's largest extent L);
  pyradiomics        the pyradiomics CLI (`radiomics.scripts`, run by this interpreter, so no activated
                     environment or PATH entry is needed) with --jobs J, firstorder only, on the first K cases
                     (default 1), its time per region scaled to the cohort.
The three first rows are repeated R times (default 3), interleaved, and their medians reported. Correctness
first: rlnfast's original_firstorder values are compared with the pyradiomics CLI output on the cases both ran,
and the fast reader is checked to equal SimpleITK on the first case. Writes bench/results/bench_cohort.json.
Targets: rlnfast within 1.15x of the rlnfast-reader floor; that floor at least 1.7x faster than SimpleITK's.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
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


def read_floor(batch: Path, jobs: int, reader: str) -> tuple[float, float]:
    """Seconds (wall, and the workers' CPU) ``jobs`` warm worker processes take to read the cohort with
    ``reader`` (bench/_floor.py)."""
    out = subprocess.run([sys.executable, str(Path(__file__).resolve().parent / "_floor.py"), reader, str(batch),
                          str(jobs)], check=True, capture_output=True, text=True).stdout
    if reader == "rlnfast" and "rlnfast-nifti" not in out:
        raise SystemExit(f"the rlnfast floor did not use rlnfast's NIfTI reader: {out.strip()}")
    if reader == "rlnfast" and "SimpleITK" in out:
        print(f"note: some files fell back to SimpleITK: {out.strip()}")
    return float(out.split("seconds:")[1].split()[0]), float(out.split("cpu_seconds:")[1].split()[0])


def cpu_of_children() -> float:
    """CPU seconds (user + system) of this process's finished child processes and their descendants."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def startup_seconds() -> float:
    """A fresh interpreter importing what `rlnfast extract` imports (paid by every rlnfast run, not the floors)."""
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import rlnfast.cli, rlnfast.cohort, rlnfast.extract"], check=True)
    return time.perf_counter() - t


def check_reader(batch: Path) -> str:
    """The fast reader equals SimpleITK on the first case (array and geometry); returns the inflater's name."""
    import SimpleITK as sitk

    from rlnfast import nifti
    from rlnfast.io import read_volume

    r = pd.read_csv(batch).iloc[0]
    for name in (r.Image, r.Mask):
        p = str(batch.parent / name)
        img, vol = sitk.ReadImage(p), read_volume(p)
        assert vol.reader == nifti.READER_NAME, vol.reader
        assert np.array_equal(sitk.GetArrayFromImage(img), vol.array)
        assert (vol.spacing, vol.origin, vol.direction) == (img.GetSpacing(), img.GetOrigin(), img.GetDirection())
    return nifti.inflater_name()


def pyradiomics_cmd() -> list:
    """The pyradiomics CLI through this interpreter (its console script is radiomics.scripts:parse_args)."""
    return [sys.executable, "-c", "import sys; from radiomics.scripts import parse_args; sys.exit(parse_args())"]


def have_pyradiomics() -> bool:
    return subprocess.run([sys.executable, "-c", "import radiomics.scripts"], capture_output=True).returncode == 0


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
    ap.add_argument("--jobs", type=int, default=2, help="processes for rlnfast, both floors and pyradiomics")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each floor and of rlnfast (median reported)")
    ap.add_argument("--pyradiomics-cases", type=int, default=1)
    args = ap.parse_args(argv)
    shape, n_nodes, n_cases = ((60, 256, 256), 10, 8) if args.quick else ((120, 512, 512), 25, 40)
    n_cases = args.cases or n_cases
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="rlnfast-bench-cohort-"))
    try:
        t = time.perf_counter()
        batch = make_cohort(work / "data", n_cases, shape, n_nodes)
        print(f"cohort of {n_cases} cases ready in {time.perf_counter() - t:.0f} s ({work})")
        inflater = check_reader(batch)
        params = work / "params.yaml"
        enabled = rlnfast_params(params)
        out = work / "rlnfast.csv"
        cmd = [sys.executable, "-m", "rlnfast", "extract", str(batch), "-p", str(params), "-o", str(out),
               "--out-dir", str(work / "rlnfast_cases"), "--jobs", str(args.jobs), "--quiet"]
        times = {"floor_sitk": [], "floor_rlnfast": [], "rlnfast": [], "startup": []}
        cpu = {"floor_sitk": [], "floor_rlnfast": [], "rlnfast": [], "startup": []}
        for _ in range(args.repeat):
            c = cpu_of_children()
            times["startup"].append(startup_seconds())
            cpu["startup"].append(cpu_of_children() - c)
            for key, reader in (("floor_sitk", "sitk"), ("floor_rlnfast", "rlnfast")):
                wall, cpu_s = read_floor(batch, args.jobs, reader)
                times[key].append(wall)
                cpu[key].append(cpu_s)
            shutil.rmtree(work / "rlnfast_cases", ignore_errors=True)
            c = cpu_of_children()
            t = time.perf_counter()
            subprocess.run(cmd, check=True)
            times["rlnfast"].append(time.perf_counter() - t)
            cpu["rlnfast"].append(cpu_of_children() - c)
        med = {k: statistics.median(v) for k, v in times.items()}
        cmed = {k: statistics.median(v) for k, v in cpu.items()}
        f_sitk, f_new, t_rl, t_start = med["floor_sitk"], med["floor_rlnfast"], med["rlnfast"], med["startup"]
        load = os.getloadavg()[0]
        feats = pd.read_csv(out)
        n_regions = len(feats)
        assert set(feats["diagnostics_Image-original_Reader"]) == {"rlnfast-nifti"}
        res = {"cases": n_cases, "shape": list(shape), "regions": n_regions, "enabled": enabled, "jobs": args.jobs,
               "inflater": inflater, "runs": times, "floor_sitk_s": f_sitk, "floor_rlnfast_s": f_new,
               "rlnfast_s": t_rl, "startup_s": t_start, "rlnfast_over_floor": t_rl / f_new, "sitk_floor_over_rlnfast_floor": f_sitk / f_new,
               "cpu_runs": cpu, "cpu_s": cmed, "rlnfast_over_floor_cpu": cmed["rlnfast"] / cmed["floor_rlnfast"],
               "load_average_1min_at_end": load,
               "targets": {"rlnfast_over_floor": 1.15, "sitk_floor_over_rlnfast_floor": 1.7}}
        pr_row = [f"pyradiomics CLI --jobs {args.jobs}", "n/a (not run or not importable)", "n/a", "n/a"]
        if args.pyradiomics_cases > 0 and have_pyradiomics():
            sub = work / "batch_pyrad.csv"
            pparams = work / "pyrad.yaml"
            pparams.write_text("setting:\n  binWidth: 25\n  label: 1\nimageType:\n  Original: {}\nfeatureClass:\n  firstorder:\n")
            # pyradiomics extracts one label per row: expand the first cases to one row per label
            import SimpleITK as sitk

            rows = []
            for r in pd.read_csv(batch).head(args.pyradiomics_cases).itertuples():
                img, msk = str(batch.parent / r.Image), str(batch.parent / r.Mask)
                labels = np.unique(sitk.GetArrayFromImage(sitk.ReadImage(msk)))
                rows += [{"ID": r.ID, "Image": img, "Mask": msk, "Label": int(l)} for l in labels if l > 0]
            pd.DataFrame(rows).to_csv(sub, index=False)
            pout = work / "pyrad.csv"
            t = time.perf_counter()
            subprocess.run(pyradiomics_cmd() + [str(sub), "-p", str(pparams), "-o", str(pout), "-f", "csv", "--jobs",
                                                str(args.jobs)], check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            t_pr = time.perf_counter() - t
            pr = pd.read_csv(pout)
            mine = feats[feats.ID.isin(pr.ID.unique())]
            merged = pr.merge(mine, left_on=["ID", "Label"], right_on=["ID", "label"], suffixes=("_pr", ""))
            assert len(merged) == len(pr), "pyradiomics and rlnfast disagree on the regions"
            for col in [c for c in pr.columns if c.startswith("original_firstorder_")]:
                np.testing.assert_allclose(merged[col].astype(float), merged[col + "_pr"].astype(float), rtol=1e-9)
            per_region_pr = t_pr / len(pr)
            res.update(pyradiomics_s=t_pr, pyradiomics_regions=len(pr), pyradiomics_s_per_region=per_region_pr,
                       pyradiomics_scaled_s=per_region_pr * n_regions,
                       speedup_per_region=per_region_pr / (t_rl / n_regions))
            pr_row = [f"pyradiomics CLI --jobs {args.jobs}, firstorder only ({len(pr)} regions)", f"{t_pr:.1f}",
                      f"{per_region_pr * 1e3:.0f}", f"{per_region_pr * n_regions / f_new:.0f}x floor (scaled)"]
        j = args.jobs
        c_sitk, c_new, c_rl, c_start = (cmed[k] for k in ("floor_sitk", "floor_rlnfast", "rlnfast", "startup"))
        pr_row.insert(2, "n/a")
        rows = [[f"read-only floor, SimpleITK.ReadImage, {j} processes", f"{f_sitk:.1f}", f"{c_sitk:.1f}", "-",
                 f"{f_sitk / f_new:.2f}x floor (CPU {c_sitk / c_new:.2f}x)"],
                [f"read-only floor, rlnfast reader ({inflater}), {j} processes", f"{f_new:.1f}", f"{c_new:.1f}", "-",
                 "1.00x"],
                [f"rlnfast extract --jobs {j} ({'+'.join(enabled['image_types'])}; {'+'.join(enabled['classes'])})",
                 f"{t_rl:.1f}", f"{c_rl:.1f}", f"{t_rl / n_regions * 1e3:.2f}",
                 f"{t_rl / f_new:.2f}x floor (CPU {c_rl / c_new:.2f}x)"],
                ["  of which start-up: one interpreter importing rlnfast's CLI (the floors exclude it)",
                 f"{t_start:.1f}", f"{c_start:.1f}", "-", "-"],
                pr_row]
        print(table(rows, ["run (median of %d)" % args.repeat, "wall s", "CPU s", "ms per region", "relative"]))
        print(f"rlnfast extract is {t_rl / f_new:.2f}x the rlnfast-reader floor in wall time (target <= 1.15x) and "
              f"{c_rl / c_new:.2f}x in CPU time; that floor is {f_sitk / f_new:.2f}x faster than SimpleITK's "
              f"(target >= 1.7x); load average {load:.1f} on {os.cpu_count()} CPUs (wall figures are fair only on "
              f"an otherwise idle machine; CPU figures are not inflated by load)")
        if "speedup_per_region" in res:
            print(f"rlnfast is {res['speedup_per_region']:.0f}x faster per region than the pyradiomics CLI")
        print(f"wrote {write_json('bench_cohort', res)}")
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
