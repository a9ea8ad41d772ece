"""NumPy reference of the elasticity image E and the differential elasticity map DEM (features.md).

Elasticity (voxelwise), h in HU:

1. h = clip(HU, clip_lo, clip_hi), default [-1000, 3071].
2. x = h + 1000; mass density rho (kg/m^3), Schneider et al. 1996 as in k-Wave ``hounsfield2density``::

       x < 930:          rho = 1.025793065681423 x - 5.680404011488714
       930 <= x < 1098:  rho = 0.9082709691264 x + 103.6151457847139
       1098 <= x < 1260: rho = 0.5108369316599 x + 539.9977189228704
       x >= 1260:        rho = 0.6625370912451 x + 348.8555178455294

   then rho = max(rho, 1).
3. E = 1000 ((rho / rho_w)^gamma - 1), rho_w = rho(HU 0) = 1011.886114911114 unless given, gamma = 2.

DEM (voxelwise), sigma in mm, spacing s_a in mm per axis a (z, y, x):

    DEM = sigma * sqrt(D_z^2 + D_y^2 + D_x^2),
    D_a = (d/dx_a (G_sigma * E)) = [g'_a (x) prod_{b != a} g_b] * E / s_a   (1/mm * E units)

with 1-D sampled Gaussians of sigma_a = sigma / s_a voxels, radius r_a = int(4 sigma_a + 0.5) (scipy's
truncate = 4.0), g(k) = exp(-k^2 / (2 sigma_a^2)) / sum_j exp(-j^2 / (2 sigma_a^2)) and the derivative
weights g'(k) = -(k / sigma_a^2) g(k) (scipy.ndimage ``_gaussian_kernel1d`` orders 0 and 1), applied as
convolutions with 'nearest' extension at the volume border (np.pad mode 'edge'). This is exactly
``scipy.ndimage.gaussian_filter(E, sigma / spacing, order=<1 on a>, mode='nearest', truncate=4.0) / s_a``,
written here without SciPy so the two can check each other.
"""
from __future__ import annotations

import numpy as np

# Schneider et al. 1996 piecewise-linear fit (k-Wave hounsfield2density): (upper bound of x, slope, offset).
SCHNEIDER = (
    (930.0, 1.025793065681423, -5.680404011488714),
    (1098.0, 0.9082709691264, 103.6151457847139),
    (1260.0, 0.5108369316599, 539.9977189228704),
    (np.inf, 0.6625370912451, 348.8555178455294),
)
CLIP_RANGE = (-1000.0, 3071.0)
GAMMA = 2.0
TRUNCATE = 4.0


def density(hu) -> np.ndarray:
    """Mass density (kg/m^3) of already-clipped HU values, floored at 1 (float64)."""
    h = np.asarray(hu, dtype=np.float64)
    x = h + 1000.0
    rho = np.empty_like(x)
    lower = -np.inf
    for upper, slope, offset in SCHNEIDER:
        sel = (x >= lower) & (x < upper) if np.isfinite(upper) else (x >= lower)
        rho[sel] = slope * x[sel] + offset
        lower = upper
    rho[np.isnan(x)] = np.nan
    return np.maximum(rho, 1.0)


def reference_density() -> float:
    """rho(HU 0) = 1011.886114911114 kg/m^3: water-equivalent soft tissue."""
    return float(density(0.0))


def elasticity(hu, *, gamma: float = GAMMA, clip_range=CLIP_RANGE, reference_density=None) -> np.ndarray:
    """E = 1000 ((rho(clip(HU)) / rho_w)^gamma - 1), float64, same shape as ``hu`` (see module docstring)."""
    rho_w = float(density(0.0)) if reference_density is None else float(reference_density)
    h = np.clip(np.asarray(hu, dtype=np.float64), float(clip_range[0]), float(clip_range[1]))
    return 1000.0 * (np.power(density(h) / rho_w, float(gamma)) - 1.0)


