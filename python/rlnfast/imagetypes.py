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
        ctx.cache[key] = gather(ctx.volume.array, ctx.regions, non_finite=key[1], name=ctx.volume.name,
                                volume=ctx.volume)
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


def original(ctx: ImageTypeContext) -> ImageTypeData:
    """The CT as it is (pyradiomics 'Original')."""
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
        sl = ctx.regions.bbox_slices(i)
        hu = arr[sl]
        bad = ~np.isfinite(hu) if hu.dtype.kind == "f" else None
        if bad is not None and bad.any() and ctx.settings.get("nonFinite", "error") == "drop":
            # as Original's crop: the dropped voxels stay NaN (DBC leaves such a region out, with the reason)
            e = eop.elasticity_array(np.where(bad, 0.0, hu), **kw, backend=ctx.backend, name=ctx.volume.name)
            e[bad] = np.nan
            return e
        return eop.elasticity_array(hu, **kw, backend=ctx.backend, name=ctx.volume.name, volume=ctx.volume,
                                    origin=tuple(s.start for s in sl))

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


@dataclass(frozen=True)
class ImageType:
    """An image type as ``extract`` and the parameter files see it."""

    name: str
    prefix: str                                   # feature-name prefix, e.g. 'E_original_'
    compute: Callable[[ImageTypeContext], ImageTypeData]
    settings: dict = field(default_factory=dict)   # settings it reads (general or per image type), with defaults
    aliases: tuple = ()                           # other spellings accepted in parameter files

    def __call__(self, ctx: ImageTypeContext) -> ImageTypeData:
        return self.compute(ctx)


REGISTRY: dict[str, ImageType] = {}


def register(it: ImageType) -> ImageType:
    """Add (or replace) an image type; returns it."""
    REGISTRY[it.name] = it
    return it


_MAP_SETTINGS = {"gamma": 2.0, "clipRange": [-1000.0, 3071.0], "referenceDensity": None}
register(ImageType("Original", "original_", original, aliases=("original",)))
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
