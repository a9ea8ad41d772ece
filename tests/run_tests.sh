#!/usr/bin/env bash
# Install rlnfast with what the tests need, then run the test suite. This is the README's test command
# and what .ci/run calls. Extra pytest arguments pass through: bash tests/run_tests.sh -k firstorder
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

# pyradiomics 3.x builds from source without build isolation (the reference the tests compare with).
if ! "$PY" -c "import radiomics" 2>/dev/null; then
  "$PY" -m pip install -q versioneer wheel numpy
  "$PY" -m pip install -q --no-build-isolation pyradiomics
fi
# Headless Chromium renders the HTML reports in the report tests (Debian packages).
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "warning: could not install chromium; report rendering tests will fail" >&2
fi
# The segmentation extra (torch's CPU build is pinned in the same install, or pip pulls a CUDA build of GBs).
if ! "$PY" -c "import nnunetv2, torch" 2>/dev/null; then
  "$PY" -m pip install -q "torch==2.13.0" nnunetv2 || echo "warning: torch/nnunetv2 not installed; the nnU-Net test will skip" >&2
fi
# The package itself (builds rlnfast._core; the CUDA kernels too when nvcc is present, so a CUDA compile
# error fails here) with the test extras.
"$PY" -m pip install -q ".[test]"

# Run from a folder where ./python is not importable, so the installed package is what is tested.
(cd tests && "$PY" -m pytest -q -p no:cacheprovider "$@" .)

# Second pass: the CUDA kernels without a GPU. The emulated build (RLNFAST_CUDA=EMULATE: the same kernel and
# launcher sources on CPU threads, ASan + UBSan) goes into build-emulate/, never into the installed package, and
# runs the cuda tests. RLNFAST_SKIP_EMULATED=1 skips it; with extra pytest arguments (a selection) it is skipped.
if [ "${RLNFAST_SKIP_EMULATED:-0}" != 1 ] && [ $# -eq 0 ]; then
  bash tests/run_emulated.sh
fi