def radius(sigma_vox: float) -> int:
    """scipy.ndimage's radius: int(truncate * sigma + 0.5)."""
    return int(TRUNCATE * float(sigma_vox) + 0.5)


def gaussian_kernels(sigma_vox: float):
    """(g, g'): the order-0 and order-1 convolution kernels on offsets -r..r (index k + r).

    g'(k) = -(k / sigma^2) g(k): convolving with it differentiates (scipy correlates with the reversed one).
    """
    r = radius(sigma_vox)
    s2 = float(sigma_vox) ** 2
    k = np.arange(-r, r + 1, dtype=np.float64)
    phi = np.exp(-0.5 / s2 * k ** 2)
    g = phi / phi.sum()
    dg = (k * (-1.0 / s2)) * g
    return g, dg


def _convolve_axis(a: np.ndarray, kernel: np.ndarray, axis: int) -> np.ndarray:
    """out[x] = sum_k kernel[k + r] a[x - k] with 'nearest' (edge) extension along ``axis``."""
    r = (len(kernel) - 1) // 2
    pad = [(0, 0)] * a.ndim
    pad[axis] = (r, r)
    p = np.pad(a, pad, mode="edge")
    n = a.shape[axis]
    out = np.zeros_like(a, dtype=np.float64)
    for j, w in enumerate(kernel):
        k = j - r
        sl = [slice(None)] * a.ndim
        sl[axis] = slice(r - k, r - k + n)
        out += w * p[tuple(sl)]
    return out


def gradient(e: np.ndarray, spacing_zyx, sigma: float = 1.0):
    """(D_z, D_y, D_x) of the module docstring: Gaussian derivatives of ``e`` in 1/mm."""
    e = np.asarray(e, dtype=np.float64)
    if e.ndim != 3:
        raise ValueError(f"image: expected a 3-D volume (z, y, x), got shape {e.shape}")
    kernels = [gaussian_kernels(sigma / float(s)) for s in spacing_zyx]
    out = []
    for a in range(3):
        d = e
        for b in range(3):
            g, dg = kernels[b]
            d = _convolve_axis(d, dg if b == a else g, b)
        out.append(d / float(spacing_zyx[a]))
    return tuple(out)


def dem_from_elasticity(e: np.ndarray, spacing_zyx, sigma: float = 1.0) -> np.ndarray:
    """DEM = sigma sqrt(D_z^2 + D_y^2 + D_x^2) of an elasticity volume (float64)."""
    dz, dy, dx = gradient(e, spacing_zyx, sigma)
    return float(sigma) * np.sqrt(dz * dz + dy * dy + dx * dx)


def dem(hu: np.ndarray, spacing_zyx, *, sigma: float = 1.0, gamma: float = GAMMA, clip_range=CLIP_RANGE,
        reference_density=None) -> np.ndarray:
    """DEM of a CT in HU (z, y, x) with ``spacing_zyx`` in mm: the module docstring's formula."""
    e = elasticity(hu, gamma=gamma, clip_range=clip_range, reference_density=reference_density)
    return dem_from_elasticity(e, spacing_zyx, sigma)


def dem_scipy(hu: np.ndarray, spacing_zyx, *, sigma: float = 1.0, gamma: float = GAMMA, clip_range=CLIP_RANGE,
              reference_density=None) -> np.ndarray:
    """The SciPy formulation of features.md (the external check of :func:`dem`)."""
    from scipy import ndimage

    e = elasticity(hu, gamma=gamma, clip_range=clip_range, reference_density=reference_density)
    sv = [float(sigma) / float(s) for s in spacing_zyx]
    acc = None
    for a in range(3):
        order = [0, 0, 0]
        order[a] = 1
        d = ndimage.gaussian_filter(e, sv, order=order, mode="nearest", truncate=TRUNCATE) / float(spacing_zyx[a])
        acc = d * d if acc is None else acc + d * d
    return float(sigma) * np.sqrt(acc)
