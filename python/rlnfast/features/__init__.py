"""Feature classes: one module per class, each registering itself here (pyradiomics' getFeatureClasses()).

A class declares its feature names, the formula of each (the docstrings users read), the settings it reads
with their defaults, a settings check, the image types it applies to, and how it computes on a batch of
regions. :func:`rlnfast.extract.extract_many` iterates over the registered classes and enabled image types
and special-cases none; :mod:`rlnfast.params` accepts exactly the settings and feature names declared here.

Adding a class is one new module in this package (found by :func:`feature_classes`, no list to edit)::

    from . import FeatureClass, register

    def compute(items, params, features, backend):      # per region, once (see FeatureClass.per_region)
        return [({"original_myclass_Volume": regions.count * img.voxel_volume}, {}) for img, regions in items]

    register(FeatureClass("myclass", features=("Volume",), docs={"Volume": "N_voxels * V_voxel, mm^3."},
                          per_region=compute))
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

# One (columns, diagnostics) pair per case: columns name -> [n_regions] array; diagnostics name -> array or value.
CaseOutput = tuple[dict, dict]


@dataclass(frozen=True)
class FeatureClass:
    """A feature class as ``extract`` sees it.

    ``per_image_type(image_type, datas, ctxs, features) -> list[CaseOutput]`` computes the features of one
    enabled image type for several cases at once (``datas[i]``: :class:`rlnfast.imagetypes.ImageTypeData`,
    ``ctxs[i]``: :class:`rlnfast.imagetypes.ImageTypeContext` of case i), so a class may pack the regions of
    all cases into one kernel call. ``per_region(items, params, features, backend) -> list[CaseOutput]``
    computes features that depend on the regions only (``items[i] = (image Volume, Regions)``), once per
    region whatever the image types. A class has one or both. ``features`` is the user's list or None
    (= ``default_features``).
    """

    name: str
    features: tuple
    docs: Mapping[str, str]
    default_features: tuple | None = None       # None: all of ``features``
    settings: Mapping[str, Any] = field(default_factory=dict)   # settings the class reads, with defaults
    check_settings: Callable[[dict], None] | None = None   # raises ValueError naming the key
    image_types: tuple | None = None             # image types per_image_type applies to; None: every one
    per_image_type: Callable[..., Sequence[CaseOutput]] | None = None
    per_region: Callable[..., Sequence[CaseOutput]] | None = None
    # ``per_case(ctxs, features) -> list[CaseOutput]``: once per region from each case's general context
    # (``ctxs[i].settings`` the general settings, ``ctxs[i].cache`` shared with the image types), before the
    # image types; pyradiomics' shape classes use it (their columns come first, as in pyradiomics).
    per_case: Callable[..., Sequence[CaseOutput]] | None = None
    # A delegated class computed by an optional dependency: the pipeline runs pyradiomics' preprocessing.
    delegated: bool = False
    # None when the class can run; else why not (e.g. pyradiomics missing), raised when it is enabled.
    unavailable: Callable[[], str | None] | None = None

    def __post_init__(self):
        missing = [f for f in self.features if not self.docs.get(f)]
        if missing:
            raise ValueError(f"feature class {self.name!r}: no formula docstring for {missing}")
        if self.per_image_type is None and self.per_region is None and self.per_case is None:
            raise ValueError(f"feature class {self.name!r}: needs per_image_type, per_region or per_case")

    @property
    def defaults(self) -> tuple:
        return self.features if self.default_features is None else self.default_features

    def wanted(self, features: Sequence[str] | None, names: Sequence[str] | None = None) -> list:
        """The features to compute among ``names`` (default: all of the class), given the user's list or None."""
        pool = self.features if names is None else names
        chosen = self.defaults if features is None else features
        return [f for f in pool if f in chosen]

    def applies_to(self, image_type: str) -> bool:
        return self.per_image_type is not None and (self.image_types is None or image_type in self.image_types)


_REGISTRY: dict[str, FeatureClass] = {}
_LOADED = False


def register(fc: FeatureClass) -> FeatureClass:
    """Add (or replace) a feature class; returns it."""
    _REGISTRY[fc.name] = fc
    return fc


def feature_classes() -> dict[str, FeatureClass]:
    """Every registered feature class by name, the modules of this package imported on first call."""
    global _LOADED
    if not _LOADED:
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
            if not info.name.startswith("_"):
                importlib.import_module(f"{__name__}.{info.name}")
        _LOADED = True
    return dict(_REGISTRY)


def get(name: str) -> FeatureClass:
    classes = feature_classes()
    if name not in classes:
        raise ValueError(f"featureClass {name!r} is not available in this build of rlnfast "
                         f"(available: {', '.join(classes)})")
    return classes[name]
