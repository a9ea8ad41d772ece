"""GPU correctness that can be checked without a GPU (issue 12): unfused multiply-adds where NumPy's rounding is
replicated, device selection, device-offset validation, device scratch freed on errors, device-traffic
counts, the CuPy kernel cache key, torch tensors that require grad, and the GPU pool's device mapping.

The ``cuda`` cases run on a real GPU and on the emulated build (``bash tests/run_emulated.sh``: the same
kernels on CPU threads, under AddressSanitizer and UBSan, contracting multiply-adds as nvcc does); tests that
hand host memory to the device-pointer entry points need the emulator's hooks and skip elsewhere."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

import rlnfast
from rlnfast import _backends, _gpu
from rlnfast.ops.firstorder import FEATURES, firstorder

ENTROPY = FEATURES.index("Entropy")


def _fma_case():
    """The issue's example: every HU from -300 to -90 plus five more -111 and three more -113 voxels, binCount 100.
    NumPy's edge 90 is -300 + 90 * 2.1 = -111.0 exactly; a fused multiply-add gives -110.99999999999999, which
    moves the six -111 voxels into the next bin (pyradiomics Entropy 6.591415 against 6.571122)."""
    v = np.concatenate([np.arange(-300, -89), [-111] * 5, [-113] * 3]).astype(np.float64)
    return v, np.array([0, len(v)], np.int64)


def test_fma_edge_is_numpy_linspace():
    """The premise of the case: NumPy's bin edge 90 is exactly -111.0 and the fused value differs."""
    v, _ = _fma_case()
    edges = np.histogram_bin_edges(v, bins=100)
    assert edges[90] == -111.0
    step = (v.max() - v.min()) / 100
    assert np.fma(90.0, step, v.min()) != -111.0 if hasattr(np, "fma") else True


@pytest.mark.parametrize("name", ["cpu", "cuda", "cupy"])
def test_fma_bincount_edges_cuda(name):
    """Entropy of the FMA case equals the NumPy reference (pyradiomics' value 6.591415) on every backend.
    Fails on the emulated cuda build, which contracts multiply-adds like nvcc, if the bin edges are computed
    with a fusable start + i * step (csrc/common/firstorder_math.h Edges::at)."""
    ok, why = _backends.available(name)
    if not ok:
        pytest.skip(f"backend {name!r} not available here: {why}")
    v, o = _fma_case()
    ref = firstorder(v, o, bin_count=100, backend="numpy")
    got = firstorder(v, o, bin_count=100, backend=name)
    assert ref[0, ENTROPY] == pytest.approx(6.591415, abs=5e-7)   # the pyradiomics value
    assert got[0, ENTROPY] == pytest.approx(ref[0, ENTROPY], rel=1e-12), f"{name}: fused bin edges?"
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("name", ["cpu", "cuda", "cupy"])
def test_fma_percentile_and_density_cuda(name):
    """Percentile interpolation and the density fit a * x + b, both unfused: every backend equals NumPy bit for
    bit on values where a fused multiply-add would differ in the last place."""
    ok, why = _backends.available(name)
    if not ok:
        pytest.skip(f"backend {name!r} not available here: {why}")
    rng = np.random.default_rng(12)
    vals = rng.normal(0, 300, 4000).round(3)
    off = np.array([0, 997, 2000, 3001, 4000], np.int64)
    ref = firstorder(vals, off, bin_width=25, backend="numpy")
    got = firstorder(vals, off, bin_width=25, backend=name)
    for f in ("10Percentile", "90Percentile", "InterquartileRange", "Median"):
        k = FEATURES.index(f)
        np.testing.assert_array_equal(got[:, k], ref[:, k], err_msg=f"{name}: {f}")
    from rlnfast.ops.elasticity import elasticity

    hu = rng.uniform(-1000, 1500, (4, 8, 16)).round(2)
    e_ref = elasticity(hu, backend="numpy")
    e_got = elasticity(hu, backend=name)
    np.testing.assert_array_equal(np.asarray(e_got), np.asarray(e_ref), err_msg=f"{name}: elasticity")


def _skip_unless_cuda():
    ok, why = _backends.available("cuda")
    if not ok:
        pytest.skip(f"backend 'cuda' not available here: {why}")
    return _backends.core()


def _emulator():
    core = _skip_unless_cuda()
    emu = getattr(core.cuda, "emulator", None)
    if emu is None:
        pytest.skip("needs the emulated CUDA build (bash tests/run_emulated.sh): host memory posing as device memory")
    return core, emu


