"""Shared benchmark plumbing (bench/README.md describes the method): fixed seeds, warm-up, median and
spread of repeated runs, versions and machine in the JSON result, correctness checked before timing."""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def timeit(fn, repeat=3, warmup=1, sync=None):
    """Median and spread (min, max) in seconds of ``repeat`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
        if sync:
            sync()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - t)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times), "runs": repeat}


def machine() -> dict:
    info = {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count(),
            "processor": platform.processor()}
    try:
        info["cpu_model"] = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except Exception:
        pass
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10)
        if out.returncode == 0:
            info["gpu"] = out.stdout.strip()
    except Exception:
        pass
    versions = {}
    for mod in ("numpy", "scipy", "SimpleITK", "radiomics", "rlnfast", "cupy"):
        try:
            m = __import__(mod)
            versions[mod] = getattr(m, "__version__", getattr(m, "Version", lambda: "?")() if mod == "SimpleITK" else "?")
        except Exception:
            pass
    info["versions"] = versions
    return info


def write_json(name: str, payload: dict, path=None) -> Path:
    path = Path(path) if path else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = dict(payload)
    payload["machine"] = machine()
    payload["timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str))
    os.replace(tmp, path)
    return path


def table(rows, headers) -> str:
    cols = [headers] + [[str(c) for c in r] for r in rows]
    w = [max(len(r[i]) for r in cols) for i in range(len(headers))]
    line = "  ".join(h.ljust(w[i]) for i, h in enumerate(headers))
    out = [line, "  ".join("-" * x for x in w)]
    out += ["  ".join(c.ljust(w[i]) for i, c in enumerate(r)) for r in cols[1:]]
    return "\n".join(out)
