"""A fresh clone without the reference data: the data-needing tests skip with one line saying what is
missing and how to get it, and fail naming it under CI=true (issue 15). Runs a few real tests of the suite
in a subprocess with RLNFAST_SHARED pointing at an empty folder."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
# Tests that read reference data through conftest.data_path, from different files.
SELECTED = ["test_firstorder.py::test_golden_completeness", "test_cli.py::test_extract_one_case_prints_features",
            "test_stats.py::test_delong_auc_variance_ci"]


def _run(tmp_path, ci: str | None):
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["RLNFAST_SHARED"] = str(tmp_path / "empty")
    env["COLUMNS"] = "1000"   # short summary lines not cut
    (tmp_path / "empty").mkdir(exist_ok=True)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rsfE", "-p", "no:cacheprovider", *SELECTED],
                          cwd=HERE, env=env, capture_output=True, text=True, timeout=300)


def _selected_exist():
    text = {f: (HERE / f.split("::")[0]).read_text() for f in SELECTED}
    for t in SELECTED:
        f, name = t.split("::")
        assert f"def {name}(" in text[t], f"{t} no longer exists: update SELECTED"


def test_without_reference_data_tests_skip_saying_what_is_missing(tmp_path):
    _selected_exist()
    p = _run(tmp_path, None)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-3000:]
    assert "failed" not in out.splitlines()[-1] and "passed" not in out.splitlines()[-1], out[-3000:]
    skips = [l for l in out.splitlines() if l.startswith("SKIPPED")]
    assert len(skips) >= len(SELECTED), out[-3000:]
    for line in skips:
        assert str(tmp_path / "empty" / "data") in line, line
        assert "is missing" in line and "RLNFAST_SHARED" in line, line


def test_without_reference_data_ci_fails_naming_it(tmp_path):
    p = _run(tmp_path, "true")
    out = p.stdout + p.stderr
    assert p.returncode == 1, out[-3000:]
    fails = [l for l in out.splitlines() if l.startswith(("FAILED", "ERROR"))]
    assert len(fails) >= len(SELECTED), out[-3000:]
    for line in fails:
        assert "CI=true" in line and str(tmp_path / "empty" / "data") in line, line
    assert "skipped" not in out.splitlines()[-1], out[-3000:]


@pytest.mark.parametrize("ci", [None, "true"])
def test_missing_chromium_and_seg_follow_the_same_rule(tmp_path, ci):
    """conftest.chromium / require_seg with nothing on PATH and torch hidden: skip, or fail under CI=true."""
    test = tmp_path / "test_probe.py"
    test.write_text(
        "import sys\nsys.modules['torch'] = None\n"
        f"sys.path.insert(0, {str(HERE)!r})\n"
        "from conftest import chromium, require_seg\n"
        "def test_browser():\n    chromium()\n"
        "def test_seg():\n    require_seg()\n")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PATH"] = str(tmp_path / "nobin")
    env["COLUMNS"] = "1000"
    if ci:
        env["CI"] = ci
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rsfE", "-p", "no:cacheprovider", str(test)],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    out = p.stdout + p.stderr
    lines = [l for l in out.splitlines() if l.startswith(("SKIPPED", "FAILED"))]
    assert len(lines) == 2, out[-3000:]
    assert all(l.startswith("FAILED" if ci else "SKIPPED") for l in lines), out[-3000:]
    assert any("chromium" in l and "apt-get install -y chromium" in l for l in lines), out[-3000:]
    assert any("torch" in l and 'pip install "rlnfast[seg]"' in l for l in lines), out[-3000:]


def test_run_tests_sh_builds_once_and_needs_no_root_outside_ci():
    """Static checks of the README's test command: one `pip install .` of the package, after the third-party
    installs; apt-get only under CI=true or RLNFAST_INSTALL_SYSTEM=1; the plan printed before any install."""
    text = (HERE / "run_tests.sh").read_text()
    code = [l.split("#")[0] for l in text.splitlines()]
    body = "\n".join(code)
    installs = [i for i, l in enumerate(code) if "-m pip install" in l]
    package = [i for i, l in enumerate(code) if "pip install -q ." in l or 'pip install -q ".[' in l]
    assert len(package) == 1, "the package must be pip-installed exactly once"
    assert package[0] == max(installs), "third-party packages first, then the package itself"
    plan = min(i for i, l in enumerate(code) if "will pip install" in l)
    assert plan < min(installs), "the plan is printed before anything is installed"
    apt = [i for i, l in enumerate(code) if "apt-get install" in l and "say" not in l and "echo" not in l]
    assert apt, "chromium is still installed in CI"
    guard = max(i for i, l in enumerate(code[:apt[0]]) if l.strip().startswith("if ") and "apt-get" not in l)
    assert "CI_ON" in code[guard] and "RLNFAST_INSTALL_SYSTEM" in code[guard], code[guard]
    assert "sudo" not in body


def test_build_stamp_changes_with_sources_and_cuda_setting(tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("source_hash", HERE / "source_hash.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    (tmp_path / "csrc").mkdir()
    (tmp_path / "python" / "rlnfast").mkdir(parents=True)
    (tmp_path / "setup.py").write_text("x")
    (tmp_path / "python" / "rlnfast" / "a.py").write_text("a = 1\n")
    monkeypatch.setenv("RLNFAST_CUDA", "OFF")
    h0 = mod.source_hash(tmp_path)
    (tmp_path / "python" / "rlnfast" / "_core.so").write_bytes(b"built")   # build outputs do not count
    (tmp_path / "python" / "rlnfast" / "_build_stamp.txt").write_text(h0)
    assert mod.source_hash(tmp_path) == h0
    (tmp_path / "python" / "rlnfast" / "a.py").write_text("a = 2\n")
    h1 = mod.source_hash(tmp_path)
    assert h1 != h0
    monkeypatch.setenv("RLNFAST_CUDA", "ON")
    assert mod.source_hash(tmp_path) != h1


def test_run_tests_sh_installs_the_test_extra_of_setup_py():
    import re

    setup = (HERE.parent / "setup.py").read_text()
    m = re.search(r'"test":\s*\[((?:[^\[\]]|\[[^\]]*\])*)\]', setup, re.S)
    extra = set(re.findall(r'"([^"]+)"', m.group(1)))
    m = re.search(r"^TEST_PIP=\((.*?)\)", (HERE / "run_tests.sh").read_text(), re.M)
    assert set(re.findall(r'"([^"]+)"', m.group(1))) == extra, "tests/run_tests.sh TEST_PIP != setup.py's test extra"


def test_whole_suite_collects_without_reference_data(tmp_path):
    """No test module reads the reference data in a way that breaks collection when it is absent."""
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["RLNFAST_SHARED"] = str(tmp_path)
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "--collect-only", "-p", "no:cacheprovider", "."],
                       cwd=HERE, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and "error" not in p.stdout.splitlines()[-1], p.stdout[-3000:] + p.stderr[-2000:]