def test_emulated_build_info_cuda():
    """The emulated build says so in build_info and in the cuda backend's reason, and auto never picks it."""
    info = rlnfast.build_info()
    if os.environ.get("RLNFAST_EMULATED_RUN"):
        assert info["cuda"] and info["cuda_emulated"], info
        assert info["backends"]["cuda"]["available"]
        assert "emulated" in info["backends"]["cuda"]["reason"]
        assert _backends.resolve("auto") != "cuda"
    else:
        assert info.get("cuda_emulated") in (False, None) or not info.get("cuda")


def test_device_stats_cuda():
    """Counts of one host firstorder call do not depend on the number of regions; reset zeroes them."""
    _skip_unless_cuda()
    from rlnfast import _backends

    rng = np.random.default_rng(0)
    counts = []
    # 3 vs 300 regions on a GPU; 3 vs 30 on the emulated build (a thread per CUDA thread, under ASan)
    for n_regions in (3, 30 if _backends.is_emulated() else 300):
        sizes = rng.integers(1, 20, n_regions)
        off = np.zeros(n_regions + 1, np.int64)
        np.cumsum(sizes, out=off[1:])
        vals = rng.normal(0, 100, int(off[-1]))
        rlnfast.device_stats(reset=True)
        firstorder(vals, off, bin_width=25, backend="cuda")
        counts.append(rlnfast.device_stats(reset=True))
    assert counts[0] == counts[1]
    c = counts[0]
    assert c["h2d_copies"] == 2 and c["d2h_copies"] >= 1 and c["launches"] >= 1 and c["synchronizations"] >= 1
    assert c["allocations"] >= 3
    assert rlnfast.device_stats() == {k: 0 for k in c}


def _as_device(emu, arrays, device):
    for a in arrays:
        emu.register(a.ctypes.data, a.nbytes, device)


def _release(emu, arrays):
    for a in arrays:
        emu.unregister(a.ctypes.data)


def test_device_pointer_entry_switches_device_cuda():
    """Inputs on device 1 while device 0 is current: the kernels run on device 1 and device 0 is restored."""
    core, emu = _emulator()
    emu.set_device_count(2)
    v, o = _fma_case()
    out = np.zeros((1, len(FEATURES)))
    arrays = [v, o, out]
    _as_device(emu, arrays, 1)
    try:
        assert emu.current_device() == 0
        core.cuda.firstorder(v.ctypes.data, len(v), o.ctypes.data, 1, 1, 0.0, 100, False, 0.0, 1.0, out.ctypes.data, 0)
        assert emu.last_launch_device() == 1
        assert emu.current_device() == 0
        ref = firstorder(v, o, bin_count=100, backend="numpy")
        np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-12)
        # the emulator's own check: a kernel on device 1 handed memory of device 0 is an illegal address
        _as_device(emu, [out], 0)
        with pytest.raises(RuntimeError, match="device"):
            core.cuda.firstorder(v.ctypes.data, len(v), o.ctypes.data, 1, 1, 0.0, 100, False, 0.0, 1.0,
                                 out.ctypes.data, 0)
        assert emu.current_device() == 0
    finally:
        _release(emu, arrays)
        emu.set_device_count(1)


@pytest.mark.parametrize("bad", [[1, 5, 10], [0, 7, 5, 10], [0, 4, 11], [0, 4, 9]])
def test_device_offsets_validated_cuda(bad):
    """Malformed device offsets are a ValueError before any kernel reads through them; the scratch allocated
    before the error is freed (RAII)."""
    core, emu = _emulator()
    v = np.arange(10, dtype=np.float64)
    o = np.asarray(bad, np.int64)
    out = np.zeros((len(o) - 1, len(FEATURES)))
    arrays = [v, o, out]
    _as_device(emu, arrays, 0)
    try:
        live = emu.live_allocations()
        with pytest.raises(ValueError, match="offsets"):
            core.cuda.firstorder(v.ctypes.data, len(v), o.ctypes.data, len(o) - 1, 0, 25.0, 0, False, 0.0, 1.0,
                                 out.ctypes.data, 0)
        assert emu.live_allocations() == live
    finally:
        _release(emu, arrays)


def test_host_offsets_validated_cuda():
    """The host entry point rejects decreasing offsets too (the Python layer checks first; the binding as well)."""
    core = _skip_unless_cuda()
    with pytest.raises(ValueError, match="offsets"):
        core.cuda.firstorder_host(np.arange(10.0), np.array([0, 7, 5, 10]), 0, 25.0, 0, False, 0.0, 1.0)


