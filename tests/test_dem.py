"""Elasticity image E and differential elasticity map DEM (issue 3, features.md): the NumPy reference
against SciPy's formulation and the published check values, analytic cases, every backend against the
reference, region mode against whole-volume mode, bad input, features on the maps, writing the maps."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import TOLERANCE, assert_close, data_path

import rlnfast
from rlnfast import regions as rg
from rlnfast.ops import dem as dop
from rlnfast.ops import elasticity as eop
from rlnfast.ops import firstorder as fo
from rlnfast.reference import dem as ref

# DEM on the GPU runs float32 kernels: (rtol, atol relative to the volume's maximum DEM), as the issue says.
DEM_TOLERANCE = dict(TOLERANCE, cuda=(0.0, 1e-5), cupy=(0.0, 1e-5))
SHAPE = (40, 48, 36)


def ct_volume(seed=0, shape=SHAPE, dtype=np.int16):
    """A seeded CT-like volume: smooth soft-tissue/air/bone structure plus noise, over the whole HU range."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0.0, 1.0, shape)
    for axis in range(3):      # smooth with a moving average (NumPy only: GPU machines may lack SciPy)
        for _ in range(2):
            base = (np.roll(base, 1, axis) + base + np.roll(base, -1, axis)) / 3.0
    base = base / np.abs(base).max()
    hu = 40.0 + 900.0 * base + rng.normal(0.0, 30.0, shape)
    hu[rng.random(shape) < 0.01] = 2500.0          # bone specks
    hu[:, :4, :] = -900.0 + rng.normal(0.0, 30.0, hu[:, :4, :].shape)   # lung-like air at one face
    hu = np.clip(hu, -1024, 3071)
    return hu.astype(dtype)


def assert_dem_close(actual, expected, backend, what):
    rtol, atol_rel = DEM_TOLERANCE[backend]
    scale = float(np.max(np.abs(expected)))
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected, rtol=rtol, atol=atol_rel * scale,
                               err_msg=f"{what} ({backend})")


# ---- the reference against SciPy and the published values ---------------------------------------------

@pytest.mark.parametrize("spacing_xyz", [(0.7, 0.7, 2.5), (1.0, 1.0, 5.0)])
@pytest.mark.parametrize("seed", [0, 1])
def test_reference_equals_scipy_random(spacing_xyz, seed):
    rng = np.random.default_rng(seed)
    ct = rng.integers(-1100, 3200, size=(18, 30, 26)).astype(np.int16)
    sp = spacing_xyz[::-1]
    for sigma in (1.0, 2.3):
        a = ref.dem(ct, sp, sigma=sigma)
        b = ref.dem_scipy(ct, sp, sigma=sigma)
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10 * np.abs(b).max())
        assert np.abs(b).max() > 0


def test_reference_kernels_equal_scipy():
    from scipy.ndimage._filters import _gaussian_kernel1d

    for s in (0.2, 0.4, 1.0, 1.428571, 3.7, 40.0):
        g, dg = ref.gaussian_kernels(s)
        r = ref.radius(s)
        assert r == int(4.0 * s + 0.5)
        np.testing.assert_allclose(g, _gaussian_kernel1d(s, 0, r), rtol=1e-14, atol=0)
        np.testing.assert_allclose(dg, _gaussian_kernel1d(s, 1, r), rtol=1e-14, atol=1e-300)


def _lung2():
    import SimpleITK as sitk

    img = sitk.ReadImage(str(data_path("pyradiomics", "lung2_image.nrrd")))
    return img, sitk.GetArrayFromImage(img)


def test_reference_equals_scipy_lung2_crop():
    img, arr = _lung2()
    sp = img.GetSpacing()[::-1]
    crop = np.ascontiguousarray(arr[8:30, 300:420, 300:430])
    a = ref.dem(crop, sp)
    b = ref.dem_scipy(crop, sp)
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10 * np.abs(b).max())


@pytest.mark.slow
def test_reference_equals_scipy_lung2_full():
    img, arr = _lung2()
    sp = img.GetSpacing()[::-1]
    a = ref.dem(arr, sp)
    b = ref.dem_scipy(arr, sp)
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10 * np.abs(b).max())
    c = dop.dem(img, backend="cpu")
    import SimpleITK as sitk

    assert_close(sitk.GetArrayFromImage(c), b, "cpu", "lung2 full DEM")


