"""Image types: how each enabled image type turns a CT and its regions into per-region voxel values.

``REGISTRY`` maps the pyradiomics-style image type name (``imageType:`` key) to an :class:`ImageType`: its
feature-name prefix, the settings it reads with their defaults, and ``compute(ctx: ImageTypeContext) ->
ImageTypeData`` (an ImageType is called like that function). Original is the CT itself; Elasticity and DEM are
the maps of docs/features.md, computed on region crops only (see rlnfast.ops.elasticity / rlnfast.ops.dem).
Adding an image type is one function and one :func:`register` call; extract and the parameter files pick it up.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .io import Volume
from .regions import Regions, gather


@dataclass
class ImageTypeContext:
    volume: Volume          # the CT (HU)
    regions: Regions
    settings: dict          # merged settings for this image type
    backend: str
    cache: dict = field(default_factory=dict)   # shared by the image types of one case


def _hu_values(ctx: ImageTypeContext):
    """The CT's ragged HU values of the regions, gathered once per case for every image type that needs them."""
    key = ("hu", ctx.settings.get("nonFinite", "error"))
    if key not in ctx.cache:
        ctx.cache[key] = gather(ctx.volume.array, ctx.regions, non_finite=key[1], name=ctx.volume.name)
    return ctx.cache[key]


@dataclass
class ImageTypeData:
    """Per-region voxel values of one image type (ragged, C order inside each region) and, for ops that
    need geometry (fractal DBC), ``crop(i)``: the image type's values on region i's bounding box."""

    values: np.ndarray
    offsets: np.ndarray
    value_dtype: object = None            # dtype pyradiomics would bin in (the image's dtype for Original)
    crop: Callable[[int], np.ndarray] | None = None
    diagnostics: dict = field(default_factory=dict)
    # pyradiomics image types (rlnfast.preprocessing): the image's name ('original', 'log-sigma-1-0-mm-3D', ...;
    # feature prefix name + '_'), each region's voxel volume (after resampling), why a region has no values,
    # and each region's (croppedImage, croppedMask, kwargs) as pyradiomics' computeFeatures receives them.
    name: str | None = None
    voxel_volume: np.ndarray | None = None
    reasons: dict = field(default_factory=dict)
    region_inputs: list | None = None


def original(ctx: ImageTypeContext):
    """The CT as it is (pyradiomics 'Original'); after pyradiomics' preprocessing when that is active."""
    if ctx.cache.get(PIPELINE):
        return pyradiomics_images("Original", ctx)
    arr = ctx.volume.array
    values, offsets = _hu_values(ctx)

    def crop(i: int) -> np.ndarray:
        return np.asarray(arr[ctx.regions.bbox_slices(i)], dtype=np.float64)

    return ImageTypeData(values, offsets, arr.dtype, crop, {})


def _empty_crop() -> np.ndarray:
    return np.zeros((0, 0, 0), dtype=np.float64)


def elasticity(ctx: ImageTypeContext) -> ImageTypeData:
    """The elasticity image E (rlnfast.ops.elasticity) on the regions only: E of the gathered HU values
    (the same numbers as gathering the whole-volume E map), and E of a region's bounding box on request.
    Settings: gamma, clipRange, referenceDensity (general or per image type)."""
    from .ops import elasticity as eop

    kw = eop.params_from_settings(ctx.settings)
    lo, hi, rho_w, g = eop.elasticity_params(**kw)
    arr = ctx.volume.array
    hu, offsets = _hu_values(ctx)
    values = eop.elasticity_array(hu, **kw, backend=ctx.backend, name=ctx.volume.name)

    def crop(i: int) -> np.ndarray:
        if ctx.regions.count[i] == 0:
            return _empty_crop()
        return eop.elasticity_array(arr[ctx.regions.bbox_slices(i)], **kw, backend=ctx.backend, name=ctx.volume.name)

    diag = {"gamma": g, "clipRange": (lo, hi), "referenceDensity": rho_w}
    return ImageTypeData(values, offsets, np.float64, crop, diag)


def dem(ctx: ImageTypeContext) -> ImageTypeData:
    """The differential elasticity map DEM (rlnfast.ops.dem) on the regions only: every region's bounding
    box plus the filter halo, all regions in one call; inside each region the values equal the whole-volume
    map gathered with the mask. Settings: sigma, gamma, clipRange, referenceDensity. A NaN voxel of the CT
    inside a region's crop (bounding box plus halo) is an error whatever nonFinite says: the filter reads it."""
    from .ops import dem as dop
    from .ops import elasticity as eop

    kw = eop.params_from_settings(ctx.settings)
    lo, hi, rho_w, g = eop.elasticity_params(**kw)
    sigma = ctx.settings.get("sigma")
    sigma = dop.check_sigma(dop.SIGMA if sigma is None else sigma)
    crops = dop.dem_regions(ctx.volume, ctx.regions, sigma=sigma, **kw, backend=ctx.backend)
    values, offsets = dop.region_values(crops, ctx.regions)
    values = np.asarray(values, dtype=np.float64)

    def crop(i: int) -> np.ndarray:
        return np.asarray(crops.crop(i), dtype=np.float64)

    diag = {"sigma": sigma, "gamma": g, "clipRange": (lo, hi), "referenceDensity": rho_w,
            "filterRadius": tuple(int(r) for r in crops.radius)}
    return ImageTypeData(values, offsets, np.float64, crop, diag)


