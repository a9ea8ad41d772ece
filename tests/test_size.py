"""Node size (class ``size``): the specification's analytic checks on every backend (axis-aligned block, one
pixel, digital disk, largest slice wins, plus a diagonal line that no axis-aligned caliper measures), the C++
kernel against the NumPy/SciPy reference on random masks with anisotropic spacing, and the class in
``extract``."""
from __future__ import annotations

import math

import numpy as np
import pytest

import rlnfast
from rlnfast.ops import size as op
from rlnfast.reference import size as ref

from conftest import assert_close

SPACING = (2.5, 0.7, 0.9)   # z, y, x mm: dy != dx


def _one(mask, spacing, backend):
    r = op.size_of_masks([mask], spacing, backend)
    return (float(r.features["ShortAxisDiameter"][0]), float(r.features["LongAxisDiameter"][0]),
            int(r.features["AxialSlices"][0]), r)


@pytest.mark.parametrize("a,b", [(1, 1), (3, 5), (8, 2), (1, 12), (17, 17)])
def test_axis_aligned_block(backend, a, b):
    """a x b pixels (a along x, b along y): F_min = min(a dx, b dy), F_max = sqrt((a dx)^2 + (b dy)^2)."""
    _, dy, dx = SPACING
    m = np.zeros((3, b + 4, a + 6), bool)
    m[1, 2:2 + b, 3:3 + a] = True
    short, long_, slices, _ = _one(m, SPACING, backend)
    assert short == pytest.approx(min(a * dx, b * dy), rel=1e-12)
    assert long_ == pytest.approx(math.hypot(a * dx, b * dy), rel=1e-12)
    assert slices == 1


def test_one_pixel(backend):
    _, dy, dx = SPACING
    short, long_, slices, r = _one(np.ones((1, 1, 1), bool), SPACING, backend)
    assert short == pytest.approx(min(dx, dy), rel=1e-12)
    assert long_ == pytest.approx(math.hypot(dx, dy), rel=1e-12)
    assert slices == 1 and r.reason[0] == ""


@pytest.mark.parametrize("radius", [3, 5, 10, 24])
def test_digital_disk(backend, radius):
    """Pixels whose centre lies within r of the disk's centre (1 mm pixels): 2r <= F_min <= 2r + 1 mm."""
    n = 2 * radius + 1
    y, x = np.mgrid[0:n, 0:n]
    disk = (x - radius) ** 2 + (y - radius) ** 2 <= radius ** 2
    short, long_, slices, _ = _one(disk[None], (3.0, 1.0, 1.0), backend)
    assert 2 * radius <= short <= 2 * radius + 1
    assert short <= long_ <= math.hypot(n, n)
    assert slices == 1


@pytest.mark.parametrize("n", [2, 5, 30])
def test_diagonal_line_is_measured_across(backend, n):
    """Pixels (i, i): the strip between x - y = -1 and x - y = 1 holds them, so F_min = sqrt(2) (no axis-aligned
    caliper is that narrow); F_max = n sqrt(2), corner to corner."""
    m = np.zeros((1, n, n), bool)
    m[0, np.arange(n), np.arange(n)] = True
    short, long_, _, _ = _one(m, (1.0, 1.0, 1.0), backend)
    assert short == pytest.approx(math.sqrt(2), rel=1e-12)
    assert long_ == pytest.approx(n * math.sqrt(2), rel=1e-12)


def test_largest_slice_wins(backend):
    """Each axis is the maximum over the slices, and the two may come from different slices."""
    _, dy, dx = SPACING
    m = np.zeros((5, 30, 30), bool)
    m[0, 0:2, 0:25] = True     # long and thin: the long axis
    m[2, 0:8, 0:9] = True      # squat: the short axis
    m[3, 0:3, 0:3] = True
    short, long_, slices, r = _one(m, SPACING, backend)
    assert short == pytest.approx(max(min(25 * dx, 2 * dy), min(9 * dx, 8 * dy), min(3 * dx, 3 * dy)), rel=1e-12)
    assert short == pytest.approx(min(9 * dx, 8 * dy), rel=1e-12)
    assert long_ == pytest.approx(math.hypot(25 * dx, 2 * dy), rel=1e-12)
    assert slices == 3                     # slices 0, 2, 3 (1 and 4 are empty)
    assert (r.short_slice[0], r.long_slice[0]) == (2, 0)


def test_empty_region_is_nan_with_a_reason(backend):
    mask = np.zeros(6, np.uint8)
    res = op.size_features(mask, [0, 0, 6], [[0, 0, 0], [1, 2, 3]], SPACING, backend)
    assert np.isnan(res.features["ShortAxisDiameter"]).all() and np.isnan(res.features["LongAxisDiameter"]).all()
    assert list(res.features["AxialSlices"]) == [0, 0]
    assert list(res.reason) == ["empty region: no voxels"] * 2
    assert list(res.short_slice) == [-1, -1]


def test_bad_spacing_is_refused(backend):
    with pytest.raises(ValueError, match="spacing"):
        op.size_features(np.ones(1, np.uint8), [0, 1], [[1, 1, 1]], (1.0, 0.0, 1.0), backend)


def _random_masks(rng, n):
    masks = []
    for i in range(n):
        shape = tuple(rng.integers(1, 14, size=3))
        kind = i % 3
        if kind == 0:    # sparse random pixels: many distinct hulls
            m = rng.random(shape) < rng.uniform(0.05, 0.6)
        elif kind == 1:  # a random ellipsoid, as a node
            z, y, x = np.mgrid[0:shape[0], 0:shape[1], 0:shape[2]]
            c = [s / 2 for s in shape]
            r = [max(s / 2, 0.6) for s in shape]
            m = sum(((g + 0.5 - cc) / rr) ** 2 for g, cc, rr in zip((z, y, x), c, r)) <= 1
        else:            # a random convex-ish blob with holes
            m = rng.random(shape) < 0.9
        if not m.any():
            m.flat[0] = True
        masks.append(m)
    return masks


