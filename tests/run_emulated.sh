#!/usr/bin/env bash
# The CUDA kernels in CI without a GPU: build rlnfast with RLNFAST_CUDA=EMULATE (csrc/cuda/*.cu and
# csrc/common/*_kernel.cuh compiled as C++ against csrc/emulate, run on CPU threads, AddressSanitizer +
# UBSan, nvcc-like FMA contraction) into its own build folder and its own copy of the package, then run the
# cuda tests against it. The main install (tests/run_tests.sh) is left untouched.
#   bash tests/run_emulated.sh               # the bounded CI selection (below)
#   bash tests/run_emulated.sh -k full_pipeline test_device_pipeline.py   # the pipeline's all-classes counts case
#   bash tests/run_emulated.sh -k cuda       # every cuda test of the suite (long: tens of minutes on 2 cores)
#   RLNFAST_SANITIZE= bash tests/run_emulated.sh    # without sanitizers (faster)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
BUILD=${RLNFAST_EMULATE_BUILD:-$ROOT/build-emulate}
SAN=${RLNFAST_SANITIZE-address,undefined}
"$PY" -c "import pybind11" 2>/dev/null || "$PY" -m pip install -q "pybind11>=2.11"
command -v cmake >/dev/null 2>&1 || "$PY" -m pip install -q "cmake>=3.18"

PKG="$BUILD/pkg"
rm -rf "$PKG"
mkdir -p "$PKG"
cp -r python/rlnfast "$PKG/"
find "$PKG" -name '_core*.so' -delete
mkdir -p "$PKG/rlnfast/_cupy/include/common"   # the shared headers, as setup.py's build_py ships them
cp csrc/common/*.h csrc/common/*.cuh "$PKG/rlnfast/_cupy/include/common/"
cmake -S . -B "$BUILD/cmake" -DRLNFAST_CUDA=EMULATE -DRLNFAST_SANITIZE="$SAN" -DCMAKE_BUILD_TYPE=Release \
  -DPython_EXECUTABLE="$(command -v "$PY")" -Dpybind11_DIR="$("$PY" -m pybind11 --cmakedir)" \
  -DRLNFAST_INPLACE_DIR="$PKG/rlnfast" >"$BUILD/cmake.log" 2>&1 || { tail -30 "$BUILD/cmake.log"; exit 1; }
cmake --build "$BUILD/cmake" -j "${RLNFAST_BUILD_JOBS:-$(nproc 2>/dev/null || echo 2)}" >"$BUILD/build.log" 2>&1 \
  || { tail -40 "$BUILD/build.log"; exit 1; }
grep "rlnfast:" "$BUILD/cmake.log" || true

if [[ "$SAN" == *address* ]]; then
  # An ASan-instrumented extension in an uninstrumented Python: the runtime must be loaded first, and libstdc++
  # with it (ASan's __cxa_throw interceptor resolves the real one at start-up: a C++ exception thrown by the
  # extension would otherwise abort the process).
  export LD_PRELOAD="$(c++ -print-file-name=libasan.so):$(c++ -print-file-name=libstdc++.so)${LD_PRELOAD:+:$LD_PRELOAD}"
  # Python and NumPy keep memory for the life of the process: leaks are not what this pass looks for.
  export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:${ASAN_OPTIONS:-}"
fi
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
export RLNFAST_EMULATED_RUN=1
cd tests
# CI's bounded selection: the device tests (FMA reproduction, transfer counts, offsets, device mapping) and the
# first-order cuda tests (parity with the reference, golden values). ASan + a thread per CUDA thread make the
# whole cuda selection take tens of minutes on 2 cores. The device pipeline's tests (parity with cpu, traffic
# counts, cohort path) take about 40 s under ASan + UBSan on a busy 2-core machine; its all-classes counts case
# (about 25 s more) runs with -k full_pipeline.
if [ $# -eq 0 ]; then set -- -k "cuda and not full_pipeline" test_cuda_device.py test_firstorder.py test_device_pipeline.py; fi
case " $* " in *".py "*) ;; *) set -- "$@" . ;; esac
PYTHONPATH="$PKG" exec "$PY" -m pytest -q -p no:cacheprovider -m "not seg" "$@"
