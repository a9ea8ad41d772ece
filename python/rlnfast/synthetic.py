"""Seeded synthetic CT with lymph-node-like regions: the built-in data of the quick start, the tests and the
benchmarks (no data file ships with rlnfast).

The volume is thorax-like: soft tissue (~40 HU) with fat (-100 HU) and air (-800 HU) compartments,
Gaussian noise, and ``n_nodes`` ellipsoidal nodes (diameters 5-15 mm) labelled 1..n in the label map.
A node's texture can be made heterogeneous and its outline irregular (the study's metastatic pattern).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SyntheticCT:
    image: np.ndarray        # int16 HU, (z, y, x)
    labels: np.ndarray       # int32 label map, 0 = background, 1..n nodes
    spacing: tuple           # (x, y, z) mm
    centres: np.ndarray      # (n, 3) voxel centres z, y, x
    radii_mm: np.ndarray     # (n, 3) semi-axes z, y, x in mm

    def to_sitk(self):
        """(image, label map) as SimpleITK images with the spacing set."""
        import SimpleITK as sitk

        img = sitk.GetImageFromArray(self.image)
        lab = sitk.GetImageFromArray(self.labels)
        for im in (img, lab):
            im.SetSpacing(tuple(float(s) for s in self.spacing))
        return img, lab


def _background(shape, rng, noise):
    nz, ny, nx = shape
    img = np.full(shape, 40.0, dtype=np.float32)
    yy, xx = np.mgrid[0:ny, 0:nx]
    cy, cx = ny / 2, nx / 2
    # body outline (ellipse) with air outside, two "lungs", a fat rim
    body = ((yy - cy) / (0.46 * ny)) ** 2 + ((xx - cx) / (0.48 * nx)) ** 2 <= 1
    fat = ((yy - cy) / (0.42 * ny)) ** 2 + ((xx - cx) / (0.44 * nx)) ** 2 > 1
    lung_l = ((yy - cy) / (0.3 * ny)) ** 2 + ((xx - 0.3 * nx) / (0.14 * nx)) ** 2 <= 1
    lung_r = ((yy - cy) / (0.3 * ny)) ** 2 + ((xx - 0.7 * nx) / (0.14 * nx)) ** 2 <= 1
    sl = np.full((ny, nx), 40.0, dtype=np.float32)
    sl[fat & body] = -100.0
    sl[lung_l | lung_r] = -800.0
    sl[~body] = -1000.0
    img[:] = sl
    img += rng.normal(0.0, noise, size=shape).astype(np.float32)
    return img, sl


def make_ct(shape=(200, 512, 512), spacing=(0.7, 0.7, 2.5), n_nodes=1000, seed=0, *, noise=12.0,
            diameter_mm=(5.0, 15.0), heterogeneity=None, irregularity=None, node_hu=None) -> SyntheticCT:
    """A seeded synthetic thoracic CT with ``n_nodes`` non-overlapping node-like ellipsoids.

    Parameters
    ----------
    shape
        (z, y, x) voxels; spacing (x, y, z) mm.
    heterogeneity, irregularity
        Per-node arrays (length n_nodes, >= 0): the SD of a smooth intensity pattern in HU added inside the
        node, and the amplitude (fraction of the radius) of a bumpy outline. Default: mild, random.
    node_hu
        Per-node mean HU (default 25-60 HU).
    """
    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in shape)
    sp_zyx = np.array(spacing[::-1], dtype=np.float64)
    img, _ = _background(shape, rng, noise)
    labels = np.zeros(shape, dtype=np.int32)
    het = rng.uniform(2.0, 10.0, n_nodes) if heterogeneity is None else np.asarray(heterogeneity, float)
    irr = rng.uniform(0.0, 0.1, n_nodes) if irregularity is None else np.asarray(irregularity, float)
    hu = rng.uniform(25.0, 60.0, n_nodes) if node_hu is None else np.asarray(node_hu, float)
    centres = np.zeros((n_nodes, 3))
    radii = np.zeros((n_nodes, 3))
    placed = 0
    attempts = 0
    while placed < n_nodes and attempts < n_nodes * 50:
        attempts += 1
        d = rng.uniform(*diameter_mm)
        r_mm = d / 2 * rng.uniform(0.75, 1.25, 3)
        r_vox = r_mm / sp_zyx
        half = np.ceil(r_vox * (1 + irr[placed]) + 1).astype(int)
        if np.any(2 * half + 1 >= np.array(shape)):
            continue
        c = np.array([rng.integers(half[a], shape[a] - half[a]) for a in range(3)])
        sl = tuple(slice(int(c[a] - half[a]), int(c[a] + half[a] + 1)) for a in range(3))
        if labels[sl].any():
            continue
        zz, yy, xx = np.meshgrid(*[np.arange(-half[a], half[a] + 1) for a in range(3)], indexing="ij")
        rr = np.sqrt((zz / r_vox[0]) ** 2 + (yy / r_vox[1]) ** 2 + (xx / r_vox[2]) ** 2)
        if irr[placed] > 0:
            theta = np.arctan2(yy * sp_zyx[1], xx * sp_zyx[2])
            phi = np.arctan2(zz * sp_zyx[0], np.hypot(yy * sp_zyx[1], xx * sp_zyx[2]))
            k = rng.integers(3, 8, 2)
            ph = rng.uniform(0, 2 * np.pi, 2)
            bump = 1 + irr[placed] * (np.sin(k[0] * theta + ph[0]) * np.cos(k[1] * phi + ph[1]))
            inside = rr <= bump
        else:
            inside = rr <= 1
        if not inside.any():
            continue
        placed += 1
        labels[sl][inside] = placed
        # smooth heterogeneous texture: a few random cosine waves
        tex = np.zeros(inside.shape)
        for _ in range(3):
            f = rng.uniform(0.3, 1.2, 3)
            tex += np.cos(f[0] * zz * sp_zyx[0] + f[1] * yy * sp_zyx[1] + f[2] * xx * sp_zyx[2] + rng.uniform(0, 6.3))
        tex *= het[placed - 1] / np.sqrt(1.5)
        block = img[sl]
        block[inside] = (hu[placed - 1] + tex[inside] + rng.normal(0, noise, int(inside.sum()))).astype(np.float32)
        centres[placed - 1] = c
        radii[placed - 1] = r_mm
    image = np.clip(np.rint(img), -1024, 3071).astype(np.int16)
    return SyntheticCT(image, labels, tuple(float(s) for s in spacing), centres[:placed], radii[:placed])
