"""Cohort runs through the CLI: batch convention, resume after SIGKILL, errors.csv, Dask, Parquet."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

import rlnfast
from rlnfast import cohort
from rlnfast.cli import main as cli
from rlnfast.segmentation.synthetic import make_ct

from conftest import data_path

PARAMS = "setting:\n  binWidth: 25\n  voxelArrayShift: 0\n"


def _totalseg_labelmap(tmp: Path) -> Path:
    """The TotalSegmentator example's 58 organ masks as one multi-label map (label = mask index + 1)."""
    folder = data_path("totalsegmentator_example", "masks_fast_825712c")
    files = sorted(folder.glob("*.nii.gz"))
    assert len(files) == 58
    ref = sitk.ReadImage(str(files[0]))
    lm = np.zeros(sitk.GetArrayFromImage(ref).shape, np.uint8)
    for i, f in enumerate(files):
        lm[sitk.GetArrayFromImage(sitk.ReadImage(str(f))) > 0] = i + 1
    out = sitk.GetImageFromArray(lm)
    out.CopyInformation(ref)
    path = tmp / "totalseg_labels.nii.gz"
    sitk.WriteImage(out, str(path))
    return path


@pytest.fixture(scope="module")
def shared_batch(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("batch")
    rows = [{"ID": c, "Image": str(data_path("pyradiomics", f"{c}_image.nrrd")),
             "Mask": str(data_path("pyradiomics", f"{c}_label.nrrd")), "Label": "1"}
            for c in ("brain1", "brain2", "breast1", "lung1", "lung2")]
    rows.append({"ID": "prostate", "Image": str(data_path("pyradiomics", "prostate_phantom_subvolume.nrrd")),
                 "Mask": str(data_path("pyradiomics", "prostate_phantom_subvolume-label.nrrd")), "Label": ""})
    rows.append({"ID": "totalseg", "Image": str(data_path("totalsegmentator_example", "example_ct.nii.gz")),
                 "Mask": str(_totalseg_labelmap(tmp)), "Label": ""})
    pd.DataFrame(rows).to_csv(tmp / "batch.csv", index=False)
    (tmp / "params.yaml").write_text(PARAMS)
    return tmp


def test_batch_equals_direct_extract(shared_batch, tmp_path):
    out = tmp_path / "features.csv"
    rc = cli(["extract", str(shared_batch / "batch.csv"), "-p", str(shared_batch / "params.yaml"), "-o", str(out),
              "--quiet"])
    assert rc == 0
    table = pd.read_csv(out, float_precision="round_trip")
    assert list(table.columns[:5]) == ["ID", "Image", "Mask", "Label", "label"]   # as pyradiomics' batch output
    batch = pd.read_csv(shared_batch / "batch.csv", dtype=str, keep_default_na=False)
    n_total = 0
    for _, row in batch.iterrows():
        settings = {"label": int(row["Label"])} if row["Label"] else {}
        direct = rlnfast.extract(row["Image"], row["Mask"], str(shared_batch / "params.yaml"), **settings)
        got = table[table.ID == row["ID"]].reset_index(drop=True)
        assert len(got) == len(direct), row["ID"]
        n_total += len(direct)
        for col in [c for c in direct.columns if c.startswith("original_")]:
            np.testing.assert_allclose(got[col].to_numpy(), direct[col].to_numpy(), rtol=0, err_msg=f"{row['ID']} {col}")
    assert len(table) == n_total
    assert (table.ID == "totalseg").sum() >= 50   # the organ label map: one row per organ present
    assert set(table[table.ID == "prostate"].label) == {1, 7, 8, 9}


def _synthetic_batch(folder: Path, n=8, size=(16, 40, 40)):
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        ct = make_ct(size, (0.8, 0.8, 2.0), 3, seed=100 + i)
        img, lab = ct.to_sitk()
        sitk.WriteImage(img, str(folder / f"ct{i}.nii.gz"))
        sitk.WriteImage(lab, str(folder / f"mask{i}.nii.gz"))
        rows.append({"ID": f"case{i:02d}", "Image": f"ct{i}.nii.gz", "Mask": f"mask{i}.nii.gz"})
    pd.DataFrame(rows).to_csv(folder / "batch.csv", index=False)
    (folder / "params.yaml").write_text(PARAMS)
    return folder / "batch.csv"


def _run_cli(batch, out, out_dir, env_extra=None, args=(), **kw):
    env = dict(os.environ, **(env_extra or {}))
    cmd = [sys.executable, "-m", "rlnfast", "extract", str(batch), "-p", str(batch.parent / "params.yaml"), "-o",
           str(out), "--out-dir", str(out_dir), "--quiet", *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def test_kill_and_resume(tmp_path):
    batch = _synthetic_batch(tmp_path / "data")
    ref = tmp_path / "ref.csv"
    assert _run_cli(batch, ref, tmp_path / "ref_cases").wait(120) == 0
    out, cases = tmp_path / "features.csv", tmp_path / "cases_out"
    proc = _run_cli(batch, out, cases, {cohort.THROTTLE_ENV: "0.5", "RLNFAST_RUN_ID": "first"})
    deadline = time.time() + 60
    while time.time() < deadline and len(list((cases / "cases").glob("*.done.json"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    first = {p.name: json.loads(p.read_text()) for p in (cases / "cases").glob("*.done.json")}
    assert 3 <= len(first) < 8, f"kill came too late or too early: {len(first)} cases done"
    assert not out.exists(), "the merged table must not exist after a killed run"
    # every per-case table that exists is complete (atomic writes): it parses and has its regions
    for name, meta in first.items():
        t = pd.read_csv(cases / "cases" / name.replace(".done.json", ".csv"))
        assert len(t) == meta["regions"]
    assert _run_cli(batch, out, cases, {"RLNFAST_RUN_ID": "second"}).wait(120) == 0
    after = {p.name: json.loads(p.read_text()) for p in (cases / "cases").glob("*.done.json")}
    assert len(after) == 8
    for name, meta in first.items():
        assert after[name] == meta, f"{name} was computed twice"
    assert sum(m["run"] == "second" for m in after.values()) == 8 - len(first)
    assert out.read_bytes() == ref.read_bytes(), "resumed table differs from an uninterrupted run"
    assert not list((cases / "cases").glob(".*.tmp")), "temporary files left behind"


def test_errors_csv_and_run_goes_on(tmp_path):
    batch = _synthetic_batch(tmp_path / "data", n=4)
    (batch.parent / "corrupt.nii.gz").write_bytes(b"\x1f\x8b garbage")
    df = pd.read_csv(batch)
    df = pd.concat([df, pd.DataFrame([{"ID": "corrupt", "Image": "corrupt.nii.gz", "Mask": "mask0.nii.gz"},
                                      {"ID": "nomask", "Image": "ct0.nii.gz", "Mask": "missing.nii.gz"}])])
    df.to_csv(batch, index=False)
    out = tmp_path / "f.csv"
    rc = cli(["extract", str(batch), "-p", str(batch.parent / "params.yaml"), "-o", str(out), "--quiet"])
    assert rc == 1
    errors = pd.read_csv(tmp_path / "f_cases" / "errors.csv")
    assert list(errors.ID) == ["corrupt", "nomask"]
    assert "corrupt.nii.gz" in errors.error.iloc[0] and "missing.nii.gz" in errors.error.iloc[1]
    table = pd.read_csv(out)
    assert sorted(set(table.ID)) == [f"case{i:02d}" for i in range(4)]
    # a rerun retries the failures (they fail again) and skips the rest
    res = cohort.run(batch, batch.parent / "params.yaml", tmp_path / "f_cases", progress=False)
    assert (res.computed, res.skipped, res.failed) == (0, 4, 2)


def test_resume_recomputes_changed_params_and_inputs(tmp_path):
    batch = _synthetic_batch(tmp_path / "data", n=3)
    r1 = cohort.run(batch, {"setting": {"binWidth": 25}}, tmp_path / "o", progress=False)
    assert (r1.computed, r1.skipped) == (3, 0)
    r2 = cohort.run(batch, {"setting": {"binWidth": 10}}, tmp_path / "o", progress=False)
    assert (r2.computed, r2.skipped) == (3, 0)
    os.utime(batch.parent / "ct1.nii.gz", ns=(time.time_ns(), time.time_ns() + 10**9))
    r3 = cohort.run(batch, {"setting": {"binWidth": 10}}, tmp_path / "o", progress=False)
    assert (r3.computed, r3.skipped) == (1, 2)
    assert not r3.table.equals(r1.table)


def test_parquet_and_process_pool(tmp_path):
    pytest.importorskip("pyarrow")
    batch = _synthetic_batch(tmp_path / "data", n=4)
    serial = cohort.run(batch, None, tmp_path / "s", progress=False)
    with cohort.local_executor(2) as ex:
        pooled = cohort.run(batch, None, tmp_path / "p", executor=ex, chunk_size=1, progress=False,
                            output=tmp_path / "p.parquet")
    back = pd.read_parquet(tmp_path / "p.parquet")
    pd.testing.assert_frame_equal(back, pooled.table)
    pd.testing.assert_frame_equal(pooled.table, serial.table)


def test_local_pool_workers_fork_from_a_preloaded_server(tmp_path):
    """--jobs N: the cases compute in worker processes (not this one), forked from a forkserver that imported
    rlnfast once (rlnfast._worker), with the C++ kernels limited to each worker's share of the cores."""
    import multiprocessing as mp

    batch = _synthetic_batch(tmp_path / "data", n=3)
    with cohort.local_executor(2) as ex:
        assert isinstance(ex, cohort.LocalPool) and ex.threads == cohort.worker_threads(2)
        res = cohort.run(batch, None, tmp_path / "p", executor=ex, chunk_size=1, progress=False)
    assert res.computed == 3
    pids = {json.loads(p.read_text())["pid"] for p in (tmp_path / "p" / cohort.CASE_DIR).glob("*.done.json")}
    assert pids and os.getpid() not in pids
    if "forkserver" in mp.get_all_start_methods():
        from multiprocessing import forkserver

        assert cohort.WORKER_PRELOAD in forkserver._forkserver._preload_modules


def test_worker_threads_share_the_cpus():
    cpus = len(os.sched_getaffinity(0))
    assert cohort.worker_threads(1) == cpus
    assert cohort.worker_threads(cpus * 4) == 1
    assert cohort.worker_threads(2) == max(1, cpus // 2)


def test_dask_local_cluster_equals_serial(tmp_path):
    pytest.importorskip("dask.distributed", reason="dask is a test dependency installed by .ci/run")
    batch = _synthetic_batch(tmp_path / "data", n=4)
    serial = tmp_path / "serial.csv"
    assert cli(["extract", str(batch), "-o", str(serial), "--quiet"]) == 0
    dask_out = tmp_path / "dask.csv"
    assert cli(["extract", str(batch), "-o", str(dask_out), "--dask", "local", "--jobs", "2", "--chunk-size", "1",
                "--quiet"]) == 0
    assert dask_out.read_bytes() == serial.read_bytes()


def test_bad_batch(tmp_path):
    p = tmp_path / "b.csv"
    p.write_text("ID,Image\na,x.nii.gz\n")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['Mask'\]"):
        cohort.run(p, None, tmp_path / "o", progress=False)
    with pytest.raises(FileNotFoundError, match="nothere.csv"):
        cohort.run(tmp_path / "nothere.csv", None, tmp_path / "o", progress=False)


def test_nan_features_survive_the_per_case_files(tmp_path):
    """A NaN feature (RobustMAD of a 2-voxel region) stays a float NaN through the per-case files."""
    lm = np.zeros((4, 6, 6), np.uint8)
    lm[1, 1, 1:3] = 1
    lm[2, 2:5, 2:5] = 2
    img = sitk.GetImageFromArray(np.arange(lm.size, dtype=np.int16).reshape(lm.shape))
    lab = sitk.GetImageFromArray(lm)
    sitk.WriteImage(img, str(tmp_path / "ct.nrrd"))
    sitk.WriteImage(lab, str(tmp_path / "m.nrrd"))
    pd.DataFrame([{"ID": "NA", "Image": "ct.nrrd", "Mask": "m.nrrd"}]).to_csv(tmp_path / "b.csv", index=False)
    res = cohort.run(tmp_path / "b.csv", None, tmp_path / "o", progress=False)
    col = res.table["original_firstorder_RobustMeanAbsoluteDeviation"]
    assert col.dtype == np.float64 and np.isnan(col.iloc[0]) and np.isfinite(col.iloc[1])
    assert list(res.table.ID) == ["NA", "NA"], "an ID that looks like a missing value stays a string"


def test_resume_takes_batch_columns_from_the_current_batch(tmp_path):
    """A corrected ID, an added cohort/outcome column reach the merged table on resume, with no recompute,
    and the table equals a fresh run on the edited batch byte for byte."""
    batch = _synthetic_batch(tmp_path / "data", n=3)
    out = tmp_path / "o"
    cohort.run(batch, None, out, progress=False)
    done = {p.name: p.read_text() for p in (out / "cases").glob("*.done.json")}
    df = pd.read_csv(batch, dtype=str, keep_default_na=False)
    df.loc[1, "ID"] = "case01-fixed"
    df.insert(1, "cohort", ["A", "B", "A"])
    df["outcome"] = ["0", "1", "0"]
    df.to_csv(batch, index=False)
    res = cohort.run(batch, None, out, progress=False)
    assert (res.computed, res.skipped) == (0, 3)
    assert {p.name: p.read_text() for p in (out / "cases").glob("*.done.json")} == done
    table = pd.read_csv(out / "features.csv", dtype=str, keep_default_na=False)
    assert list(table.columns[:2]) == ["ID", "cohort"] and "outcome" in table.columns
    assert set(table.ID) == {"case00", "case01-fixed", "case02"}
    assert set(table[table.ID == "case01-fixed"].outcome) == {"1"}
    assert set(table[table.ID == "case01-fixed"].cohort) == {"B"}
    fresh = cohort.run(batch, None, tmp_path / "fresh", progress=False)
    assert fresh.computed == 3
    assert (out / "features.csv").read_bytes() == (tmp_path / "fresh" / "features.csv").read_bytes()


def test_content_hash_sees_a_change_that_keeps_size_and_mtime(tmp_path):
    batch = _synthetic_batch(tmp_path / "data", n=2)
    out, out_m = tmp_path / "o", tmp_path / "o_mtime"
    assert cohort.run(batch, None, out, progress=False, content_hash=True).computed == 2
    assert cohort.run(batch, None, out_m, progress=False).computed == 2
    mask = tmp_path / "data" / "mask1.nii.gz"
    st = mask.stat()
    other = (tmp_path / "data" / "mask0.nii.gz").read_bytes()
    data = mask.read_bytes()
    # same size, same mtime, other content (mask0's bytes, padded or cut to mask1's size)
    mask.write_bytes((other + data)[:len(data)] if len(other) < len(data) else other[:len(data)])
    os.utime(mask, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert mask.stat().st_size == st.st_size and mask.stat().st_mtime_ns == st.st_mtime_ns
    assert cohort.run(batch, None, out_m, progress=False).skipped == 2   # size and mtime alone miss it
    res = cohort.run(batch, None, out, progress=False, content_hash=True)
    assert res.computed + res.failed == 1 and res.skipped == 1   # only the changed case is redone


def test_case_timeout_fires_then_resume_retries_only_that_case(tmp_path):
    """A stalled case is stopped by the per-case time limit (errors.csv, the run goes on, the other cases of
    its group are retried one by one and finish); a resume recomputes only the stalled case."""
    batch = _synthetic_batch(tmp_path / "data", n=4)
    out, cases = tmp_path / "features.csv", tmp_path / "cases_out"
    proc = _run_cli(batch, out, cases, {cohort.STALL_ENV: "case02", "RLNFAST_RUN_ID": "first"},
                    args=("--case-timeout", "5"))
    assert proc.wait(180) == 1
    errors = pd.read_csv(cases / "errors.csv", dtype=str)
    assert errors.ID.tolist() == ["case02"] and "CaseTimeout" in errors.error[0]
    assert _run_cli(batch, out, cases, {"RLNFAST_RUN_ID": "second"}).wait(180) == 0
    after = {p.name: json.loads(p.read_text()) for p in (cases / "cases").glob("*.done.json")}
    assert [m["run"] for _, m in sorted(after.items())] == ["first", "first", "second", "first"]
