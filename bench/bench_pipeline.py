"""The device-resident pipeline (issue 12 item 2): ``rlnfast.extract(..., backend="cuda")`` on the seeded
synthetic 512x512x200 CT with 1000 nodes (--quick: 256x256x80, 200 nodes), Original + Elasticity + DEM
first-order plus every fractal feature, against

* the floor: copying the CT and the label map (smallest integer type) to the device, timed with CuPy when it is
  installed (else the pipeline's own load, which adds the per-label stats kernel);
* the cpu backend (same process, same call).

    python bench/bench_pipeline.py [--quick] [--repeat 3] [--json PATH]

The cuda table is checked equal to the cpu table (1e-9 relative) before timing, and the device traffic of one
case (rlnfast.device_stats: uploads, downloads, synchronisations, allocations when warm) is printed.
Timings need a quiet machine with a GPU (bench/gpu_check.sh runs this).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table, timeit, write_json  # noqa: E402

import rlnfast  # noqa: E402
from rlnfast import _backends, _device_pipeline  # noqa: E402

PARAMS = {"imageType": {"Original": {}, "Elasticity": {}, "DEM": {}},
          "featureClass": {"firstorder": None, "fractal": None}}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    ok, why = _backends.available("cuda")
    if not ok:
        raise SystemExit(f"backend cuda not available: {why}")
    from rlnfast.segmentation.synthetic import make_ct

    shape, n = ((80, 256, 256), 200) if args.quick else ((200, 512, 512), 1000)
    ct = make_ct(shape=shape, spacing=(0.7, 0.7, 2.5), n_nodes=n, seed=0)
    image, labels, spacing = ct.image, ct.labels, ct.spacing

    def run(backend):
        return rlnfast.extract(image, labels, PARAMS, spacing=spacing, backend=backend)

    ref = run("cpu")
    rlnfast.device_stats(reset=True)
    got = run("cuda")
    first = rlnfast.device_stats(reset=True)
    run("cuda")
    warm = rlnfast.device_stats(reset=True)
    cols = [c for c in ref.columns if not c.startswith("diagnostics_") and c != "label"]
    a, b = got[cols].to_numpy(float), ref[cols].to_numpy(float)
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True)
    print(f"cuda == cpu to 1e-9 on {len(cols)} feature columns x {len(ref)} regions")
    print(f"device traffic, first case: {first}\ndevice traffic, warm case:  {warm}")

    small, _ = _device_pipeline._small_labels(labels)
    try:
        import cupy as cp

        def copy():
            cp.asarray(image)
            cp.asarray(small)

        floor = timeit(copy, args.repeat, sync=lambda: cp.cuda.Device().synchronize())
        floor_what = "CuPy copy of CT + labels"
    except Exception:
        floor = timeit(lambda: _device_pipeline.load(image, labels), args.repeat)
        floor_what = "pipeline load (copy + label stats)"
    t_cuda = timeit(lambda: run("cuda"), args.repeat)
    t_cpu = timeit(lambda: run("cpu"), max(1, args.repeat // 2))
    rows = [["floor: " + floor_what, f"{floor['median_s'] * 1e3:.1f}", "1.0x"],
            ["extract cuda", f"{t_cuda['median_s'] * 1e3:.1f}", f"{t_cuda['median_s'] / floor['median_s']:.1f}x"],
            ["extract cpu", f"{t_cpu['median_s'] * 1e3:.1f}", f"{t_cpu['median_s'] / floor['median_s']:.1f}x"]]
    print(table(rows, ["what", "ms (median)", "x floor"]))
    write_json("bench_pipeline", {"shape": shape, "regions": len(ref), "floor": floor, "floor_what": floor_what,
                                  "cuda": t_cuda, "cpu": t_cpu, "traffic_first": first, "traffic_warm": warm},
               args.json)


if __name__ == "__main__":
    main()
