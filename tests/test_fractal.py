"""Fractal features (features.md "Fractal features"): analytic shapes, DBC, lacunarity, every backend against
the NumPy reference, and the fractal class in rlnfast.extract."""
from __future__ import annotations

import json

import numpy as np
import pytest

from rlnfast.ops import fractal as op
from rlnfast.reference import fractal as ref

from conftest import assert_close

LOG20_3 = np.log(20.0) / np.log(3.0)   # 2.72683...
LOG8_3 = np.log(8.0) / np.log(3.0)     # 1.89279...


# ---- shapes ----------------------------------------------------------------------------------------------

def menger(level: int) -> np.ndarray:
    """Level-n Menger sponge on a 3^n grid: a cell is removed when, at any scale, two of its three base-3
    digits are 1."""
    n = 3 ** level
    i = np.arange(n)
    keep = np.ones((n, n, n), bool)
    for k in range(level):
        d = (i // 3 ** k) % 3 == 1
        z, y, x = np.meshgrid(d, d, d, indexing="ij")
        keep &= ~((z & y) | (y & x) | (z & x))
    return keep


def carpet(level: int) -> np.ndarray:
    """One-voxel-thick Sierpinski carpet (1, 3^n, 3^n)."""
    n = 3 ** level
    i = np.arange(n)
    keep = np.ones((n, n), bool)
    for k in range(level):
        d = (i // 3 ** k) % 3 == 1
        keep &= ~(d[:, None] & d[None, :])
    return keep[None]


def fbm_surface(n: int, hurst: float, seed: int) -> np.ndarray:
    """Fractional Brownian surface by spectral synthesis: amplitude |k|^-(H+1), random phases."""
    rng = np.random.default_rng(seed)
    k = np.hypot(np.fft.fftfreq(n)[None, :], np.fft.fftfreq(n)[:, None])
    k[0, 0] = 1.0
    amp = k ** (-(hurst + 1.0))
    amp[0, 0] = 0.0
    return np.fft.ifft2(amp * np.exp(1j * rng.uniform(0, 2 * np.pi, (n, n)))).real


def features(mask, spacing_zyx=(1.0, 1.0, 1.0), backend="cpu", **kw):
    return op.region_features(op.crops_from_masks([mask], spacing_zyx), backend=backend, **kw)


# ---- analytic shapes (every backend) ---------------------------------------------------------------------

def test_solid_cube(backend):
    r = features(np.ones((128, 128, 128), bool), backend=backend, box_sizes=[1, 2, 4, 8])
    assert r.counts["MaskFD"][0].tolist() == [128 ** 3, 64 ** 3, 32 ** 3, 16 ** 3]
    assert abs(r.features["MaskFD"][0] - 3.0) < 1e-12
    assert abs(r.features["SurfaceFD"][0] - 2.0) < 0.1
    # boundary shell: m^3 - (m-2)^3 boxes, m = 128 / s
    assert r.counts["SurfaceFD"][0].tolist() == [m ** 3 - (m - 2) ** 3 for m in (128, 64, 32, 16)]
    for k in range(3):
        assert abs(r.features[f"MaskFD_local_{k}"][0] - 3.0) < 1e-12
    assert abs(r.features["Lacunarity"][0] - 1.0) < 1e-12   # every box full


@pytest.mark.parametrize("shape,dim", [((1, 64, 64), 2.0), ((1, 1, 64), 1.0), ((64, 1, 1), 1.0)])
def test_plane_and_line_default_sizes(backend, shape, dim):
    r = features(np.ones(shape, bool), backend=backend)   # s_k = 1 * 2^k <= L = 64 (s = L included)
    assert r.sizes_mm[0].tolist() == [1, 2, 4, 8, 16, 32, 64]
    assert abs(r.features["MaskFD"][0] - dim) < 1e-12


def test_default_sizes_follow_the_specification(backend):
    """s_min = the smallest spacing, s_k = s_min 2^k <= L (the largest extent of the bounding box, equality
    included); fractalMinBoxSize moves s_min only; fractalBoxSizes replaces the series."""
    sp = (2.5, 0.7, 0.7)
    masks = [np.ones((4, 15, 12), bool),    # extents 10, 10.5, 8.4 mm: L = 10.5 -> 0.7 .. 5.6
             np.ones((2, 8, 8), bool),      # a 5 mm node: L = 5.6 -> 0.7, 1.4, 2.8, 5.6 (5.6 = L counts)
             np.ones((1, 1, 1), bool)]      # one voxel: L = 2.5 -> 0.7, 1.4
    cr = op.crops_from_masks(masks, sp)
    r = op.region_features(cr, backend=backend)
    assert r.n_sizes.tolist() == [4, 4, 2]
    np.testing.assert_allclose(r.sizes_mm[0, :4], [0.7, 1.4, 2.8, 5.6], rtol=1e-15)
    assert np.isfinite(r.features["MaskFD"][:2]).all() and np.isnan(r.features["MaskFD"][2])
    r = op.region_features(cr, min_box_size=2.5, backend=backend)   # the old default's s_min: 2.5, 5, 10
    assert r.n_sizes.tolist() == [3, 2, 1]
    r = op.region_features(cr, box_sizes=[3.0, 1.0, 2.0, 40.0], backend=backend)
    assert r.n_sizes.tolist() == [4, 4, 4]
    np.testing.assert_allclose(r.sizes_mm[2], [1.0, 2.0, 3.0, 40.0])


def test_ct_nodes_of_5_to_15_mm_get_three_sizes_by_default():
    """The reason for the specification's change: at 0.7 x 0.7 x 2.5 mm, every node of 5-15 mm gets at least
    3 box sizes by default (the old default, 2.5 mm up to L/2, gave them fewer)."""
    from rlnfast.segmentation.synthetic import make_ct

    ct = make_ct(shape=(24, 96, 96), spacing=(0.7, 0.7, 2.5), n_nodes=20, seed=4)
    regions = _regions(ct.labels)
    cr = op.crops_from_label_map(ct.labels, regions.label, regions.bbox, ct.spacing[::-1])
    plan = op.plan_box_sizes(cr)
    L = plan.extent / op.UNITS_PER_MM
    assert (L >= 5).sum() >= 15 and (plan.n_sizes[L >= 5] >= 3).all()
    assert (op.plan_box_sizes(cr, min_box_size=2.5).n_sizes < 3).any()


def test_menger_sponge(backend):
    r = features(menger(4), backend=backend, box_sizes=[1, 3, 9, 27])
    assert r.counts["MaskFD"][0].tolist() == [20 ** 4, 20 ** 3, 20 ** 2, 20]
    assert abs(r.features["MaskFD"][0] - LOG20_3) < 1e-9
    assert abs(LOG20_3 - 2.72683) < 1e-5


def test_sierpinski_carpet(backend):
    r = features(carpet(4), backend=backend, box_sizes=[1, 3, 9, 27])
    assert r.counts["MaskFD"][0].tolist() == [8 ** 4, 8 ** 3, 8 ** 2, 8]
    assert abs(r.features["MaskFD"][0] - LOG8_3) < 1e-9
    assert abs(LOG8_3 - 1.89279) < 1e-5


def test_anisotropic_cube_1x1x2(backend):
    # 64 mm cube of 1 x 1 x 2 mm voxels: at s = 1 mm every voxel straddles two boxes along z
    r = features(np.ones((32, 64, 64), bool), spacing_zyx=(2.0, 1.0, 1.0), backend=backend, box_sizes=[1, 2, 4, 8])
    assert r.counts["MaskFD"][0].tolist() == [64 ** 3, 32 ** 3, 16 ** 3, 8 ** 3]
    assert r.features["MaskFD"][0] == pytest.approx(3.0, abs=1e-12)


def test_anisotropic_ct_spacing_cube(backend):
    # 17.5 mm cube of 0.7 x 0.7 x 2.5 mm voxels; 0.875 mm boxes are no multiple of either spacing, and
    # 25 * 0.7 == 17.5 must not be broken by rounding
    r = features(np.ones((7, 25, 25), bool), spacing_zyx=(2.5, 0.7, 0.7), backend=backend,
                 box_sizes=[0.875, 1.75, 3.5])
    assert r.counts["MaskFD"][0].tolist() == [20 ** 3, 10 ** 3, 5 ** 3]
    assert r.features["MaskFD"][0] == pytest.approx(3.0, abs=1e-12)


def test_anisotropic_menger_sponge(backend):
    # level-3 sponge whose 2 mm cells are 2 x 2 x 1 voxels of 1 x 1 x 2 mm (z, y, x = 2, 1, 1 mm)
    m = menger(3).repeat(2, axis=1).repeat(2, axis=2)
    r = features(m, spacing_zyx=(2.0, 1.0, 1.0), backend=backend, box_sizes=[2, 6, 18])
    assert r.counts["MaskFD"][0].tolist() == [20 ** 3, 20 ** 2, 20]
    assert abs(r.features["MaskFD"][0] - LOG20_3) < 1e-9


def test_exact_box_edges():
    # 20 voxels of 0.7 mm in boxes of 1.4 / 2.8 / 5.6 mm: edges coincide exactly (14 mm = 10 * 1.4), which
    # floating point (0.7 * 2 / 1.4 etc.) would get wrong without integer units
    line = np.ones((1, 1, 20), bool)
    cr = op.crops_from_masks([line], (0.7, 0.7, 0.7))
    plan = op.plan_box_sizes(cr, box_sizes=[1.4, 2.8, 5.6])
    c = op.box_counts(cr, plan, "cpu")
    assert c["n_mask"][0].tolist() == [10, 5, 3]
    assert c["n_grid"][0].tolist() == [10, 5, 3]
    # one 1 mm voxel in 0.4 mm boxes: [0, 1) meets boxes 0, 1, 2 on each axis; its centre is in box 1
    one = op.crops_from_masks([np.ones((1, 1, 1), bool)], (1.0, 1.0, 1.0))
    c = op.box_counts(one, op.plan_box_sizes(one, box_sizes=[0.4]), "cpu")
    assert c["n_mask"][0, 0] == 27 and c["n_grid"][0, 0] == 27 and c["sum_m2"][0, 0] == 1
    assert ref.box_counts_one(np.ones((1, 1, 1), bool), one.spacing_units, 400000) == (27, 27, 1, 27)


def test_lacunarity_bernoulli(backend):
    rng = np.random.default_rng(7)
    for p in (0.1, 0.3, 0.6):
        m = rng.random((64, 64, 64)) < p
        m[0, 0, 0] = m[-1, -1, -1] = True   # bounding box = the whole volume
        r = features(m, backend=backend, box_sizes=[2, 4, 8])
        expected = [1 + (1 - p) / (p * n) for n in (8, 64, 512)]
        np.testing.assert_allclose(r.lacunarity[0], expected, rtol=0.02)
        assert r.features["Lacunarity"][0] == pytest.approx(np.mean(r.lacunarity[0]), rel=1e-12)
    # a gappier mask (same density, clustered) has a higher lacunarity
    blocks = rng.random((8, 8, 8)) < 0.3
    clustered = blocks.repeat(8, 0).repeat(8, 1).repeat(8, 2)
    clustered[0, 0, 0] = clustered[-1, -1, -1] = True
    rc = features(clustered, backend=backend, box_sizes=[2, 4, 8])
    assert rc.features["Lacunarity"][0] > 2 * r.features["Lacunarity"][0]


# ---- DBC -------------------------------------------------------------------------------------------------

def test_dbc_constant_cube_equals_maskfd(backend):
    cube = np.ones((32, 32, 32), bool)
    cr = op.crops_from_masks([cube], (1.0, 1.0, 1.0))
    d = op.dbc_features(cr, np.full(cube.size, 40.0), backend=backend)
    m = op.region_features(cr, backend=backend)
    assert d.sizes_mm[0].tolist() == [1, 2, 4, 8, 16, 32]   # up to L = 32 mm
    assert d.counts["DBCFD"][0].tolist() == m.counts["MaskFD"][0].tolist()
    assert d.features["DBCFD"][0] == pytest.approx(m.features["MaskFD"][0], abs=1e-12)
    assert d.features["DBCFD"][0] == pytest.approx(3.0, abs=1e-12)
    assert d.extra["DBCFD_IntensityRange"][0].tolist() == [40.0, 40.0]
    assert json.loads(d.diagnostics()["diagnostics_fractal_DBCFD_IntensityRange"][0]) == [40.0, 40.0]


def test_dbc_fbm_rises_as_hurst_falls(backend):
    n = 128
    dims = []
    for h in (0.8, 0.5, 0.2):
        surf = fbm_surface(n, h, seed=3)[None]
        cr = op.crops_from_masks([np.ones(surf.shape, bool)], (1.0, 1.0, 1.0))
        dims.append(op.dbc_features(cr, surf.ravel(), backend=backend).features["DBCFD"][0])
    assert dims[0] + 0.02 < dims[1] < dims[2] - 0.02, dims
    assert all(1.5 < d < 3.0 for d in dims), dims


def test_dbc_grey_levels_change_counts():
    rng = np.random.default_rng(1)
    m = np.ones((16, 16, 16), bool)
    v = rng.normal(size=m.size)
    cr = op.crops_from_masks([m], (1.0, 1.0, 1.0))
    a = op.dbc_features(cr, v, grey_levels=256, backend="cpu").counts["DBCFD"]
    b = op.dbc_features(cr, v, grey_levels=16, backend="cpu").counts["DBCFD"]
    assert not np.array_equal(a, b)
    with pytest.raises(ValueError, match="fractalGreyLevels"):
        op.dbc_features(cr, v, grey_levels=1, backend="cpu")


# ---- NaN reasons -----------------------------------------------------------------------------------------

def test_nan_reasons(backend):
    masks = [np.ones((3, 3, 3), bool), np.zeros((4, 4, 4), bool), np.ones((6, 6, 6), bool),
             np.ones((8, 8, 8), bool)]
    cr = op.crops_from_masks(masks, (1.0, 1.0, 1.0))
    r = op.region_features(cr, backend=backend)
    # 3 mm cube: s = 1, 2 <= 3; empty region: no sizes; 6 mm cube: 1, 2, 4; 8 mm cube: 1, 2, 4, 8
    assert r.n_sizes.tolist() == [2, 0, 3, 4]
    for f in op.REGION_FEATURES:
        assert np.isnan(r.features[f][0]) and np.isnan(r.features[f][1]), f
        assert np.isfinite(r.features[f][3]), f
    assert np.isfinite(r.features["MaskFD"][2])
    assert "fewer than 3 box sizes" in r.reason[0] and "L = 3 mm" in r.reason[0]
    assert "empty region" in r.reason[1]
    assert r.reason[2] == "" and r.reason[3] == ""
    # MaskFD_local_k is NaN where s_{k+1} is missing, with its own reason; every NaN feature has a reason
    assert np.isfinite(r.features["MaskFD_local_1"][2]) and np.isnan(r.features["MaskFD_local_2"][2])
    diag = r.diagnostics()
    local2 = diag["diagnostics_fractal_MaskFD_local_2_Reason"]
    assert "no box size s_3" in local2[2] and "3 sizes" in local2[2]
    assert local2[0] == r.reason[0] and local2[1] == r.reason[1] and local2[3] == ""
    for f in op.REGION_FEATURES:
        own = diag.get(f"diagnostics_fractal_{f}_Reason", diag["diagnostics_fractal_Reason"])
        for i in range(len(masks)):
            assert np.isnan(r.features[f][i]) == bool(own[i] or r.reason[i]), (f, i)
    v = np.zeros(len(cr.mask))
    v[cr.offsets[2] + 5] = np.nan
    d = op.dbc_features(cr, v, backend=backend)
    assert np.isnan(d.features["DBCFD"][:3]).all() and np.isfinite(d.features["DBCFD"][3])
    assert "non-finite" in d.reason[2] and d.reason[3] == ""
    assert "fewer than 3 box sizes" in d.reason[0]


# ---- every backend against the reference -----------------------------------------------------------------

def random_label_map(shape=(24, 40, 40), n_seeds=300, seed=0):
    """Seeded irregular regions: nearest-seed cells (anisotropic distance), a smooth background field and
    random holes; many regions touch the volume border, some are split in pieces."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    pts = rng.uniform(0, 1, (n_seeds, 3)) * np.array(shape)
    grid = np.stack(np.meshgrid(*[np.arange(s) + 0.5 for s in shape], indexing="ij"), -1).reshape(-1, 3)
    w = rng.uniform(0.5, 2.0, 3)
    best = np.full(len(grid), np.inf)
    lab = np.zeros(len(grid), np.int32)
    for i in range(n_seeds):
        d = (((grid - pts[i]) * w) ** 2).sum(1)
        closer = d < best
        best[closer] = d[closer]
        lab[closer] = i + 1
    lab = lab.reshape(shape)
    field = ndimage.gaussian_filter(rng.normal(size=shape), 2.0)
    lab[field > np.quantile(field, 0.7)] = 0
    lab[rng.random(shape) < 0.05] = 0
    return lab


def _regions(lab):
    from rlnfast.regions import find_regions

    return find_regions(lab)


PARITY_SETTINGS = [
    pytest.param((1.0, 1.0, 1.0), {}, id="iso-default"),
    pytest.param((2.5, 0.7, 0.7), {"min_box_size": 0.7}, id="ct-spacing-min0.7"),
    pytest.param((2.5, 0.8, 0.7), {}, id="ct-spacing-default"),
    pytest.param((2.0, 1.0, 1.0), {"box_sizes": [0.5, 1.3, 2.9, 4.0]}, id="1x1x2-explicit-odd-sizes"),
]


@pytest.fixture(scope="module")
def parity_case():
    lab = random_label_map()
    regions = _regions(lab)
    rng = np.random.default_rng(5)
    img = (rng.normal(40, 15, lab.shape) + 30 * np.sin(np.arange(lab.shape[2]) / 3.0)[None, None, :]).round()
    return lab, regions, img


@pytest.mark.parametrize("spacing,kw", PARITY_SETTINGS)
def test_parity_region_features(fast_backend, parity_case, spacing, kw):
    lab, regions, _ = parity_case
    assert len(regions) > 200
    touching = (regions.bbox[:, :3] == 0).any(1) | (regions.bbox[:, 3:] == np.array(lab.shape) - 1).any(1)
    assert touching.sum() > 20
    cr = op.crops_from_label_map(lab, regions.label, regions.bbox, spacing)
    expected = op.region_features(cr, backend="numpy", **kw)
    got = op.region_features(cr, backend=fast_backend, **kw)
    np.testing.assert_array_equal(got.n_sizes, expected.n_sizes)
    np.testing.assert_array_equal(got.sizes_mm, expected.sizes_mm)
    for k in expected.counts:
        np.testing.assert_array_equal(got.counts[k], expected.counts[k], err_msg=k)
    for f in op.REGION_FEATURES:
        assert_close(got.features[f], expected.features[f], fast_backend, f)
    assert np.isfinite(expected.features["MaskFD"]).sum() > 50
    assert list(got.reason) == list(expected.reason)


@pytest.mark.parametrize("spacing,kw", PARITY_SETTINGS)
def test_parity_dbc(fast_backend, parity_case, spacing, kw):
    lab, regions, img = parity_case
    cr = op.crops_from_label_map(lab, regions.label, regions.bbox, spacing)
    values = op.pack_values(cr, lambda i: img[regions.bbox_slices(i)])
    # one region with constant intensities, one with a NaN voxel inside
    r0, r1 = (int(i) for i in np.argsort(cr.count)[-2:])
    seg0 = slice(cr.offsets[r0], cr.offsets[r0 + 1])
    values[seg0] = 7.0
    inside = np.nonzero(cr.mask[cr.offsets[r1]:cr.offsets[r1 + 1]])[0]
    values[cr.offsets[r1] + inside[0]] = np.nan
    expected = op.dbc_features(cr, values, backend="numpy", **kw)
    got = op.dbc_features(cr, values, backend=fast_backend, **kw)
    np.testing.assert_array_equal(got.counts["DBCFD"], expected.counts["DBCFD"])
    assert_close(got.features["DBCFD"], expected.features["DBCFD"], fast_backend, "DBCFD")
    assert list(got.reason) == list(expected.reason)
    np.testing.assert_array_equal(got.extra["DBCFD_IntensityRange"], expected.extra["DBCFD_IntensityRange"])
    assert np.isnan(got.features["DBCFD"][r1]) and "non-finite" in got.reason[r1]


def test_parity_counts_level(fast_backend, parity_case):
    """The op level: the same (region, size) pairs give identical integer counts on every backend."""
    lab, regions, img = parity_case
    cr = op.crops_from_label_map(lab, regions.label, regions.bbox, (1.5, 0.8, 0.6))
    plan = op.plan_box_sizes(cr, box_sizes=[0.6, 1.0, 2.2])
    a = op.box_counts(cr, plan, fast_backend)
    b = op.box_counts(cr, plan, "numpy")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    v = op.pack_values(cr, lambda i: img[regions.bbox_slices(i)])
    na, loa, hia = op.dbc_counts(cr, v, plan, 64, fast_backend)
    nb, lob, hib = op.dbc_counts(cr, v, plan, 64, "numpy")
    np.testing.assert_array_equal(na, nb)
    np.testing.assert_array_equal(loa, lob)
    np.testing.assert_array_equal(hia, hib)


def test_crops_match_label_map(parity_case):
    lab, regions, _ = parity_case
    cr = op.crops_from_label_map(lab, regions.label, regions.bbox, (1.0, 1.0, 1.0))
    for i in (0, 7, len(regions) - 1):
        np.testing.assert_array_equal(cr.crop(i), lab[regions.bbox_slices(i)] == regions.label[i])
    np.testing.assert_array_equal(cr.count, regions.count)


def test_reference_sizes_match_plan(parity_case):
    lab, regions, _ = parity_case
    cr = op.crops_from_label_map(lab, regions.label, regions.bbox, (2.5, 0.7, 0.7))
    plan = op.plan_box_sizes(cr, min_box_size=0.7)
    for r in range(0, len(regions), 17):
        assert ref.box_sizes_one(tuple(cr.dims[r]), cr.spacing_units, 0.7) == \
            plan.sizes[r, :plan.n_sizes[r]].tolist()


# ---- documentation and parameters ------------------------------------------------------------------------

def test_feature_docs_and_settings_documented():
    assert set(op.FEATURE_DOCS) == set(op.FEATURES)
    assert all(len(v) > 40 for v in op.FEATURE_DOCS.values())
    for key in ("fractalMinBoxSize", "fractalBoxSizes", "fractalGreyLevels"):
        assert key in op.__doc__ + "".join(op.FEATURE_DOCS.values())
    from rlnfast import params

    for key, default in (("fractalMinBoxSize", None), ("fractalBoxSizes", None), ("fractalGreyLevels", 256)):
        assert params.SUPPORTED_SETTINGS[key] == default


# ---- extract ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_ct():
    from rlnfast.segmentation.synthetic import make_ct

    return make_ct(shape=(40, 128, 128), spacing=(0.7, 0.7, 2.5), n_nodes=25, seed=2)


def _enabled_image_types():
    from rlnfast.imagetypes import REGISTRY

    # fractal runs on rlnfast's image types (pyradiomics' filtered ones are refused with it)
    return {k: {} for k, it in REGISTRY.items() if not it.pyradiomics or k == "Original"}


def test_extract_fractal_columns(small_ct):
    from rlnfast.extract import extract
    from rlnfast.imagetypes import prefix

    itypes = _enabled_image_types()
    params = {"imageType": itypes, "featureClass": {"fractal": None}, "setting": {"fractalMinBoxSize": 0.7}}
    df = extract(small_ct.image, small_ct.labels, params, backend="cpu", spacing=small_ct.spacing)
    assert len(df) == len(small_ct.centres)
    for f in op.REGION_FEATURES:
        assert f"original_fractal_{f}" in df.columns
        assert not any(c.endswith(f"_original_fractal_{f}") for c in df.columns)   # once per region
    for it in itypes:
        assert f"{prefix(it)}fractal_DBCFD" in df.columns
        assert f"diagnostics_{it}_fractal_DBCFD_Counts" in df.columns
    assert np.isfinite(df["original_fractal_MaskFD"]).mean() > 0.8
    ok = np.isfinite(df["original_fractal_MaskFD"]).to_numpy()
    assert df["original_fractal_MaskFD"][ok].between(2.0, 3.2).all()
    row = df[ok].iloc[0]
    sizes = json.loads(row["diagnostics_fractal_BoxSizes"])
    counts = json.loads(row["diagnostics_fractal_MaskFD_Counts"])
    assert sizes[:3] == [0.7, 1.4, 2.8] and len(counts) == len(sizes)
    assert 0.9 < row["diagnostics_fractal_MaskFD_R2"] <= 1.0
    # the same numbers as the op on the same regions
    from rlnfast.regions import find_regions

    regions = find_regions(small_ct.labels)
    cr = op.crops_from_label_map(small_ct.labels, regions.label, regions.bbox, small_ct.spacing[::-1])
    r = op.region_features(cr, min_box_size=0.7, backend="cpu")
    np.testing.assert_array_equal(df["original_fractal_MaskFD"].to_numpy(), r.features["MaskFD"])


def test_extract_nan_reason_and_feature_selection(small_ct):
    from rlnfast.extract import extract

    # defaults (s_min = 0.7 mm, the smallest spacing, up to L): every node has its features
    df = extract(small_ct.image, small_ct.labels, {"featureClass": {"fractal": None}}, backend="cpu",
                 spacing=small_ct.spacing)
    assert np.isfinite(df["original_fractal_MaskFD"]).all()
    assert (df["diagnostics_fractal_Reason"] == "").all()
    for k in range(3):   # a NaN MaskFD_local_k always says why
        nan_k = np.isnan(df[f"original_fractal_MaskFD_local_{k}"]).to_numpy()
        reasons = df[f"diagnostics_fractal_MaskFD_local_{k}_Reason"].to_numpy()
        assert all(f"no box size s_{k + 1}" in s for s in reasons[nan_k]) and all(s == "" for s in reasons[~nan_k])
    # fractalMinBoxSize 4 mm: sizes 4, 8, 16 need L >= 16 mm, so the smaller nodes get fewer than 3 sizes
    df = extract(small_ct.image, small_ct.labels, {"featureClass": {"fractal": ["MaskFD", "DBCFD"]},
                                                   "setting": {"fractalMinBoxSize": 4.0}},
                 backend="cpu", spacing=small_ct.spacing)
    assert set(c for c in df.columns if "fractal_" in c and not c.startswith("diagnostics")) == \
        {"original_fractal_MaskFD", "original_fractal_DBCFD"}
    nan = np.isnan(df["original_fractal_MaskFD"]).to_numpy()
    assert nan.any()
    assert all("fewer than 3 box sizes" in s for s in df["diagnostics_fractal_Reason"][nan])
    assert all(s == "" for s in df["diagnostics_fractal_Reason"][~nan])
    with pytest.raises(ValueError, match="unknown feature"):
        extract(small_ct.image, small_ct.labels, {"featureClass": {"fractal": ["Bogus"]}}, backend="cpu",
                spacing=small_ct.spacing)
    with pytest.raises(ValueError, match="fractalBoxSizes"):
        extract(small_ct.image, small_ct.labels, {"featureClass": {"fractal": None}}, backend="cpu",
                spacing=small_ct.spacing, fractalBoxSizes=[1.0, -2.0])
