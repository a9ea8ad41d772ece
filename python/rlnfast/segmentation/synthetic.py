"""Seeded synthetic CT with lymph-node-like regions: the built-in data of the quick start, the tests and the
benchmarks (no data file ships with rlnfast).

:func:`make_ct` / :func:`make_cohort`: a thorax-like volume, soft tissue (~40 HU) with fat (-100 HU) and air
(-800 HU) compartments, Gaussian noise, and ``n_nodes`` ellipsoidal nodes (diameters 5-15 mm) labelled 1..n
in the label map. A node's texture can be made heterogeneous and its outline irregular (the study's
metastatic pattern); ``make_cohort`` writes the demo's study cohort.

:func:`synthetic_node_cases`: small CTs with bright nodes, the training and test data of the tiny nnU-Net
(tests, ``rlnfast demo --segment``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io import write_volume


@dataclass
class SyntheticCT:
    image: np.ndarray        # int16 HU, (z, y, x)
    labels: np.ndarray       # label map (uint8/uint16), 0 = background, 1..n nodes
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
    # stored as label maps are (NIfTI/NRRD from segmentation tools): the smallest unsigned type that fits
    labels = labels.astype(np.uint8 if placed < 256 else np.uint16 if placed < 65536 else np.int32)
    return SyntheticCT(image, labels, tuple(float(s) for s in spacing), centres[:placed], radii[:placed])


def make_cohort(out_dir, n_patients: int = 150, seed: int = 0, *, shape=(40, 96, 96), spacing=(0.8, 0.8, 2.5),
                validation_fraction: float = 0.35, metastasis_rate: float = 0.4, noise: float = 12.0):
    """Write a seeded synthetic study cohort: one CT per patient with 1-4 node-like regions.

    Metastatic nodes differ from benign ones as the study reports, with realistic overlap: a more
    heterogeneous texture (intensity pattern SD ~ lognormal around 14 HU vs 7 HU, so a more heterogeneous
    elasticity map) and a more irregular outline (bump amplitude ~0.15 vs 0.06 of the radius).

    Writes ``<ID>_ct.nii.gz`` / ``<ID>_mask.nii.gz``, ``batch.csv`` (ID, patient, cohort, Image, Mask: the
    pyradiomics batch convention) and ``nodes.csv`` (ID, label, metastatic, cohort, patient). Returns
    (batch_path, nodes_path).
    """
    import pandas as pd
    import SimpleITK as sitk

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_val = int(round(n_patients * validation_fraction))
    cohorts = np.array(["training"] * (n_patients - n_val) + ["validation"] * n_val)
    rng.shuffle(cohorts)
    batch, nodes = [], []
    for i in range(n_patients):
        pid = f"P{i + 1:04d}"
        n_nodes = int(rng.integers(1, 5))
        met = rng.random(n_nodes) < metastasis_rate
        het = np.where(met, rng.lognormal(np.log(14.0), 0.45, n_nodes), rng.lognormal(np.log(7.0), 0.45, n_nodes))
        irr = np.clip(np.where(met, rng.normal(0.15, 0.06, n_nodes), rng.normal(0.06, 0.04, n_nodes)), 0.0, 0.35)
        ct = make_ct(shape=shape, spacing=spacing, n_nodes=n_nodes, seed=int(rng.integers(2**31)), noise=noise,
                     diameter_mm=(6.0, 16.0), heterogeneity=het, irregularity=irr)
        img, lab = ct.to_sitk()
        sitk.WriteImage(img, str(out / f"{pid}_ct.nii.gz"), True)
        sitk.WriteImage(sitk.Cast(lab, sitk.sitkUInt8), str(out / f"{pid}_mask.nii.gz"), True)
        batch.append({"ID": pid, "patient": pid, "cohort": cohorts[i], "Image": f"{pid}_ct.nii.gz",
                      "Mask": f"{pid}_mask.nii.gz"})
        placed = int(ct.labels.max())
        for k in range(placed):
            nodes.append({"ID": pid, "label": k + 1, "metastatic": int(met[k]), "cohort": cohorts[i], "patient": pid})
    batch_path, nodes_path = out / "batch.csv", out / "nodes.csv"
    pd.DataFrame(batch).to_csv(batch_path, index=False)
    pd.DataFrame(nodes).to_csv(nodes_path, index=False)
    return batch_path, nodes_path


def synthetic_node_cases(out_dir, n_cases: int = 10, seed: int = 0, shape=(24, 48, 48), spacing=(0.8, 0.8, 2.0),
                         nodes_per_case=(2, 4)):
    """Write ``n_cases`` small synthetic CTs with bright node-like ellipsoids; returns the batch table.

    Each case: soft tissue ~40 HU with a smooth gradient and Gaussian noise (SD 20), fat (-100 HU) slab,
    and 2-4 non-overlapping ellipsoidal nodes (semi-axes 2.4-4.8 mm in-plane, 2-4 mm along z) of
    ~140 HU. Files ``<out_dir>/<ID>_ct.nii.gz`` (int16) and ``<ID>_mask.nii.gz`` (node map, labels 1..K
    one per node); the returned DataFrame has columns ``ID, Image, Mask, n_nodes``. Seeded: the same
    ``seed`` gives the same files.
    """
    import pandas as pd
    import SimpleITK as sitk

    rng = np.random.default_rng(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sx, sy, sz = (float(s) for s in spacing)
    zz, yy, xx = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    rows = []
    for c in range(n_cases):
        case = f"case{c:03d}"
        ct = 40.0 + 10.0 * (yy / shape[1]) + rng.normal(0.0, 20.0, shape)
        fat_y = int(rng.integers(shape[1] // 4, shape[1] // 2))
        ct[:, :fat_y // 3, :] = -100.0 + rng.normal(0.0, 20.0, ct[:, :fat_y // 3, :].shape)
        mask = np.zeros(shape, np.int16)
        k = int(rng.integers(nodes_per_case[0], nodes_per_case[1] + 1))
        placed = 0
        for _ in range(200):
            if placed == k:
                break
            r_xy = rng.uniform(2.4, 4.8)
            r_z = rng.uniform(2.0, 4.0)
            cz = rng.uniform(r_z / sz + 1, shape[0] - r_z / sz - 2)
            cy = rng.uniform(r_xy / sy + 1, shape[1] - r_xy / sy - 2)
            cx = rng.uniform(r_xy / sx + 1, shape[2] - r_xy / sx - 2)
            e = (((xx - cx) * sx / r_xy) ** 2 + ((yy - cy) * sy / r_xy) ** 2 + ((zz - cz) * sz / r_z) ** 2) <= 1.0
            grown = e | np.roll(e, 1, 0) | np.roll(e, -1, 0) | np.roll(e, 1, 1) | np.roll(e, -1, 1) \
                | np.roll(e, 1, 2) | np.roll(e, -1, 2)
            if np.any(mask[grown] > 0) or e.sum() < 8:
                continue
            placed += 1
            mask[e] = placed
            ct[e] = 140.0 + rng.normal(0.0, 20.0, int(e.sum()))
        img = sitk.GetImageFromArray(np.round(ct).astype(np.int16))
        img.SetSpacing((sx, sy, sz))
        img.SetOrigin((-20.0, 15.0, 100.0 + 5 * c))
        lab = sitk.GetImageFromArray(mask)
        lab.CopyInformation(img)
        ip, mp = out.resolve() / f"{case}_ct.nii.gz", out.resolve() / f"{case}_mask.nii.gz"
        write_volume(img, ip)
        write_volume(lab, mp)
        rows.append({"ID": case, "Image": str(ip), "Mask": str(mp), "n_nodes": placed})
    df = pd.DataFrame(rows)
    df.to_csv(out / "batch.csv", index=False)
    return df