PIPELINE = "pyradiomics pipeline"   # ctx.cache key: True when extract runs pyradiomics' pipeline


def case_prep(ctx: ImageTypeContext):
    """The case's :class:`rlnfast.preprocessing.CasePrep` (built once, shared by image types and classes)."""
    from .preprocessing import CasePrep

    key = ("pyradiomics prep",)
    if key not in ctx.cache:
        ctx.cache[key] = CasePrep(ctx.volume, ctx.regions, ctx.cache.get("general settings", ctx.settings),
                                  lbp3d=bool(ctx.cache.get("lbp3d")))
    return ctx.cache[key]


def pyradiomics_images(image_type: str, ctx: ImageTypeContext) -> list:
    """pyradiomics' image type on every region (rlnfast.preprocessing): one ImageTypeData per image it yields
    (LoG: one per sigma, Wavelet: one per decomposition), named as pyradiomics names them."""
    import SimpleITK as sitk

    prep = case_prep(ctx)
    n = len(ctx.regions)
    out = []
    for name, items in prep.filtered(image_type, ctx.settings).items():
        vals, counts, vv, reasons, dtype = [], np.zeros(n, np.int64), np.full(n, np.nan), {}, None
        for r, it in enumerate(items):
            if it is None:
                reasons[r] = prep.region(r).reason or f"pyradiomics yields no {name} image for this region"
                continue
            ci, cm, kw = it
            a = sitk.GetArrayViewFromImage(ci)
            v = a[sitk.GetArrayViewFromImage(cm) == kw["label"]]
            dtype = dtype or a.dtype
            vals.append(np.asarray(v, np.float64))
            counts[r] = v.size
            sx, sy, sz = ci.GetSpacing()
            vv[r] = sx * sy * sz
        offsets = np.zeros(n + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        values = np.concatenate(vals) if vals else np.zeros(0)
        out.append(ImageTypeData(values, offsets, dtype or np.float64, None, {}, name=name, voxel_volume=vv,
                                 reasons=reasons, region_inputs=items))
    if not out:   # pyradiomics yields no image at all (LoG without sigma, LBP3D with force2D): no columns, a reason
        ctx.cache.setdefault("image type reasons", {})[image_type] = (
            f"pyradiomics yields no {image_type} image with these settings (no features)")
    return out


@dataclass(frozen=True)
class ImageType:
    """An image type as ``extract`` and the parameter files see it."""

    name: str
    prefix: str                                   # feature-name prefix, e.g. 'E_original_'
    compute: Callable[[ImageTypeContext], ImageTypeData]
    settings: dict = field(default_factory=dict)   # settings it reads (general or per image type), with defaults
    aliases: tuple = ()                           # other spellings accepted in parameter files
    pyradiomics: bool = False                     # pyradiomics' image type (needs pyradiomics, or Original)

    def __call__(self, ctx: ImageTypeContext) -> ImageTypeData:
        return self.compute(ctx)


REGISTRY: dict[str, ImageType] = {}


def register(it: ImageType) -> ImageType:
    """Add (or replace) an image type; returns it."""
    REGISTRY[it.name] = it
    return it


_MAP_SETTINGS = {"gamma": 2.0, "clipRange": [-1000.0, 3071.0], "referenceDensity": None}
register(ImageType("Original", "original_", original, aliases=("original",), pyradiomics=True))

# pyradiomics' filtered image types (radiomics.imageoperations.get<Name>Image, run by rlnfast.preprocessing):
# names, settings and defaults as pyradiomics; feature names '<image name>_<class>_<feature>'.
_PYRADIOMICS_TYPES = {
    "LoG": ("log-sigma-", {"sigma": None}),   # None: pyradiomics' [] (no LoG image); DEM's sigma shares the key
    "Wavelet": ("wavelet-", {"wavelet": "coif1", "level": 1, "start_level": 0}),
    "Square": ("square_", {}),
    "SquareRoot": ("squareroot_", {}),
    "Logarithm": ("logarithm_", {}),
    "Exponential": ("exponential_", {}),
    "Gradient": ("gradient_", {"gradientUseSpacing": True}),
    "LBP2D": ("lbp-2D_", {"lbp2DRadius": 1, "lbp2DSamples": 8, "lbp2DMethod": "uniform"}),
    "LBP3D": ("lbp-3D-", {"lbp3DLevels": 2, "lbp3DIcosphereRadius": 1, "lbp3DIcosphereSubdivision": 1}),
}
for _name, (_prefix, _settings) in _PYRADIOMICS_TYPES.items():
    register(ImageType(_name, _prefix, (lambda n: lambda ctx: pyradiomics_images(n, ctx))(_name), dict(_settings),
                       aliases=(_name.lower(),), pyradiomics=True))
register(ImageType("Elasticity", "E_original_", elasticity, dict(_MAP_SETTINGS), aliases=("elasticity", "e")))
register(ImageType("DEM", "DEM_original_", dem, {**_MAP_SETTINGS, "sigma": 1.0}, aliases=("dem",)))


def prefix(name: str) -> str:
    """Feature-name prefix of an image type (docs/features.md table)."""
    return REGISTRY[name].prefix


def canonical(name) -> str | None:
    """The registered name of an image type spelled ``name`` (exact or an alias), or None."""
    if name in REGISTRY:
        return name
    low = str(name).lower()
    for it in REGISTRY.values():
        if low in it.aliases:
            return it.name
    return None
