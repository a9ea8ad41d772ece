"""The command line: every subcommand is registered, `info` reports backends, single-case extract prints."""
from __future__ import annotations

import subprocess
import sys

import pytest

from rlnfast.cli import COMMANDS, build_parser, main

from conftest import data_path


def test_all_subcommands_registered():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == set(COMMANDS), f"missing: {set(COMMANDS) - set(sub.choices)}"


def test_console_script_info():
    out = subprocess.run([sys.executable, "-m", "rlnfast", "info"], capture_output=True, text=True, check=True).stdout
    assert "auto backend:" in out and "cpu" in out and "numpy" in out


def test_extract_one_case_prints_features(capsys):
    rc = main(["extract", str(data_path("pyradiomics", "breast1_image.nrrd")),
               str(data_path("pyradiomics", "breast1_label.nrrd"))])
    assert rc == 0
    out = capsys.readouterr().out
    assert "original_firstorder_Entropy" in out


def test_bad_input_is_a_clear_error(capsys, tmp_path):
    rc = main(["extract", str(tmp_path / "missing.nii.gz"), str(tmp_path / "m.nii.gz")])
    assert rc == 2
    assert "missing.nii.gz" in capsys.readouterr().err


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "extract" in capsys.readouterr().out


def test_missing_backend_is_a_clear_error(capsys):
    from rlnfast import _backends

    ok, why = _backends.available("cupy")
    if ok:
        pytest.skip("cupy is usable here: nothing to refuse")
    rc = main(["extract", str(data_path("pyradiomics", "breast1_image.nrrd")),
               str(data_path("pyradiomics", "breast1_label.nrrd")), "--backend", "cupy"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "backend 'cupy' is not available" in err and "Traceback" not in err
