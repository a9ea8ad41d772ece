"""Image types: how each enabled image type turns a CT and its regions into per-region voxel values.

``REGISTRY`` maps the pyradiomics-style image type name (``imageType:`` key) to a function
``fn(ctx: ImageTypeContext) -> ImageTypeData``. Original is the CT itself; Elasticity and DEM are the maps
of features.md, computed on region crops only (see rlnfast.ops.elasticity / rlnfast.ops.dem).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .io import Volume
from .params import IMAGE_TYPES
from .regions import Regions, gather


@dataclass
class ImageTypeContext:
    volume: Volume          # the CT (HU)
    regions: Regions
    settings: dict          # merged settings for this image type
    backend: str


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
    values, offsets = gather(arr, ctx.regions, non_finite=ctx.settings.get("nonFinite", "error"),
                             name=ctx.volume.name)

    def crop(i: int) -> np.ndarray:
        return np.asarray(arr[ctx.regions.bbox_slices(i)], dtype=np.float64)

    return ImageTypeData(values, offsets, arr.dtype, crop, {})


REGISTRY: dict[str, Callable[[ImageTypeContext], ImageTypeData]] = {"Original": original}


def prefix(name: str) -> str:
    """Feature-name prefix of an image type (features.md table)."""
    return IMAGE_TYPES[name]
