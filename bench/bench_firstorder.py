"""First-order features for many regions: pyradiomics per region vs a NumPy one-pass vs rlnfast.

    python bench/bench_firstorder.py [--quick] [--pyradiomics-regions N] [--json PATH]
    pytest bench/bench_firstorder.py --benchmark-only      (pytest-benchmark timings of the same calls)

Data: the seeded synthetic CT (512x512x200 int16, 0.7x0.7x2.5 mm, 1000 node-like ellipsoids of 5-15 mm;
--quick: 256x256x80 and 200 nodes) and the real pyradiomics lung2 case. Baselines, measured in the same
run: pyradiomics' RadiomicsFirstOrder on each region cropped to its bounding box + 2 voxels (additionalInfo
off; a sample of regions, its rate scaled to all), and a vectorised NumPy one-pass over all labels.
Entropy is checked equal across the three before anything is timed.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table, timeit, write_json  # noqa: E402

import rlnfast  # noqa: E402
from rlnfast.ops.firstorder import FEATURES  # noqa: E402
from rlnfast.segmentation.synthetic import make_ct  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def numpy_one_pass(image, labels, bin_width=25.0):
    """All labels at once with NumPy: one sort by (label, value), then reduceat for sums and percentiles by
    index. Returns {label: (mean, entropy, p10, p90)} arrays (the features the baseline computes)."""
    lab = labels.ravel()
    sel = lab > 0
    lab = lab[sel]
    val = image.ravel()[sel].astype(np.float64)
    order = np.lexsort((val, lab))
    lab, val = lab[order], val[order]
    starts = np.flatnonzero(np.r_[True, lab[1:] != lab[:-1]])
    counts = np.diff(np.r_[starts, len(lab)])
    ids = lab[starts]
    mean = np.add.reduceat(val, starts) / counts
    vmin = val[starts]
    seg = np.repeat(np.arange(len(starts)), counts)
    low = vmin - np.remainder(vmin, bin_width)
    b = np.floor((val - low[seg]) / bin_width).astype(np.int64)
    key = seg * (1 << 32) + b
    chg = np.r_[True, key[1:] != key[:-1]]
    kstart = np.flatnonzero(chg)
    kcount = np.diff(np.r_[kstart, len(key)])
    kseg = seg[kstart]
    p = kcount / counts[kseg]
    ent = np.zeros(len(starts))
    np.add.at(ent, kseg, -p * np.log2(p + np.spacing(1)))

    def pct(q):
        vi = (counts - 1) * (q / 100.0)
        lo = np.floor(vi).astype(np.int64)
        hi = np.minimum(lo + 1, counts - 1)
        t = vi - lo
        a, bb = val[starts + lo], val[starts + hi]
        return a + (bb - a) * t

    return ids, mean, ent, pct(10), pct(90)


def pyradiomics_per_region(image, labels, spacing, label_ids, bboxes, pad=2):
    import SimpleITK as sitk
    from radiomics import firstorder as prf

    out = {}
    for lab, bb in zip(label_ids, bboxes):
        z0, y0, x0, z1, y1, x1 = (int(v) for v in bb)
        sl = (slice(max(z0 - pad, 0), z1 + pad + 1), slice(max(y0 - pad, 0), y1 + pad + 1),
              slice(max(x0 - pad, 0), x1 + pad + 1))
        img = sitk.GetImageFromArray(image[sl])
        msk = sitk.GetImageFromArray((labels[sl] == lab).astype(np.uint8))
        img.SetSpacing(spacing)
        msk.SetSpacing(spacing)
        fo = prf.RadiomicsFirstOrder(img, msk, label=1, binWidth=25, additionalInfo=False)
        fo.enableAllFeatures()
        out[int(lab)] = fo.execute()
    return out


def run_case(name, image, labels, spacing, n_pyrad, repeat):
    from rlnfast import regions as R

    reg = R.find_regions(labels)
    n = len(reg)
    entropy_col = "original_firstorder_Entropy"
    params = {"setting": {"binWidth": 25}}
    # --- correctness first
    df = rlnfast.extract(image, labels, params, backend="cpu", spacing=spacing)
    ids, mean, ent, p10, p90 = numpy_one_pass(image, labels)
    assert np.array_equal(ids, df["label"].to_numpy())
    np.testing.assert_allclose(ent, df[entropy_col].to_numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(p90, df["original_firstorder_90Percentile"].to_numpy(), rtol=1e-12)
    sample = np.linspace(0, n - 1, min(n_pyrad, n)).astype(int)
    have_pyrad = True
    try:
        pr = pyradiomics_per_region(image, labels, spacing, reg.label[sample], reg.bbox[sample])
        for i in sample:
            lab = int(reg.label[i])
            for f in FEATURES:
                if f == "StandardDeviation":
                    continue
                a, b = float(df[f"original_firstorder_{f}"].iloc[i]), float(pr[lab][f])
                assert (np.isnan(a) and np.isnan(b)) or abs(a - b) <= 1e-9 * max(1.0, abs(b)), (lab, f, a, b)
    except ImportError:
        have_pyrad = False
    # --- timing
    t_cpu = timeit(lambda: rlnfast.extract(image, labels, params, backend="cpu", spacing=spacing), repeat=repeat)
    t_np = timeit(lambda: numpy_one_pass(image, labels), repeat=repeat)
    # --- end to end from SimpleITK images (what a user passes): read through array views, no volume copies
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(image)
    msk = sitk.GetImageFromArray(labels)
    for im in (img, msk):
        im.SetSpacing(tuple(float(v) for v in spacing))
    df_sitk = rlnfast.extract(img, msk, params, backend="cpu")
    np.testing.assert_allclose(df_sitk[entropy_col].to_numpy(), df[entropy_col].to_numpy(), rtol=1e-12)
    t_sitk = timeit(lambda: rlnfast.extract(img, msk, params, backend="cpu"), repeat=repeat)
    res = {"case": name, "shape": list(image.shape), "regions": n, "voxels_in_regions": int(reg.count.sum()),
           "rlnfast_cpu": t_cpu, "rlnfast_cpu_sitk_end_to_end": t_sitk, "numpy_one_pass": t_np,
           "speedup_sitk_end_to_end_vs_numpy": t_np["median_s"] / t_sitk["median_s"]}
    if have_pyrad:
        t_pr = timeit(lambda: pyradiomics_per_region(image, labels, spacing, reg.label[sample], reg.bbox[sample]),
                      repeat=3, warmup=1)
        per_region = t_pr["median_s"] / len(sample)
        res["pyradiomics_per_region"] = dict(t_pr, regions_timed=len(sample), s_per_region=per_region,
                                             scaled_to_all_s=per_region * n)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small synthetic CT (256x256x80, 200 regions)")
    ap.add_argument("--pyradiomics-regions", type=int, default=100, help="regions pyradiomics is timed on")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", default=None, help="output JSON (default bench/results/bench_firstorder.json)")
    args = ap.parse_args(argv)
    shape, n_nodes = ((80, 256, 256), 200) if args.quick else ((200, 512, 512), 1000)
    ct = make_ct(shape=shape, spacing=(0.7, 0.7, 2.5), n_nodes=n_nodes, seed=0)
    results = [run_case(f"synthetic {shape[2]}x{shape[1]}x{shape[0]}", ct.image, ct.labels, ct.spacing,
                        args.pyradiomics_regions, args.repeat)]
    lung = SHARED / "pyradiomics" / "lung2_image.nrrd"
    if lung.exists():
        v = rlnfast.io.read_volume(lung)
        m = rlnfast.io.read_volume(SHARED / "pyradiomics" / "lung2_label.nrrd")
        results.append(run_case("lung2 (real CT)", v.array, m.array.astype(np.int32), v.spacing, 1, args.repeat))
    rows = []
    for r in results:
        n = r["regions"]
        cpu = r["rlnfast_cpu"]["median_s"]
        npy = r["numpy_one_pass"]["median_s"]
        pr = r.get("pyradiomics_per_region", {}).get("scaled_to_all_s")
        e2e = r["rlnfast_cpu_sitk_end_to_end"]["median_s"]
        rows.append([r["case"], n, f"{cpu:.3f}", f"{n / cpu:,.0f}", f"{e2e:.3f}", f"{npy:.3f}", f"{npy / cpu:.1f}x",
                     f"{npy / e2e:.1f}x", f"{pr:.1f}" if pr else "n/a", f"{pr / cpu:,.0f}x" if pr else "n/a"])
        r["speedup_vs_numpy"] = npy / cpu
        if pr:
            r["speedup_vs_pyradiomics"] = pr / cpu
    print(table(rows, ["case", "regions", "rlnfast cpu s (arrays)", "masks/s", "SimpleITK end-to-end s",
                       "numpy 1-pass s", "vs numpy", "end-to-end vs numpy", "pyradiomics s (scaled)",
                       "vs pyradiomics"]))
    print("Entropy (and every first-order feature on the pyradiomics sample) checked equal before timing.")
    path = write_json("bench_firstorder", {"results": results, "targets": {"vs_pyradiomics": 100, "vs_numpy": 5}},
                      args.json)
    print(f"wrote {path}")
    return results


# ---- pytest-benchmark entry points (pytest bench/bench_firstorder.py --benchmark-only)
def _quick_ct():
    return make_ct(shape=(80, 256, 256), spacing=(0.7, 0.7, 2.5), n_nodes=200, seed=0)


def test_rlnfast_cpu(benchmark):
    ct = _quick_ct()
    df = benchmark(rlnfast.extract, ct.image, ct.labels, None, "cpu", spacing=ct.spacing)
    assert len(df) == ct.labels.max()


def test_numpy_one_pass(benchmark):
    ct = _quick_ct()
    ids, *_ = benchmark(numpy_one_pass, ct.image, ct.labels)
    assert len(ids) == ct.labels.max()


if __name__ == "__main__":
    main()