def test_elasticity_check_values(backend):
    hu = np.array([-50, 0, 40, 100], dtype=np.int16)
    e = eop.elasticity_array(hu, backend=backend)
    assert [round(float(v), 1) for v in e] == [-87.7, 0.0, 73.1, 185.9]
    assert ref.reference_density() == pytest.approx(1011.886114911114, rel=1e-15)


def test_elasticity_monotonic_and_equal_to_reference(backend):
    hu = np.arange(-1000, 3072, dtype=np.int32)
    e = eop.elasticity_array(hu, backend=backend)
    expected = ref.elasticity(hu)
    assert_close(e, expected, backend, "E over [-1000, 3071]")
    d = np.diff(e)
    assert np.all(d >= 0)
    # strictly increasing once the density floor max(rho, 1) is left behind (HU > -994)
    assert np.all(d[hu[:-1] >= -993] > 0)
    # clipping: beyond the range E is the value at the bounds
    out = eop.elasticity_array(np.array([-3000.0, -1000.0, 3071.0, 9000.0]), backend=backend)
    assert out[0] == out[1] and out[2] == out[3]


def test_elasticity_parameters(backend):
    hu = np.linspace(-1000, 3000, 101)
    for kw in ({"gamma": 1.5}, {"gamma": 1.0, "clip_range": (-500.0, 1000.0)}, {"reference_density": 1000.0}):
        assert_close(eop.elasticity_array(hu, backend=backend, **kw), ref.elasticity(hu, **kw), backend, str(kw))
    # referenceDensity = rho(HU 40) puts E(40) at 0
    rho40 = float(ref.density(40.0))
    assert abs(eop.elasticity_array(np.array([40.0]), reference_density=rho40, backend=backend)[0]) < 1e-9


def test_elasticity_whole_volume_geometry(backend):
    sitk = pytest.importorskip("SimpleITK")

    ct = ct_volume(3, (6, 7, 8))
    img = sitk.GetImageFromArray(ct)
    img.SetSpacing((0.7, 0.8, 2.5))
    img.SetOrigin((1.0, 2.0, 3.0))
    e = eop.elasticity(img, backend=backend)
    assert isinstance(e, sitk.Image) and e.GetSpacing() == img.GetSpacing() and e.GetOrigin() == img.GetOrigin()
    assert_close(sitk.GetArrayFromImage(e), ref.elasticity(ct), backend, "E volume")
    e32 = eop.elasticity(ct, dtype=np.float32, backend=backend)
    assert e32.dtype == np.float32 and e32.shape == ct.shape


