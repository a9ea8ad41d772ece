"""DEM (differential elasticity map) of a CT: rlnfast against SciPy's formulation, whole volume and regions.

    python bench/bench_dem.py [--quick] [--repeat N] [--json PATH] [--gpu]

Data: the seeded synthetic CT of bench_firstorder.py (512x512x200 int16, 0.7x0.7x2.5 mm, 1000 node-like
regions; --quick: 256x256x80 and 200 regions), sigma = 1 mm (radius 6, 6, 2 voxels along x, y, z).

Rows (each: correctness checked first, then warm-up and the median of --repeat runs):
  * SciPy formulation (features.md): E in NumPy, then scipy.ndimage.gaussian_filter with order 1 along each
    axis (mode 'nearest', truncate 4), divided by the spacing, magnitude times sigma. Single-threaded.
  * rlnfast cpu, whole volume: the same map (checked to 1e-9 of its maximum), float64 and float32 output.
  * rlnfast cpu, region mode: every region's bounding box plus halo in one call, then each region's voxels
    (rlnfast.ops.dem.dem_regions + region_values); checked equal to the whole-volume map inside every region.
  * --gpu (or when a GPU backend is usable): cuda and cupy whole volume and regions (host arrays in and out,
    and device arrays), the cupyx.scipy.ndimage formulation on the device, and the copy floor (read the
    int16 CT once, write the float32 map once) with the device bandwidth it implies.
Targets on the 2-core development machine (issue 3): whole volume >= 4x SciPy; region mode for 1000 regions
>= 20x the whole-volume SciPy time.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table, timeit, write_json  # noqa: E402

from rlnfast import _backends  # noqa: E402
from rlnfast import regions as rg  # noqa: E402
from rlnfast.ops import dem as dop  # noqa: E402
from rlnfast.reference import dem as ref  # noqa: E402

TARGETS = {"whole_volume_vs_scipy": 4.0, "regions_vs_whole_volume_scipy": 20.0}


def synthetic_ct(shape, n_nodes, spacing=(0.7, 0.7, 2.5), seed=0):
    """(image int16, labels, spacing xyz): rlnfast.segmentation.synthetic.make_ct if present, else a local one."""
    try:
        from rlnfast.segmentation.synthetic import make_ct
    except ImportError:
        make_ct = None
    if make_ct is not None:
        ct = make_ct(shape=shape, spacing=spacing, n_nodes=n_nodes, seed=seed)
        return ct.image, ct.labels, ct.spacing
    rng = np.random.default_rng(seed)   # fallback: noise on soft tissue with cubic "nodes"
    img = (40 + rng.normal(0, 12, shape)).astype(np.int16)
    lab = np.zeros(shape, np.int32)
    for i in range(n_nodes):
        c = [rng.integers(3, s - 8) for s in shape]
        lab[c[0]:c[0] + 3, c[1]:c[1] + 8, c[2]:c[2] + 8] = i + 1
    return img, lab, spacing


def scipy_dem(img, spacing_zyx, sigma=1.0):
    try:
        import scipy.ndimage  # noqa: F401
    except ImportError:   # a GPU machine without SciPy: the NumPy reference (equal to 1e-10) checks instead
        return ref.dem(img, spacing_zyx, sigma=sigma)
    return ref.dem_scipy(img, spacing_zyx, sigma=sigma)


def cpu_regions(img, regions, spacing_xyz, backend="cpu"):
    crops = dop.dem_regions(img, regions, spacing=spacing_xyz, backend=backend)
    return dop.region_values(crops, regions), crops


def gpu_rows(img, regions, spacing_xyz, ref_map, repeat, results):
    """CUDA / CuPy timings against cupyx.scipy.ndimage and the device copy floor."""
    try:
        import cupy as cp
        from cupyx.scipy import ndimage as cnd
    except Exception as exc:  # pragma: no cover - GPU machines only
        print(f"(GPU rows skipped: {exc})")
        return
    sp = tuple(float(s) for s in spacing_xyz[::-1])
    sync = cp.cuda.get_current_stream().synchronize
    scale = float(np.abs(ref_map).max())
    d_img = cp.asarray(img)
    results["device"] = cp.cuda.runtime.getDeviceProperties(0)["name"].decode()

    # the floor: read int16 once, write float32 once
    out32 = cp.empty(img.shape, cp.float32)
    t = timeit(lambda: out32.__setitem__(Ellipsis, d_img), repeat=max(repeat, 5), sync=sync)
    nbytes = img.size * (2 + 4)
    results["gpu_copy_floor"] = dict(t, bytes=nbytes, GBps=nbytes / t["median_s"] / 1e9)

    def cupyx_dem():
        h = cp.clip(d_img.astype(cp.float32), -1000, 3071)
        x = h + 1000
        rho = cp.where(x < 930, 1.025793065681423 * x - 5.680404011488714,
                       cp.where(x < 1098, 0.9082709691264 * x + 103.6151457847139,
                                cp.where(x < 1260, 0.5108369316599 * x + 539.9977189228704,
                                         0.6625370912451 * x + 348.8555178455294)))
        rho = cp.maximum(rho, 1)
        e = (1000 * ((rho / ref.reference_density()) ** 2 - 1)).astype(cp.float32)
        acc = None
        for a in range(3):
            order = [0, 0, 0]
            order[a] = 1
            d = cnd.gaussian_filter(e, [1.0 / s for s in sp], order=order, mode="nearest", truncate=4.0) / sp[a]
            acc = d * d if acc is None else acc + d * d
        return cp.sqrt(acc)

    got = cupyx_dem().get()
    err = float(np.abs(got - ref_map).max() / scale)
    results["cupyx_scipy_ndimage"] = dict(timeit(cupyx_dem, repeat=repeat, sync=sync), max_err_rel=err)

    for be in ("cuda", "cupy"):
        ok, why = _backends.available(be)
        if not ok:
            results[f"{be}_whole"] = {"skipped": why}
            continue
        host = dop.dem_array(img, sp, backend=be, dtype=np.float32)
        err = float(np.abs(host - ref_map).max() / scale)
        assert err <= 1e-5, (be, err)
        results[f"{be}_whole_host"] = dict(
            timeit(lambda: dop.dem_array(img, sp, backend=be, dtype=np.float32), repeat=repeat), max_err_rel=err)
        if be == "cuda":
            core = _backends.core()
            box = np.array([[0, 0, 0, img.shape[0] - 1, img.shape[1] - 1, img.shape[2] - 1]], np.int64)
            out = cp.empty(img.size, cp.float32)

            def dev():
                core.cuda.dem(d_img.data.ptr, np.dtype(d_img.dtype), *img.shape, list(sp), 1.0, -1000.0, 3071.0,
                              ref.reference_density(), 2.0, box, True, out.data.ptr,
                              cp.cuda.get_current_stream().ptr)
        else:
            from rlnfast._cupy.dem import dem_boxes as cupy_boxes

            box = np.array([[0, 0, 0, img.shape[0] - 1, img.shape[1] - 1, img.shape[2] - 1]], np.int64)

            def dev():
                cupy_boxes(d_img, sp, 1.0, (-1000.0, 3071.0, ref.reference_density(), 2.0), box, True)
        results[f"{be}_whole_device"] = timeit(dev, repeat=repeat, sync=sync)
        results[f"{be}_regions_host"] = timeit(lambda: cpu_regions(img, regions, spacing_xyz, backend=be),
                                               repeat=repeat)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small synthetic CT (256x256x80, 200 regions)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", default=None, help="output JSON (default bench/results/bench_dem.json)")
    ap.add_argument("--gpu", action="store_true", help="add the GPU rows (also automatic when a GPU is usable)")
    ap.add_argument("--no-scipy-timing", action="store_true",
                    help="check against SciPy once but do not time it (GPU machines)")
    args = ap.parse_args(argv)
    shape, n_nodes = ((80, 256, 256), 200) if args.quick else ((200, 512, 512), 1000)
    img, lab, spacing_xyz = synthetic_ct(shape, n_nodes)
    sp = tuple(float(s) for s in spacing_xyz[::-1])
    regions = rg.find_regions(lab)
    n = len(regions)
    print(f"synthetic CT {shape[2]}x{shape[1]}x{shape[0]} int16, spacing {spacing_xyz} mm, {n} regions, "
          f"sigma 1 mm, radius (z, y, x) {dop.filter_radius(sp, 1.0)}; cpu threads: "
          f"{_backends.core().cpu.num_threads()}")

    # ---- correctness before timing
    ref_map = scipy_dem(img, sp)
    scale = float(np.abs(ref_map).max())
    cpu_map = dop.dem_array(img, sp, backend="cpu")
    err = float(np.abs(cpu_map - ref_map).max() / scale)
    assert err <= 1e-9, f"cpu DEM differs from SciPy by {err:g} of the maximum"
    (vals, offs), crops = cpu_regions(img, regions, spacing_xyz)
    v_whole, o_whole = rg.gather(cpu_map, regions)
    assert np.array_equal(offs, o_whole) and np.array_equal(vals, v_whole), "region mode != whole volume"
    crop_voxels = int(crops.offsets[-1])
    del cpu_map

    results = {"shape_zyx": list(shape), "spacing_xyz": list(spacing_xyz), "regions": n,
               "voxels_in_regions": int(regions.count.sum()), "crop_voxels": crop_voxels,
               "max_err_cpu_vs_scipy_rel": err, "targets": TARGETS}
    if not args.no_scipy_timing:
        results["scipy_whole"] = timeit(lambda: scipy_dem(img, sp), repeat=args.repeat)
    results["cpu_whole_f64"] = timeit(lambda: dop.dem_array(img, sp, backend="cpu"), repeat=args.repeat)
    results["cpu_whole_f32"] = timeit(lambda: dop.dem_array(img, sp, backend="cpu", dtype=np.float32),
                                      repeat=args.repeat)
    results["cpu_regions"] = timeit(lambda: cpu_regions(img, regions, spacing_xyz), repeat=max(args.repeat, 5))
    results["cpu_regions_op_only"] = timeit(lambda: dop.dem_regions(img, regions, spacing=spacing_xyz, backend="cpu"),
                                            repeat=max(args.repeat, 5))
    gpu = args.gpu or any(_backends.available(b)[0] for b in ("cuda", "cupy"))
    if gpu:
        gpu_rows(img, regions, spacing_xyz, ref_map, args.repeat, results)

    rows = []
    base = results.get("scipy_whole", {}).get("median_s")

    def row(name, key, what):
        r = results.get(key)
        if not r or "median_s" not in r:
            return
        t = r["median_s"]
        rows.append([name, what, f"{t:.3f}", f"{r['min_s']:.3f}-{r['max_s']:.3f}",
                     f"{base / t:.1f}x" if base else "n/a"])

    row("SciPy formulation (1 thread)", "scipy_whole", "whole volume")
    row("rlnfast cpu float64", "cpu_whole_f64", "whole volume")
    row("rlnfast cpu float32 out", "cpu_whole_f32", "whole volume")
    row(f"rlnfast cpu, {n} regions", "cpu_regions", "crops + region values")
    row(f"rlnfast cpu, {n} regions", "cpu_regions_op_only", "crops only")
    row("cupyx.scipy.ndimage (float32)", "cupyx_scipy_ndimage", "whole volume")
    for be in ("cuda", "cupy"):
        row(f"rlnfast {be}, host arrays", f"{be}_whole_host", "whole volume")
        row(f"rlnfast {be}, device arrays", f"{be}_whole_device", "whole volume")
        row(f"rlnfast {be}, {n} regions", f"{be}_regions_host", "crops + region values")
    row("device copy floor (int16 in, f32 out)", "gpu_copy_floor", "whole volume")
    print(table(rows, ["implementation", "what", "median s", "min-max s", "vs SciPy whole"]))
    if base:
        results["speedup_whole_vs_scipy"] = base / results["cpu_whole_f64"]["median_s"]
        results["speedup_regions_vs_whole_scipy"] = base / results["cpu_regions"]["median_s"]
        ok_w = results["speedup_whole_vs_scipy"] >= TARGETS["whole_volume_vs_scipy"]
        ok_r = results["speedup_regions_vs_whole_scipy"] >= TARGETS["regions_vs_whole_volume_scipy"]
        print(f"targets: whole volume >= {TARGETS['whole_volume_vs_scipy']:.0f}x SciPy: "
              f"{results['speedup_whole_vs_scipy']:.1f}x ({'met' if ok_w else 'MISSED'}); "
              f"{n} regions >= {TARGETS['regions_vs_whole_volume_scipy']:.0f}x whole-volume SciPy: "
              f"{results['speedup_regions_vs_whole_scipy']:.1f}x ({'met' if ok_r else 'MISSED'})")
    if "gpu_copy_floor" in results:
        f = results["gpu_copy_floor"]
        print(f"device copy floor: {f['median_s'] * 1e3:.2f} ms ({f['GBps']:.0f} GB/s)")
    print(f"checked first: cpu whole volume vs SciPy max |diff| = {err:.2e} of the maximum DEM; region mode equal "
          f"to the whole-volume map in all {n} regions ({crop_voxels} crop voxels)")
    path = write_json("bench_dem", results, args.json)
    print(f"wrote {path}")
    return results


if __name__ == "__main__":
    main()
