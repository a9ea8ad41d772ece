"""Regions: one-pass counts and bounding boxes, ragged gathering, connected components, packing."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from rlnfast import regions as R


def _random_map(seed, shape=(17, 23, 29), nlab=40, dtype=np.int32):
    rng = np.random.default_rng(seed)
    lm = rng.integers(0, nlab + 1, shape).astype(dtype)
    lm[rng.random(shape) < 0.5] = 0
    return lm


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.int32, np.int64])
def test_region_stats_equal_numpy(dtype):
    lm = _random_map(1, dtype=dtype)
    reg = R.find_regions(lm)
    present = [v for v in np.unique(lm) if v > 0]
    assert list(reg.label) == present
    for i, lab in enumerate(reg.label):
        idx = np.argwhere(lm == lab)
        assert reg.count[i] == len(idx)
        assert list(reg.bbox[i]) == list(idx.min(0)) + list(idx.max(0))


def test_gather_order_is_numpy_boolean_indexing():
    lm = _random_map(2)
    img = np.random.default_rng(2).normal(size=lm.shape).astype(np.float32)
    reg = R.find_regions(lm, labels=[3, 1, 7])
    vals, off = R.gather(img, reg)
    for i, lab in enumerate([3, 1, 7]):
        np.testing.assert_array_equal(vals[off[i]:off[i + 1]], img[lm == lab].astype(np.float64))


@pytest.mark.parametrize("connectivity", [6, 26])
def test_connected_components_equal_scipy(connectivity):
    rng = np.random.default_rng(5)
    mask = rng.random((20, 30, 30)) < 0.3
    lm = mask.astype(np.uint8)
    reg = R.find_regions(lm, connected_components=True, connectivity=connectivity)
    structure = ndimage.generate_binary_structure(3, 1 if connectivity == 6 else 3)
    ref, n = ndimage.label(mask, structure=structure)
    assert len(reg) == n
    np.testing.assert_array_equal(reg.label_map, ref)
    np.testing.assert_array_equal(reg.count, np.bincount(ref.ravel())[1:])


def test_components_of_several_labels_and_min_size():
    lm = np.zeros((10, 10, 10), np.int16)
    lm[1:3, 1:3, 1:3] = 2
    lm[6:9, 6:9, 6:9] = 2
    lm[0, 9, 9] = 2          # a one-voxel speck
    lm[5, 0:4, 0] = 4
    reg = R.find_regions(lm, labels=[2, 4], connected_components=True, min_voxels=2)
    assert list(reg.source_label) == [2, 2, 4]
    assert list(reg.count) == [8, 27, 4]
    assert list(reg.component) == [1, 2, 1]


def test_errors():
    with pytest.raises(ValueError, match="integer"):
        R.find_regions(np.zeros((3, 3, 3), np.float32))
    with pytest.raises(ValueError, match="empty"):
        R.find_regions(np.zeros((3, 3, 3), np.uint8))
    lm = np.zeros((3, 3, 3), np.uint8)
    lm[1, 1, 1] = 2
    with pytest.raises(ValueError, match=r"label\(s\) \[5\] not present \(labels found: 2\)"):
        R.find_regions(lm, labels=5)
    img = np.zeros((3, 3, 3))
    img[1, 1, 1] = np.nan
    reg = R.find_regions(lm)
    with pytest.raises(ValueError, match="NaN/inf voxel.*label 2"):
        R.gather(img, reg)
    vals, off = R.gather(img, reg, non_finite="drop")
    assert list(off) == [0, 0]


def test_pack_several_volumes():
    a, b = _random_map(8, nlab=5), _random_map(9, nlab=7)
    img_a, img_b = a * 2.0, b * 3.0
    ra, rb = R.find_regions(a), R.find_regions(b)
    va, oa = R.gather(img_a, ra)
    vb, ob = R.gather(img_b, rb)
    batch = R.pack([(va, oa, ra.label), (vb, ob, rb.label)])
    assert len(batch) == len(ra) + len(rb)
    assert list(batch.case) == [0] * len(ra) + [1] * len(rb)
    i = len(ra) + 2
    np.testing.assert_array_equal(batch.values[batch.offsets[i]:batch.offsets[i + 1]],
                                  img_b[b == rb.label[2]])


def test_device_batch_equals_host(gpu_backend):
    """Regions and values built on the GPU equal the host path, and feed the GPU first-order op directly."""
    cp = pytest.importorskip("cupy", reason="device arrays need CuPy (the emulated cuda build has none)")

    from rlnfast.ops.firstorder import firstorder

    lm = _random_map(11)
    img = np.random.default_rng(11).integers(-500, 500, lm.shape).astype(np.int16)
    vals, offs, labels, counts, bbox = R.device_batch(cp.asarray(img), cp.asarray(lm))
    reg = R.find_regions(lm)
    hv, ho = R.gather(img, reg)
    np.testing.assert_array_equal(labels, reg.label)
    np.testing.assert_array_equal(counts, reg.count)
    np.testing.assert_array_equal(bbox, reg.bbox)
    np.testing.assert_array_equal(cp.asnumpy(offs), ho)
    np.testing.assert_array_equal(cp.asnumpy(vals), hv)
    np.testing.assert_allclose(firstorder(vals, offs, backend=gpu_backend), firstorder(hv, ho, backend="cpu"),
                               rtol=1e-9, atol=1e-9)
    sub = R.device_batch(cp.asarray(img), cp.asarray(lm), labels=[3, 1])
    np.testing.assert_array_equal(sub[2], [1, 3])