class _GradTensor:
    """Stands in for a CUDA torch tensor with requires_grad: even hasattr of the interface raises."""

    __module__ = "torch"
    is_cuda = True

    @property
    def __cuda_array_interface__(self):
        raise RuntimeError("Can't get __cuda_array_interface__ on Variable that requires grad.")


class _RaisingInterface:
    @property
    def __cuda_array_interface__(self):
        raise RuntimeError("boom")


def test_is_device_array_requires_grad_cuda():
    assert _gpu.is_device_array(_GradTensor())
    assert _gpu.is_device_array(_RaisingInterface())
    assert not _gpu.is_device_array(np.zeros(3))


def test_is_device_array_real_torch_tensor_cuda():
    torch = pytest.importorskip("torch")
    t = torch.zeros(3, requires_grad=True)
    assert not _gpu.is_device_array(t)
    if torch.cuda.is_available():
        assert _gpu.is_device_array(torch.zeros(3, device="cuda", requires_grad=True))


def test_cupy_cache_key_follows_header_contents_cuda(tmp_path):
    """The NVRTC source carries the headers' digest: editing any shared header changes CuPy's cache key."""
    from rlnfast import _cupy

    from conftest import ROOT

    inc = tmp_path / "include"
    shutil.copytree(ROOT / "csrc" / "common", inc / "common")
    src1 = _cupy.source("common/firstorder_kernel.cuh", str(inc))
    assert '#include "common/firstorder_kernel.cuh"' in src1
    assert _cupy.source("common/firstorder_kernel.cuh", str(inc)) == src1
    h = inc / "common" / "firstorder_math.h"
    h.write_text(h.read_text() + "\n// edited\n")
    assert _cupy.source("common/firstorder_kernel.cuh", str(inc)) != src1


@pytest.mark.parametrize("env,expected", [
    (None, ["0", "1", "0"]),
    ("2,3", ["2", "3", "2"]),
    ("GPU-aaaa, GPU-bbbb", ["GPU-aaaa", "GPU-bbbb", "GPU-aaaa"]),
])
def test_pool_gpu_mapping_cuda(env, expected):
    """Worker i of the GPU pool gets the i-th GPU the parent sees, not physical GPU i."""
    from rlnfast import cohort

    visible = cohort._visible_devices({} if env is None else {"CUDA_VISIBLE_DEVICES": env})
    n = 2
    assert [cohort._worker_gpu(i % n, visible) for i in range(3)] == expected


def _dem_case():
    rng = np.random.default_rng(5)
    ct = rng.normal(40, 60, (12, 20, 24)).round(0)
    labels = np.zeros(ct.shape, np.int16)
    labels[2:7, 3:11, 4:12] = 1
    labels[5:11, 10:18, 13:22] = 2
    labels[1:3, 15:19, 2:6] = 3
    return ct, labels


@pytest.mark.parametrize("name", ["cuda", "cupy"])
def test_dem_float64_matches_cpu_cuda(name):
    """A float64 DEM on the GPU backends runs float64 passes: every box equals the cpu backend's to 1e-12 of
    the largest value (float32 passes only reach 1e-5), and DEM first-order features agree to 1e-9."""
    ok, why = _backends.available(name)
    if not ok:
        pytest.skip(f"backend {name!r} not available here: {why}")
    from rlnfast.ops.dem import dem_boxes

    ct, labels = _dem_case()
    boxes = np.array([[2, 3, 4, 6, 10, 11], [5, 10, 13, 10, 17, 21], [0, 0, 0, 11, 19, 23]], np.int64)
    sp = (2.0, 0.8, 0.7)
    ref = dem_boxes(ct, sp, boxes, backend="cpu")
    got = dem_boxes(ct, sp, boxes, backend=name)
    np.testing.assert_array_equal(got.offsets, ref.offsets)
    scale = np.abs(ref.values).max()
    np.testing.assert_allclose(got.values, ref.values, rtol=0, atol=1e-12 * scale)
    params = {"imageType": {"DEM": {}}, "featureClass": {"firstorder": None}, "setting": {"binWidth": 5}}
    f_cpu = rlnfast.extract(ct, labels, params, spacing=sp, backend="cpu")
    f_gpu = rlnfast.extract(ct, labels, params, spacing=sp, backend=name)
    cols = [c for c in f_cpu.columns if c.startswith("DEM_original_firstorder_")]
    assert cols
    np.testing.assert_allclose(f_gpu[cols].to_numpy(float), f_cpu[cols].to_numpy(float), rtol=1e-9, atol=1e-12)
