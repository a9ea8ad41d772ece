"""GPU timings of the first-order op (cuda and cupy backends) against the C++ cpu backend, same inputs.

    python bench/bench_gpu.py [--quick]

Inputs: the ragged batch of the 1000-region synthetic CT of bench_firstorder.py, as host arrays and as
device arrays (no host round trip). Results are checked equal to the cpu backend before timing; device
work is synchronised inside the timer. Writes bench/results/bench_gpu.json.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table, timeit, write_json  # noqa: E402

from rlnfast import _backends, regions as R  # noqa: E402
from rlnfast.ops.firstorder import firstorder  # noqa: E402
from rlnfast.segmentation.synthetic import make_ct  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    shape, n = ((80, 256, 256), 200) if args.quick else ((200, 512, 512), 1000)
    ct = make_ct(shape=shape, n_nodes=n, seed=0)
    reg = R.find_regions(ct.labels)
    vals, off = R.gather(ct.image, reg)
    ref = firstorder(vals, off, backend="cpu")
    rows, res = [], {"regions": len(reg), "values": int(off[-1])}
    t_cpu = timeit(lambda: firstorder(vals, off, backend="cpu"), repeat=5)
    res["cpu"] = t_cpu
    rows.append(["cpu", "host", f"{t_cpu['median_s'] * 1e3:.2f}", "1.0x", "checked"])
    for name in ("cuda", "cupy"):
        ok, why = _backends.available(name)
        if not ok:
            rows.append([name, "-", "n/a", "n/a", f"absent: {why}"])
            continue
        import cupy as cp

        got = firstorder(vals, off, backend=name)
        np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-9, equal_nan=True)
        dv, do = cp.asarray(vals), cp.asarray(off)
        got_d = firstorder(dv, do, backend=name)
        np.testing.assert_allclose(got_d, ref, rtol=1e-9, atol=1e-9, equal_nan=True)
        sync = cp.cuda.Device().synchronize
        for kind, fn in (("host", lambda: firstorder(vals, off, backend=name)),
                         ("device", lambda: firstorder(dv, do, backend=name))):
            t = timeit(fn, repeat=10, warmup=2, sync=sync)
            res[f"{name}_{kind}"] = t
            rows.append([name, kind, f"{t['median_s'] * 1e3:.2f}", f"{t_cpu['median_s'] / t['median_s']:.1f}x", "checked"])
    print(table(rows, ["backend", "input", "firstorder ms", "vs cpu", "result"]))
    print(f"wrote {write_json('bench_gpu', res)}")


if __name__ == "__main__":
    main()