@pytest.mark.parametrize("spacing", [SPACING, (1.0, 0.6839, 0.6839), (3.0, 1.3, 0.41)])
def test_fast_backends_match_the_reference(fast_backend, spacing):
    rng = np.random.default_rng(16)
    masks = _random_masks(rng, 90)
    want = op.size_of_masks(masks, spacing, "numpy")
    got = op.size_of_masks(masks, spacing, fast_backend)
    for f in op.FEATURES:
        assert_close(got.features[f], want.features[f], fast_backend, f)
    np.testing.assert_array_equal(got.features["AxialSlices"], want.features["AxialSlices"])
    np.testing.assert_array_equal(got.short_slice, want.short_slice)
    np.testing.assert_array_equal(got.long_slice, want.long_slice)


def test_reference_slice_feret_against_brute_force():
    """The reference's hull-based F_min equals a brute-force scan of directions (to the scan's resolution) and
    its F_max the largest distance between any two corner points. The width is Lipschitz in the direction
    with constant F_max, so a scan with step h is at most F_max * h above the true minimum."""
    rng = np.random.default_rng(3)
    dy, dx = 0.7, 1.1
    for _ in range(5):
        px = rng.random((9, 7)) < 0.4
        px[4, 3] = True
        f_min, f_max = ref.slice_feret(px, dy, dx)
        pts = ref.corner_points(px, dy, dx)
        d = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1)).max()
        assert f_max == pytest.approx(d, rel=1e-12)
        theta = np.linspace(0, np.pi, 20001)
        proj = pts @ np.stack([np.cos(theta), np.sin(theta)])
        width = (proj.max(0) - proj.min(0)).min()
        assert f_min <= width + 1e-12 and width - f_min <= f_max * (theta[1] - theta[0])


def test_thousands_of_regions_in_one_call():
    """3000 regions of one label map in one cpu call; a sample of them against the reference."""
    rng = np.random.default_rng(7)
    lab = np.zeros((12, 200, 200), np.int32)
    k = 0
    for z0 in range(0, 12, 4):
        for y0 in range(0, 200, 10):
            for x0 in range(0, 200, 4):
                k += 1
                blob = rng.random((3, 8, 3)) < 0.6
                blob[1, 4, 1] = True
                lab[z0:z0 + 3, y0:y0 + 8, x0:x0 + 3][blob] = k
    regions = rlnfast.regions.find_regions(lab)
    assert len(regions) == k >= 3000
    from rlnfast.features.fractal import region_crops

    crops = region_crops(regions, SPACING)
    got = op.size_of_crops(crops, SPACING, "cpu")
    pick = rng.choice(len(regions), 40, replace=False)
    masks = [lab[regions.bbox_slices(i)] == regions.label[i] for i in pick]
    want = op.size_of_masks(masks, SPACING, "numpy")
    for f in op.FEATURES:
        assert_close(got.features[f][pick], want.features[f], "cpu", f)


def test_size_class_in_extract(backend):
    """featureClass size gives original_size_* per region (once, whatever the image types), and the
    diagnostics name the slice of each axis as a z index of the volume."""
    _, dy, dx = SPACING
    lab = np.zeros((6, 20, 20), np.uint8)
    lab[1:4, 2:7, 3:12] = 1            # a 9 x 5 pixel block on 3 slices
    lab[4, 10:18, 10:12] = 2           # 2 x 8 pixels on one slice
    lab[5, 10:12, 10:20] = 2           # 10 x 2 pixels on the next one
    image = np.zeros(lab.shape, np.int16)
    df = rlnfast.extract(image, lab, {"featureClass": {"size": None},
                                      "imageType": {"Original": {}, "Elasticity": {}}},
                         backend=backend, spacing=SPACING[::-1])
    np.testing.assert_allclose(df["original_size_ShortAxisDiameter"],
                               [min(9 * dx, 5 * dy), max(min(2 * dx, 8 * dy), min(10 * dx, 2 * dy))], rtol=1e-12)
    np.testing.assert_allclose(df["original_size_LongAxisDiameter"],
                               [math.hypot(9 * dx, 5 * dy), max(math.hypot(2 * dx, 8 * dy), math.hypot(10 * dx, 2 * dy))],
                               rtol=1e-12)
    assert list(df["original_size_AxialSlices"]) == [3, 2]
    assert list(df["diagnostics_size_ShortAxisSlice"]) == [1, 4 if min(2 * dx, 8 * dy) >= min(10 * dx, 2 * dy) else 5]
    assert list(df["diagnostics_size_Reason"]) == ["", ""]
    assert not [c for c in df.columns if c.startswith("E_original_size")]
    one = rlnfast.extract(image, lab, {"featureClass": {"size": ["ShortAxisDiameter"]}}, backend=backend,
                          spacing=SPACING[::-1])
    assert [c for c in one.columns if c.startswith("original_size")] == ["original_size_ShortAxisDiameter"]


def test_build_info_says_where_size_runs_on_gpu_backends():
    info = rlnfast.build_info()
    assert "size" in info["host_ops"] and "host" in info["host_ops"]["size"]
    assert "size" in info["backends"]["cuda"]["host_ops"] and "size" in info["backends"]["cupy"]["host_ops"]
