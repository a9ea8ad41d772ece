#!/usr/bin/env bash
# One call on a lent GPU machine: build rlnfast for that GPU, run every cuda/cupy test and the GPU
# benchmarks, print one summary. Needs CuPy, PyTorch, CMake, pybind11 and nvcc; no network, no SimpleITK
# (tests that need it are skipped by selection). Usage (from the repository root):
#   bash bench/gpu_check.sh            # OUT=<folder> to keep logs and JSON there
# Later issues add their checks in the marked blocks below. Everything must finish within 8 minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/rlnfast-gpu-check}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
declare -A STATUS

ARCH=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '. ')
ARCH=${ARCH:-90}
echo "== build for sm_${ARCH}"
PYBIND11_DIR=$("$PY" -c "import pybind11; print(pybind11.get_cmake_dir())")
if cmake -S . -B build-gpu -G Ninja -DRLNFAST_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$ARCH" \
     -DPython_EXECUTABLE="$(command -v "$PY")" -Dpybind11_DIR="$PYBIND11_DIR" \
     -DRLNFAST_INPLACE_DIR="$PWD/python/rlnfast" >"$OUT/build.log" 2>&1 \
   && cmake --build build-gpu -j 16 >>"$OUT/build.log" 2>&1; then
  STATUS[build]=ok
else
  STATUS[build]=FAILED; tail -40 "$OUT/build.log"
fi
export PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -m rlnfast info | tee "$OUT/info.txt"

run_step() {  # name, command...
  local name=$1; shift
  echo "== $name"
  if timeout 300 "$@" 2>&1 | tee "$OUT/$name.log"; then STATUS[$name]=ok; else STATUS[$name]=FAILED; fi
}

# ---- FIRSTORDER block: parity of cuda and cupy against the NumPy reference, device-array inputs, timings
# (golden-file tests need ../shared and SimpleITK, which do not travel: the parity tests cover the kernels)
run_step firstorder_tests "$PY" -m pytest -q -p no:cacheprovider tests/test_firstorder.py -k "(cuda or cupy) and not golden" -rs
run_step regions_tests "$PY" -m pytest -q -p no:cacheprovider tests/test_regions.py -k "cuda or cupy" -rs
run_step firstorder_bench "$PY" bench/bench_gpu.py
# ---- end FIRSTORDER block

# ---- DEM block (issue 3): cuda/cupy E and DEM against the NumPy reference (float32 kernels: 1e-5 of the
# maximum DEM), region mode equal to the whole-volume map, then the benchmark (CUDA, CuPy, cupyx.scipy.ndimage,
# device copy floor; SciPy checked once, not timed)
run_step dem_tests "$PY" -m pytest -q -p no:cacheprovider tests/test_dem.py -k "cuda or cupy" -rs
run_step dem_bench "$PY" bench/bench_dem.py --gpu --no-scipy-timing --repeat 3 --json "$OUT/bench_dem_gpu.json"
# ---- end DEM block

# ---- FRACTAL block (issue 4): cuda/cupy box counts and DBC counts exactly equal to the NumPy reference
# (analytic shapes, random label maps; dimensions to 1e-9), then the timings of all fractal features for the
# 1000-region CT on cpu, cuda and cupy (the bench checks cuda/cupy counts equal to cpu before timing)
run_step fractal_tests "$PY" -m pytest -q -p no:cacheprovider tests/test_fractal.py -k "cuda or cupy" -rs
run_step fractal_bench "$PY" bench/bench_fractal.py --backends cpu,cuda,cupy --repeat 3 --json "$OUT/bench_fractal_gpu.json"
# ---- end FRACTAL block

# ---- DEVICE block (issue 12): unfused multiply-adds (the binCount FMA case), device selection and offsets,
# device_stats counts, DEM float64 parity with cpu, CuPy cache key; the same file CI runs on the emulated build
run_step device_tests "$PY" -m pytest -q -p no:cacheprovider tests/test_cuda_device.py -rs
# ---- end DEVICE block

# ---- PIPELINE block (issue 12 item 2): the device-resident pipeline of extract(backend="cuda"): parity with cpu
# and traffic counts (the same tests CI runs emulated), then the 1000-region 512x512x200 CT with Original, E and
# DEM first-order plus fractal: extract time against the copy of CT + labels to the device and the cpu backend
run_step pipeline_tests "$PY" -m pytest -q -p no:cacheprovider tests/test_device_pipeline.py -rs
run_step pipeline_bench "$PY" bench/bench_pipeline.py --repeat 3 --json "$OUT/bench_pipeline_gpu.json"
# ---- end PIPELINE block

cp bench/results/*.json "$OUT/" 2>/dev/null || true
echo
echo "== summary"
for k in "${!STATUS[@]}"; do printf '%-24s %s\n' "$k" "${STATUS[$k]}"; done | sort
grep -h -E "passed|failed" "$OUT"/*tests.log 2>/dev/null | tail -5
for k in "${!STATUS[@]}"; do [ "${STATUS[$k]}" = ok ] || exit 1; done