# ---- analytic -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("axis", [0, 1, 2])
def test_linear_elasticity_gives_sigma_times_slope(backend, axis):
    # gamma = 1 and HU inside one Schneider segment (930 <= HU + 1000 < 1098): E is affine in HU
    shape = (24, 26, 28)
    sp = (0.5, 0.5, 0.5)
    c = 3.0                                   # HU per voxel
    idx = np.arange(shape[axis], dtype=np.float64)
    ramp = -60.0 + c * idx
    hu = np.broadcast_to(ramp.reshape([-1 if a == axis else 1 for a in range(3)]), shape).astype(np.float64)
    sigma = 1.0
    slope_mm = 1000.0 * 0.9082709691264 * c / ref.reference_density() / sp[axis]
    d = dop.dem_array(np.ascontiguousarray(hu), sp, sigma=sigma, gamma=1.0, backend=backend)
    r = dop.filter_radius(sp, sigma)[axis]
    inner = [slice(None)] * 3
    inner[axis] = slice(r, shape[axis] - r)
    # the analytic value, up to the kernel's truncation at 4 sigma (a tail of ~1e-4 of the second moment)
    np.testing.assert_allclose(d[tuple(inner)], sigma * slope_mm, rtol=1e-3)
    # exactly the sampled kernel's second moment: sum_k (k / s^2) g(k) k = m2 / s^2
    sv = sigma / sp[axis]
    g, _ = ref.gaussian_kernels(sv)
    k = np.arange(-(len(g) // 2), len(g) // 2 + 1)
    exact_rtol = 1e-9 if backend in ("numpy", "cpu") else 1e-5    # float32 GPU kernels
    np.testing.assert_allclose(d[tuple(inner)], sigma * slope_mm * np.sum(k * k * g) / sv ** 2, rtol=exact_rtol)
    # at the border 'nearest' flattens the ramp: the magnitude drops there
    edge = [slice(None)] * 3
    edge[axis] = 0
    assert np.all(d[tuple(edge)] < 0.9 * sigma * slope_mm)


def test_constant_volume_gives_zero(backend):
    for v in (-1000, 40, 1200):
        hu = np.full((9, 10, 11), v, dtype=np.int16)
        d = dop.dem_array(hu, (2.5, 0.7, 0.7), backend=backend)
        if backend == "numpy":   # the reference sums the full kernel in order: rounding of |E| remains
            assert np.all(d <= 1e-14 * max(abs(float(ref.elasticity(v))), 1.0))
        else:                    # paired antisymmetric sums cancel exactly
            assert np.all(d == 0.0)


# ---- every backend against the reference ---------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.int16, np.float32, np.uint16])
@pytest.mark.parametrize("spacing_xyz", [(0.7, 0.7, 2.5), (1.0, 1.0, 5.0)])
def test_dem_backend_matches_reference(fast_backend, dtype, spacing_xyz):
    ct = ct_volume(7)
    if dtype == np.uint16:
        ct = (ct.astype(np.int32) + 1024).astype(np.uint16)
    ct = ct.astype(dtype)
    sp = spacing_xyz[::-1]
    kw = {"clip_range": (0.0, 4095.0)} if dtype == np.uint16 else {}
    expected = ref.dem(ct, sp, **kw)
    got = dop.dem_array(ct, sp, backend=fast_backend, **kw)
    assert got.shape == ct.shape and got.dtype == np.float64
    assert_dem_close(got, expected, fast_backend, f"DEM {np.dtype(dtype)} {spacing_xyz}")
    got32 = dop.dem_array(ct, sp, backend=fast_backend, dtype=np.float32, **kw)
    assert got32.dtype == np.float32
    assert_dem_close(got32, expected, "cuda", "DEM as float32")


def test_dem_parameters_backend(fast_backend):
    ct = ct_volume(8)
    sp = (2.5, 0.7, 0.7)
    for kw in ({"sigma": 2.0}, {"sigma": 0.3}, {"gamma": 1.5, "clip_range": (-200.0, 400.0)},
               {"reference_density": 1050.0}):
        assert_dem_close(dop.dem_array(ct, sp, backend=fast_backend, **kw), ref.dem(ct, sp, **kw), fast_backend,
                         str(kw))


def test_dem_whole_volume_geometry():
    import SimpleITK as sitk

    ct = ct_volume(9, (8, 9, 10))
    img = sitk.GetImageFromArray(ct)
    img.SetSpacing((0.7, 0.7, 2.5))
    img.SetOrigin((-5.0, 2.0, 30.0))
    img.SetDirection((0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    d = dop.dem(img, backend="cpu")
    assert isinstance(d, sitk.Image)
    assert d.GetSpacing() == img.GetSpacing() and d.GetOrigin() == img.GetOrigin()
    assert d.GetDirection() == img.GetDirection()
    np.testing.assert_array_equal(sitk.GetArrayFromImage(d), dop.dem_array(ct, (2.5, 0.7, 0.7), backend="cpu"))
    a = dop.dem(ct, spacing=(0.7, 0.7, 2.5), backend="cpu")
    assert isinstance(a, np.ndarray)
    np.testing.assert_array_equal(a, sitk.GetArrayFromImage(d))


# ---- region mode --------------------------------------------------------------------------------------

def face_labels(shape=SHAPE):
    """Regions touching each of the 6 faces, a corner region, an interior one, a one-voxel one."""
    nz, ny, nx = shape
    lab = np.zeros(shape, np.int32)
    lab[0:3, 10:16, 8:14] = 1                 # z = 0
    lab[nz - 2:nz, 20:25, 5:9] = 2            # z = nz - 1
    lab[12:18, 0:2, 10:20] = 3                # y = 0
    lab[5:9, ny - 3:ny, 20:26] = 4            # y = ny - 1
    lab[20:26, 30:34, 0:3] = 5                # x = 0
    lab[25:30, 8:15, nx - 1] = 6              # x = nx - 1
    lab[nz - 3:nz, ny - 4:ny, nx - 5:nx] = 7  # corner
    lab[18:24, 18:26, 14:22] = 8              # interior, irregular below
    lab[20, 22, 15] = 0
    lab[30, 40, 30] = 9                       # one voxel
    return lab


def test_region_mode_equals_whole_volume(backend):
    ct = ct_volume(11)
    lab = face_labels()
    regions = rg.find_regions(lab)
    spacing_xyz = (0.7, 0.7, 2.5)
    whole = dop.dem(ct, spacing=spacing_xyz, backend=backend)
    crops = dop.dem_regions(ct, regions, spacing=spacing_xyz, backend=backend)
    assert len(crops) == len(regions)
    for i in range(len(regions)):
        np.testing.assert_array_equal(crops.crop(i), whole[regions.bbox_slices(i)],
                                      err_msg=f"crop of label {regions.label[i]} ({backend})")
    values, offsets = dop.region_values(crops, regions)
    for i, lbl in enumerate(regions.label):
        np.testing.assert_array_equal(values[offsets[i]:offsets[i + 1]], whole[lab == lbl])
    # the border rule is the volume's, not the crop's: a padded crop would differ at the faces
    assert not np.array_equal(crops.crop(0), ref.dem(ct[regions.bbox_slices(0)], (2.5, 0.7, 0.7)))


def test_region_mode_many_boxes(fast_backend):
    ct = ct_volume(12, (30, 40, 50))
    rng = np.random.default_rng(5)
    lo = rng.integers(0, [30, 40, 50], size=(200, 3))
    hi = np.minimum(lo + rng.integers(0, 6, size=(200, 3)), [29, 39, 49])
    boxes = np.concatenate([lo, hi], axis=1)
    sp = (2.5, 0.7, 0.7)
    whole = dop.dem_array(ct, sp, backend=fast_backend)
    crops = dop.dem_boxes(ct, sp, boxes, backend=fast_backend)
    for i, b in enumerate(boxes):
        np.testing.assert_array_equal(crops.crop(i), whole[b[0]:b[3] + 1, b[1]:b[4] + 1, b[2]:b[5] + 1])
    # and against the reference
    expected = ref.dem(ct, sp)
    for i, b in enumerate(boxes[:20]):
        assert_dem_close(crops.crop(i), expected[b[0]:b[3] + 1, b[1]:b[4] + 1, b[2]:b[5] + 1], fast_backend, "box")


def test_region_mode_empty_region():
    ct = ct_volume(13, (10, 12, 14))
    lab = np.zeros(ct.shape, np.int32)
    lab[2:4, 3:5, 4:6] = 1
    lab[7, 8, 9] = 3
    regions = rg.find_regions(lab)
    regions.count[0] = 0
    regions.bbox[0] = -1
    crops = dop.dem_regions(ct, regions, spacing=(1, 1, 1), backend="cpu")
    assert crops.crop(0).size == 0 and crops.crop(1).shape == (1, 1, 1)


# ---- bad input ----------------------------------------------------------------------------------------

def test_bad_input(backend):
    sitk = pytest.importorskip("SimpleITK")

    ct = ct_volume(14, (8, 9, 10))
    for s in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="sigma"):
            dop.dem(ct, sigma=s, spacing=(1, 1, 1), backend=backend)
    for g in (0, -2.0, float("nan")):
        with pytest.raises(ValueError, match="gamma"):
            dop.dem(ct, gamma=g, spacing=(1, 1, 1), backend=backend)
        with pytest.raises(ValueError, match="gamma"):
            eop.elasticity(ct, gamma=g, backend=backend)
    with pytest.raises(ValueError, match="clipRange"):
        eop.elasticity(ct, clip_range=(100, -100), backend=backend)
    with pytest.raises(ValueError, match="referenceDensity"):
        dop.dem(ct, reference_density=0.0, spacing=(1, 1, 1), backend=backend)
    for bad in (ct[0], ct[None], np.zeros(5)):
        with pytest.raises(ValueError, match="3-D"):
            dop.dem(bad, backend=backend)
        with pytest.raises(ValueError, match="3-D"):
            eop.elasticity(bad, backend=backend)
    with pytest.raises(ValueError, match="3-D"):
        dop.dem(sitk.Image(5, 6, sitk.sitkInt16), backend=backend)
    with pytest.raises(ValueError, match="spacing"):
        dop.dem(ct, spacing=(1.0, 0.0, 1.0), backend=backend)


def test_nan_in_crop_is_an_error(backend):
    ct = ct_volume(15).astype(np.float32)
    lab = face_labels()
    regions = rg.find_regions(lab)
    far = (10, 30, 30)                       # outside every crop (bbox + halo)
    ct[far] = np.nan
    crops = dop.dem_regions(ct, regions, spacing=(0.7, 0.7, 2.5), backend=backend)   # no error
    assert np.all(np.isfinite(crops.values))
    with pytest.raises(ValueError, match=r"NaN voxel at z,y,x=\(10, 30, 30\)"):
        dop.dem(ct, spacing=(0.7, 0.7, 2.5), backend=backend)
    with pytest.raises(ValueError, match="NaN"):
        eop.elasticity(ct, backend=backend)
    ct[far] = 0
    # in the halo of region 8 (interior box 18..23, 18..25, 14..21), outside the box itself
    ct[20, 18, 23] = np.nan
    with pytest.raises(ValueError, match=r"region label 8.*expected finite HU"):
        dop.dem_regions(ct, regions, spacing=(0.7, 0.7, 2.5), backend=backend)


# ---- features on the maps -----------------------------------------------------------------------------

def test_extract_three_image_types(backend):
    pytest.importorskip("pandas")
    ct = ct_volume(16)
    lab = face_labels()
    lab[lab == 9] = 0    # a one-voxel region has a NaN-free but degenerate histogram; keep it simple
    spacing = (0.7, 0.7, 2.5)
    params = {"imageType": {"Original": {}, "Elasticity": {"gamma": 2.0}, "DEM": {"sigma": 1.0, "binWidth": 5}},
              "featureClass": {"firstorder": None}}
    df = rlnfast.extract(ct, lab, params=params, spacing=spacing, backend=backend)
    for prefix in ("original_", "E_original_", "DEM_original_"):
        for f in fo.DEFAULT_FEATURES:
            assert f"{prefix}firstorder_{f}" in df.columns
    assert df["diagnostics_DEM_sigma"].iloc[0] == 1.0
    assert df["diagnostics_Elasticity_gamma"].iloc[0] == 2.0
    regions = rg.find_regions(lab)
    e_map = eop.elasticity(ct, backend=backend)
    d_map = dop.dem(ct, spacing=spacing, backend=backend)
    vol = float(np.prod(spacing))
    # the maps of the same backend, whole volume, gathered with the mask: region mode gives the same voxel
    # values (bitwise), so the features agree to the first-order tolerance, float32 GPU maps included
    for prefix, m, bw in (("E_original_", e_map, 25.0), ("DEM_original_", d_map, 5.0)):
        v, o = rg.gather(m, regions)
        expected = fo.firstorder(v, o, bin_width=bw, voxel_volume=vol, backend="numpy")
        for j, f in enumerate(fo.FEATURES):
            if f in fo.DEFAULT_FEATURES:
                assert_close(df[f"{prefix}firstorder_{f}"].to_numpy(), expected[:, j], backend, f"{prefix}{f}")
    # per-image-type binWidth: DEM with binWidth 5 differs from the general 25
    e25 = fo.firstorder(*rg.gather(d_map, regions), bin_width=25.0, backend="numpy")
    assert not np.allclose(df["DEM_original_firstorder_Entropy"], e25[:, fo.FEATURES.index("Entropy")])


def test_imagetype_crops_equal_whole_maps():
    from rlnfast.imagetypes import REGISTRY, ImageTypeContext
    from rlnfast.io import Volume
    from rlnfast.params import load_params

    ct = ct_volume(17)
    lab = face_labels()
    regions = rg.find_regions(lab)
    vol = Volume(ct, (0.7, 0.7, 2.5))
    p = load_params({"imageType": {"Elasticity": {}, "DEM": {"sigma": 1.5}}})
    e_map = eop.elasticity(ct, backend="cpu")
    d_map = dop.dem(ct, spacing=(0.7, 0.7, 2.5), sigma=1.5, backend="cpu")
    for itype, m in (("Elasticity", e_map), ("DEM", d_map)):
        data = REGISTRY[itype](ImageTypeContext(vol, regions, p.settings_for(itype), "cpu"))
        assert data.value_dtype == np.float64
        v, o = rg.gather(m, regions)
        np.testing.assert_array_equal(data.offsets, o)
        np.testing.assert_allclose(data.values, v, rtol=1e-15, atol=0)
        for i in range(len(regions)):
            np.testing.assert_allclose(data.crop(i), m[regions.bbox_slices(i)], rtol=1e-15, atol=0)
    assert data.diagnostics["sigma"] == 1.5


# ---- writing the maps ---------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["nii.gz", "nrrd"])
def test_write_maps(tmp_path, fmt):
    import SimpleITK as sitk

    ct = ct_volume(18, (8, 10, 12))
    img = sitk.GetImageFromArray(ct)
    img.SetSpacing((0.7, 0.8, 2.5))
    img.SetOrigin((10.0, -3.0, 7.5))
    paths = dop.write_maps(img, tmp_path / "case1", sigma=1.0, gamma=2.0, format=fmt, backend="cpu")
    assert set(paths) == {"E", "DEM"}
    assert paths["DEM"].name == f"case1_DEM.{fmt}"
    for name, expected in (("E", ref.elasticity(ct)), ("DEM", ref.dem(ct, (2.5, 0.8, 0.7)))):
        back = sitk.ReadImage(str(paths[name]))
        assert back.GetSpacing() == pytest.approx(img.GetSpacing())
        assert back.GetOrigin() == pytest.approx(img.GetOrigin())
        np.testing.assert_allclose(sitk.GetArrayFromImage(back), expected, rtol=1e-6, atol=1e-4 * np.abs(expected).max())
    folder = tmp_path / "maps"
    folder.mkdir()
    paths = dop.write_maps(img, folder, format=fmt, backend="cpu", maps=("DEM",))
    assert list(paths) == ["DEM"] and paths["DEM"] == folder / f"DEM.{fmt}"


def test_cli_maps(tmp_path, capsys):
    import SimpleITK as sitk

    from rlnfast.cli import main

    ct = ct_volume(19, (6, 8, 9))
    img = sitk.GetImageFromArray(ct)
    img.SetSpacing((0.7, 0.7, 2.5))
    src = tmp_path / "ct.nrrd"
    sitk.WriteImage(img, str(src))
    rc = main(["maps", str(src), "-o", str(tmp_path / "out") + "/", "--sigma", "2", "--gamma", "1.5",
               "--format", "nrrd", "--backend", "cpu"])
    assert rc == 0
    d = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "out" / "DEM.nrrd")))
    np.testing.assert_allclose(d, ref.dem(ct, (2.5, 0.7, 0.7), sigma=2.0, gamma=1.5), rtol=1e-6,
                               atol=1e-5 * np.abs(d).max())
    assert "DEM:" in capsys.readouterr().out
    assert main(["maps", str(src), "-o", str(tmp_path / "x"), "--sigma", "0", "--backend", "cpu"]) == 2


def test_elasticity_table_and_direct_paths_identical():
    """A whole integer CT goes through the lookup table, a small crop through the direct formula (no table for a
    few voxels): the same E, bit for bit."""
    from rlnfast.ops.elasticity import elasticity_array

    rng = np.random.default_rng(11)
    big = rng.integers(-1100, 3200, size=(40, 40, 40)).astype(np.int16)   # 64,000 voxels: the table
    small = big[3:5, 7:12, 1:6].copy()                                      # 50 voxels: direct
    e_big = elasticity_array(big, backend="cpu")
    e_small = elasticity_array(small, backend="cpu")
    assert np.array_equal(e_big[3:5, 7:12, 1:6], e_small)
    np.testing.assert_allclose(e_small, elasticity_array(small, backend="numpy"), rtol=1e-12)
