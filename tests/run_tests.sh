#!/usr/bin/env bash
# The README's test command and what .ci/run calls: install what the tests need with pip, build and install
# rlnfast ONCE (not again while its sources and CUDA settings are unchanged), then run the test suite.
# Extra pytest arguments pass through: bash tests/run_tests.sh -k firstorder -m "not slow"
#
# Never needs root outside CI. Environment:
#   PYTHON=python3               the interpreter (and its pip) to use
#   RLNFAST_CUDA=AUTO|ON|OFF     build the CUDA kernels (AUTO: when nvcc is found; OFF: a C++-only build, faster)
#   RLNFAST_SKIP_SEG=1           do not pip install torch + nnunetv2 (about 2 GB; their test then skips)
#   RLNFAST_INSTALL_SYSTEM=1     apt-get install chromium (root) for the report-rendering tests; CI=true does it too
#   RLNFAST_NO_INSTALL=1         install nothing, test what is installed
#   RLNFAST_SHARED=DIR           reference data (DIR/data); default ../shared beside the repository
# Missing reference data, chromium or torch/nnunetv2: those tests skip saying what is missing and how to get
# it; under CI=true they fail naming it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
CI_ON=false
case "${CI:-}" in true|TRUE|True|1|yes) CI_ON=true ;; esac
say() { echo "run_tests.sh: $*"; }

have() { "$PY" -c "import $1" >/dev/null 2>&1; }
# The test extra of setup.py (installed here, before the package, so the package is built only once).
TEST_PIP=("pytest>=7" "pytest-benchmark>=4" "pyarrow>=12" "dask[distributed]>=2023.1" "deflate>=0.7" "isal>=1.6" "nibabel>=4" "hypothesis>=6")
TEST_MODULES="pytest, pytest_benchmark, pyarrow, dask.distributed, deflate, isal, nibabel, hypothesis"
installed_stamp() {  # the build stamp of the rlnfast that Python imports from outside this tree, if any
  (cd / && "$PY" - <<'PYEOF' 2>/dev/null) || true
import importlib.util, pathlib
spec = importlib.util.find_spec("rlnfast")
if spec and spec.origin:
    stamp = pathlib.Path(spec.origin).with_name("_build_stamp.txt")
    if stamp.exists() and list(pathlib.Path(spec.origin).parent.glob("_core*")):
        print(stamp.read_text().strip())
PYEOF
}

if [ "${RLNFAST_NO_INSTALL:-0}" != 1 ]; then
  # --- the plan, before anything is installed ---------------------------------------------------------
  where=$("$PY" -c "import sys; print(sys.prefix + (' (virtual environment)' if sys.prefix != sys.base_prefix else ' (NOT a virtual environment: packages go into this Python for every user of it)'))")
  todo_pip=()
  have radiomics || todo_pip+=("pyradiomics (built from source, about 1 min)")
  if [ "${RLNFAST_SKIP_SEG:-0}" != 1 ] && ! have "torch, nnunetv2"; then
    todo_pip+=("torch==2.13.0 + nnunetv2 (about 2 GB; RLNFAST_SKIP_SEG=1 skips them)")
  fi
  have "$TEST_MODULES" || todo_pip+=("test tools (${TEST_PIP[*]})")
  want=$("$PY" tests/source_hash.py)
  if [ "$(installed_stamp)" = "$want" ]; then
    build_msg="rlnfast: already installed from this source tree with these build settings (not rebuilt)"
  else
    if [ "${RLNFAST_CUDA:-AUTO}" = OFF ] || { [ "${RLNFAST_CUDA:-AUTO}" != ON ] && ! command -v nvcc >/dev/null 2>&1; }; then
      build_msg="rlnfast: build and install once, C++ kernels only (about 1-2 min)"
    else
      build_msg="rlnfast: build and install once WITH the CUDA kernels (nvcc found; several minutes; RLNFAST_CUDA=OFF skips them)"
    fi
  fi
  chrome=no
  for b in chromium chromium-browser google-chrome chrome; do command -v "$b" >/dev/null 2>&1 && chrome=yes; done
  say "Python: $PY, prefix $where"
  say "will pip install: ${todo_pip[*]:-(nothing, all present)}"
  say "$build_msg"
  if [ $chrome = no ]; then
    if [ "$CI_ON" = true ] || [ "${RLNFAST_INSTALL_SYSTEM:-0}" = 1 ]; then
      say "will apt-get install chromium (system package, needs root) for the report-rendering tests"
    else
      say "chromium not found: the report-rendering tests will skip (RLNFAST_INSTALL_SYSTEM=1 installs it with apt-get, as root)"
    fi
  fi

  # --- third-party packages first, so the package itself is built once, at the end ----------------------
  if ! have radiomics; then
    # pyradiomics 3.x builds from source without build isolation (the reference the tests compare with).
    "$PY" -m pip install -q versioneer wheel numpy
    "$PY" -m pip install -q --no-build-isolation pyradiomics \
      || say "warning: pyradiomics could not be installed; the tests comparing with it will skip"
  fi
  if [ "${RLNFAST_SKIP_SEG:-0}" != 1 ] && ! have "torch, nnunetv2"; then
    # torch's version named first and exactly, so pip takes the CPU build here instead of a CUDA build of GBs
    "$PY" -m pip install -q "torch==2.13.0" nnunetv2 \
      || say "warning: torch/nnunetv2 not installed; the nnU-Net test will skip"
  fi
  have "$TEST_MODULES" || "$PY" -m pip install -q "${TEST_PIP[@]}"
  if [ $chrome = no ] && { [ "$CI_ON" = true ] || [ "${RLNFAST_INSTALL_SYSTEM:-0}" = 1 ]; }; then
    if command -v apt-get >/dev/null 2>&1; then
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
        || say "warning: could not install chromium"
    else
      say "warning: no apt-get here; install chromium with your system's package manager"
    fi
  fi
  # --- the package itself: built once (the CUDA kernels too when nvcc is present, so a CUDA compile error
  # fails here); its dependencies are already installed above or come with it.
  if [ "$(installed_stamp)" != "$want" ]; then
    t0=$SECONDS
    "$PY" -m pip install -q .
    say "rlnfast built and installed in $((SECONDS - t0)) s"
  fi
fi

# Run from a folder where ./python is not importable, so the installed package is what is tested.
(cd tests && "$PY" -m pytest -q -p no:cacheprovider "$@" .)

# Second pass: the CUDA kernels without a GPU. The emulated build (RLNFAST_CUDA=EMULATE: the same kernel and
# launcher sources on CPU threads, ASan + UBSan) goes into build-emulate/, never into the installed package, and
# runs the cuda tests. RLNFAST_SKIP_EMULATED=1 skips it; with extra pytest arguments (a selection) it is skipped.
if [ "${RLNFAST_SKIP_EMULATED:-0}" != 1 ] && [ $# -eq 0 ]; then
  bash tests/run_emulated.sh
fi
