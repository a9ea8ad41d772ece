"""Node size (ShortAxisDiameter, LongAxisDiameter, AxialSlices) of every region: rlnfast's C++ kernel against
the NumPy/SciPy reference run region by region.

    python bench/bench_size.py [--quick] [--repeat N] [--json PATH]

Data: the seeded synthetic CT of bench_fractal.py (512x512x200, 0.7x0.7x2.5 mm, 1000 node-like ellipsoids of
5-15 mm; --quick: 256x256x80, 200 nodes). Method (bench/README.md): the kernel's results are checked against
the reference (relative 1e-9, slices equal) on every region first; rlnfast is timed as median (min-max) of
--repeat runs after a warm-up, the reference once. Timed on the rlnfast side: packing the mask crops from the
label map and the size kernel. The cuda and cupy backends run the same host kernel (rlnfast.build_info()).
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

from rlnfast.ops import fractal as fr  # noqa: E402
from rlnfast.ops import size as op  # noqa: E402
from rlnfast.reference import size as ref  # noqa: E402


def make_case(quick: bool):
    from rlnfast.segmentation.synthetic import make_ct

    shape, n_nodes = ((80, 256, 256), 200) if quick else ((200, 512, 512), 1000)
    return make_ct(shape=shape, spacing=(0.7, 0.7, 2.5), n_nodes=n_nodes, seed=0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small synthetic CT (256x256x80, 200 regions)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", default=None, help="output JSON (default bench/results/bench_size.json)")
    args = ap.parse_args(argv)
    from rlnfast.regions import find_regions

    ct = make_case(args.quick)
    sp = ct.spacing[::-1]
    regions = find_regions(ct.labels)
    n = len(regions)

    def run():
        crops = fr.crops_from_label_map(ct.labels, regions.label, regions.bbox, sp)
        return op.size_of_crops(crops, sp, "cpu")

    got = run()
    t0 = time.perf_counter()
    want = [ref.size_one(ct.labels[regions.bbox_slices(i)] == regions.label[i], sp) for i in range(n)]
    t_ref = time.perf_counter() - t0
    for f in op.FEATURES:
        w = np.array([x[f] for x in want], np.float64)
        assert np.allclose(got.features[f], w, rtol=1e-9, atol=0), f
    assert got.short_slice.tolist() == [x["short_slice"] for x in want]
    total = timeit(run, repeat=args.repeat)
    results = {"load_average_1_5_15": list(os.getloadavg()), "regions": n,
               "case": f"synthetic {ct.image.shape[2]}x{ct.image.shape[1]}x{ct.image.shape[0]}",
               "short_axis_mm_range": [float(np.min(got.features["ShortAxisDiameter"])),
                                       float(np.max(got.features["ShortAxisDiameter"]))],
               "reference_s": t_ref, "rlnfast_cpu": total, "speedup_vs_reference": t_ref / total["median_s"]}
    print(table([["cpu", f"{total['median_s'] * 1e3:.1f} ({total['min_s'] * 1e3:.1f}-{total['max_s'] * 1e3:.1f})",
                  f"{t_ref:.2f}", f"{t_ref / total['median_s']:.0f}x"]],
                ["backend", "crops + size, ms median (min-max)", "reference s", "speedup"]))
    print(f"{n} regions checked equal to the reference before timing; short axes "
          f"{results['short_axis_mm_range'][0]:.1f}-{results['short_axis_mm_range'][1]:.1f} mm; load average "
          f"{results['load_average_1_5_15']} on {os.cpu_count()} CPUs (shared: wall-clock timings)")
    path = write_json("bench_size", {"results": results}, args.json)
    print(f"wrote {path}")
    return results


if __name__ == "__main__":
    main()
