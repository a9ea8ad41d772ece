"""pyradiomics-style parameters: the same YAML/JSON files (``setting:``, ``imageType:``, ``featureClass:``)
or dicts, validated up front. A key rlnfast does not support is refused with its name, or warned about
when it only affects feature classes rlnfast does not compute; nothing is silently ignored.
"""
from __future__ import annotations

import copy
import difflib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from .preprocessing import SETTINGS as PREPROCESSING_SETTINGS
from .preprocessing import activating
from .preprocessing import check_settings as check_preprocessing

# General settings, with defaults (pyradiomics names); feature classes (rlnfast.features) and image types
# (rlnfast.imagetypes) declare their own, and supported_settings() is the union.
GENERAL_SETTINGS = {
    "binWidth": 25.0,
    "binCount": None,
    "voxelArrayShift": 0,
    "label": None,            # None: every positive label (pyradiomics' own default is 1)
    "geometryTolerance": None,
    "nonFinite": "error",     # rlnfast: 'error' or 'drop' NaN/inf voxels inside a region
    "connectedComponents": False,  # rlnfast: one region per connected component
    "connectivity": 26,
    "minimumComponentVoxels": 1,
    **PREPROCESSING_SETTINGS,   # pyradiomics' preprocessing (rlnfast.preprocessing), pyradiomics' defaults
}


def supported_settings() -> dict:
    """Every setting rlnfast implements with its default: general, then each feature class's and image type's."""
    from .features import feature_classes
    from .imagetypes import REGISTRY

    out = dict(GENERAL_SETTINGS)
    for fc in feature_classes().values():
        out.update({k: v for k, v in fc.settings.items() if k not in out})
    for it in REGISTRY.values():
        out.update({k: v for k, v in it.settings.items() if k not in out})
    return out


def image_types() -> dict:
    """Registered image types: name -> feature-name prefix."""
    from .imagetypes import REGISTRY

    return {name: it.prefix for name, it in REGISTRY.items()}


def feature_class_names() -> tuple:
    from .features import feature_classes

    return tuple(feature_classes())


def __getattr__(name):
    # The registries' views under their former constant names.
    if name == "SUPPORTED_SETTINGS":
        return supported_settings()
    if name == "IMAGE_TYPES":
        return image_types()
    if name == "FEATURE_CLASSES":
        return feature_class_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Settings that change nothing rlnfast computes (accepted silently: same result either way).
NEUTRAL_SETTINGS = {"additionalInfo", "enableCExtensions", "label_channel"}
# Kept for callers of earlier versions: every pyradiomics class setting is now declared by its class.
FOREIGN_CLASS_SETTINGS: set = set()
# Settings of pyradiomics' voxel-based extraction: refused by name when not at the default.
REFUSED_SETTINGS = {"kernelRadius": None, "maskedKernel": None, "initValue": None, "voxelBatch": None}
# rlnfast's own classes and image types, which do not follow pyradiomics' preprocessing.
RLNFAST_ONLY_CLASSES = ("fractal",)
RLNFAST_ONLY_IMAGE_TYPES = ("Elasticity", "DEM")
PYRADIOMICS_CLASSES = ("shape", "shape2D", "glcm", "glrlm", "glszm", "gldm", "ngtdm")


@dataclass
class Params:
    """Validated parameters: general settings, enabled image types (each with its own overrides) and
    enabled feature classes (None = the class's default features)."""

    settings: dict = field(default_factory=lambda: copy.deepcopy(supported_settings()))
    image_types: dict = field(default_factory=lambda: {"Original": {}})
    feature_classes: dict = field(default_factory=lambda: {"firstorder": None})
    foreign_classes: dict = field(default_factory=dict)   # pyradiomics classes (for the drop-in only)
    foreign_settings: dict = field(default_factory=dict)
    source: str = "defaults"

    def settings_for(self, image_type: str) -> dict:
        s = dict(self.settings)
        s.update(self.image_types.get(image_type) or {})
        return s

    def to_dict(self) -> dict:
        return {"setting": {k: v for k, v in self.settings.items()},
                "imageType": {k: dict(v) for k, v in self.image_types.items()},
                "featureClass": {k: (list(v) if v is not None else None) for k, v in self.feature_classes.items()}}


def did_you_mean(name, choices) -> str:
    """'; did you mean 'x'?' for the closest of ``choices`` to a misspelt ``name`` (case-insensitive), or ''."""
    choices = [str(c) for c in choices]
    low = {c.lower(): c for c in choices}
    hit = difflib.get_close_matches(str(name).lower(), list(low), n=1, cutoff=0.75)
    return f"; did you mean {low[hit[0]]!r}?" if hit else ""


def _parse_error(path: Path, exc: Exception) -> ValueError:
    """A parse error of a parameter file pointing at the file, line and column."""
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:   # PyYAML
        problem = " ".join(str(x) for x in (getattr(exc, "context", None), getattr(exc, "problem", None)) if x)
        ctx = getattr(exc, "context_mark", None)
        started = f" (the construct began at line {ctx.line + 1}, column {ctx.column + 1})" \
            if ctx is not None and ctx.line != mark.line else ""
        return ValueError(f"parameter file {str(path)!r}, line {mark.line + 1}, column {mark.column + 1}: "
                          f"invalid YAML: {problem or exc}{started}")
    if isinstance(exc, json.JSONDecodeError):
        return ValueError(f"parameter file {str(path)!r}, line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}")
    return ValueError(f"parameter file {str(path)!r} could not be parsed: {exc}")


# Parameter files are a few hundred bytes; a limit keeps a hostile one from costing memory or time.
MAX_PARAMS_BYTES = 1 << 20


def _yaml_load(text: str):
    """``yaml.safe_load`` without aliases: a 370-byte file of nested aliases ("billion laughs") expands to
    gigabytes, and a parameter file never needs one. Anchors alone are harmless and allowed."""
    import yaml

    class NoAliasSafeLoader(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                ev = self.peek_event()
                raise ValueError(f"YAML alias *{ev.anchor} (line {ev.start_mark.line + 1}): aliases are not "
                                 "allowed in parameter files; write the value out")
            return super().compose_node(parent, index)

    return yaml.load(text, Loader=NoAliasSafeLoader)   # noqa: S506 - a SafeLoader subclass


def _read(source) -> tuple[dict, str]:
    if source is None:
        return {}, "defaults"
    if isinstance(source, Params):
        return source.to_dict(), source.source
    if isinstance(source, dict):
        return copy.deepcopy(source), "dict"
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"parameter file {str(path)!r} does not exist")
        size = path.stat().st_size
        if size > MAX_PARAMS_BYTES:
            raise ValueError(f"parameter file {str(path)!r} is {size} bytes; parameter files are at most "
                             f"{MAX_PARAMS_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
        try:
            if path.suffix.lower() == ".json":
                data = json.loads(text)
            else:
                data = _yaml_load(text)
        except Exception as exc:
            raise _parse_error(path, exc) from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ValueError(f"parameter file {str(path)!r}: expected a mapping with setting/imageType/featureClass")
        return data, str(path)
    raise ValueError(f"params: expected a parameter file path, a dict or None, got {type(source).__name__}")


def load_params(source=None, *, allow_foreign: bool = False, **overrides) -> Params:
    """Parse pyradiomics-style parameters.

    pyradiomics' classes (shape, glcm, ...) are registered feature classes (rlnfast.features.pyradiomics_classes,
    computed by pyradiomics); ``allow_foreign`` is accepted for compatibility and changes nothing.
    Keyword ``overrides`` are settings, as pyradiomics' extractor accepts them.
    """
    data, where = _read(source)
    unknown_top = set(data) - {"setting", "imageType", "featureClass", "voxelSetting"}
    if unknown_top:
        hints = "".join(did_you_mean(k, ("setting", "imageType", "featureClass")) for k in sorted(unknown_top))
        raise ValueError(f"{where}: unknown section(s) {sorted(unknown_top)} (expected setting, imageType, "
                         f"featureClass){hints}")
    if data.get("voxelSetting"):
        raise ValueError(f"{where}: voxelSetting (pyradiomics' voxel-based extraction: "
                         f"{', '.join(sorted(data['voxelSetting']))}) is not supported by rlnfast.extract; "
                         "the drop-in rlnfast.pyradiomics.RadiomicsFeatureExtractor runs it through pyradiomics")
    p = Params(source=where)
    supported = supported_settings()
    settings = dict(data.get("setting") or {})
    settings.update(overrides)
    p.settings.update(_check_settings(settings, where, "setting", supported))
    if "imageType" in data:
        it = data.get("imageType") or {}
        if not isinstance(it, dict):
            raise ValueError(f"{where}: imageType must be a mapping of image type names to settings")
        from .imagetypes import REGISTRY, canonical

        p.image_types = {}
        for name, sub in it.items():
            canon = canonical(name)
            if canon is None:
                raise ValueError(f"{where}: imageType {name!r} is not supported by rlnfast "
                                 f"(supported: {', '.join(REGISTRY)}){did_you_mean(name, REGISTRY)}")
            p.image_types[canon] = _check_settings(dict(sub or {}), where, f"imageType {name}", supported)
    if "featureClass" in data:
        fc = data.get("featureClass") or {}
        if not isinstance(fc, dict):
            raise ValueError(f"{where}: featureClass must be a mapping of class names to feature lists")
        classes = feature_class_names()
        p.feature_classes = {}
        for name, feats in fc.items():
            if feats is not None and not isinstance(feats, (list, tuple)):
                raise ValueError(f"{where}: featureClass {name}: expected a list of features or nothing")
            if name in classes:
                why = _unavailable(name)
                if why:
                    raise ValueError(f"{where}: featureClass {name!r} {why}")
                p.feature_classes[name] = list(feats) if feats else None
            else:
                raise ValueError(f"{where}: unknown feature class {name!r}{did_you_mean(name, classes)} "
                                 f"(supported: {', '.join(classes)})")
    _check_class_settings(p, where)
    _check_feature_names(p, where)
    _check_combinations(p, where)
    return p


def lbp3d_missing() -> str | None:
    """What pyradiomics' LBP3D filter imports and cannot (it then yields nothing, silently), or None."""
    for mod, name in (("scipy.stats", "kurtosis"), ("scipy.ndimage", "map_coordinates"),
                      ("scipy.special", "sph_harm"), ("trimesh.creation", "icosphere")):
        if name == "sph_harm":   # SciPy >= 1.17: rlnfast.preprocessing.sph_harm_shim provides it from sph_harm_y
            import scipy.special

            if hasattr(scipy.special, "sph_harm") or hasattr(scipy.special, "sph_harm_y"):
                continue
            return "scipy.special.sph_harm (or sph_harm_y)"
        try:
            m = __import__(mod, fromlist=[name])
            getattr(m, name)
        except (ImportError, AttributeError):
            return f"{mod}.{name}"
    return None


def _unavailable(name):
    from .features import feature_classes

    fc = feature_classes()[name]
    return fc.unavailable() if fc.unavailable is not None else None


def _check_combinations(p: Params, where: str) -> None:
    """What cannot be honoured together is refused, naming the key that matters."""
    from .imagetypes import REGISTRY

    pre = activating(p.settings)
    rl = [c for c in p.feature_classes if c in RLNFAST_ONLY_CLASSES] + \
         [f"imageType {t}" for t in p.image_types if t in RLNFAST_ONLY_IMAGE_TYPES]
    if pre and rl:
        raise ValueError(f"{where}: setting {pre[0]!r} (pyradiomics' preprocessing) is not applied to rlnfast's "
                         f"{rl[0]}; remove {pre[0]!r} or {rl[0]}")
    filters = [t for t in p.image_types if REGISTRY[t].pyradiomics and t != "Original"]
    if filters and "fractal" in p.feature_classes:
        raise ValueError(f"{where}: featureClass 'fractal' runs on rlnfast's image types (Original, Elasticity, "
                         f"DEM), not on pyradiomics' imageType {filters[0]!r}")
    if filters:
        import importlib.util

        if importlib.util.find_spec("radiomics") is None:
            raise ValueError(f"{where}: imageType {filters[0]!r} is computed by pyradiomics, an optional dependency "
                             "of rlnfast that is not installed (pip install --no-build-isolation pyradiomics)")
    if pre:
        import importlib.util

        if importlib.util.find_spec("radiomics") is None:
            raise ValueError(f"{where}: setting {pre[0]!r} runs pyradiomics' preprocessing, and pyradiomics (an "
                             "optional dependency of rlnfast) is not installed (pip install --no-build-isolation "
                             "pyradiomics)")
    if "LBP3D" in p.image_types:
        missing = lbp3d_missing()
        if missing:
            raise ValueError(f"{where}: imageType 'LBP3D' needs {missing}, which cannot be imported here "
                             "(pyradiomics would silently compute no LBP3D image)")
    if "shape2D" in p.feature_classes and not p.settings.get("force2D"):
        raise ValueError(f"{where}: featureClass 'shape2D' needs setting 'force2D': true on 3-D images "
                         "(pyradiomics computes no shape2D without it)")


def _check_settings(settings: dict, where: str, section: str, supported: dict) -> dict:
    out = {}
    for key, value in settings.items():
        if key in supported:
            out[key] = value
        elif key in NEUTRAL_SETTINGS:
            continue
        elif key in REFUSED_SETTINGS:
            if value != REFUSED_SETTINGS[key]:
                raise ValueError(f"{where}: {section} key {key!r}={value!r} (pyradiomics' voxel-based extraction) "
                                 "is not supported by rlnfast.extract")
        else:
            known = list(supported) + sorted(NEUTRAL_SETTINGS | FOREIGN_CLASS_SETTINGS | set(REFUSED_SETTINGS))
            raise ValueError(f"{where}: unknown {section} key {key!r}{did_you_mean(key, known)} "
                             "(docs/parameters.md lists every setting)")
    if out.get("binWidth") is not None:
        bw = out["binWidth"]
        if not _is_number(bw) or not math.isfinite(bw) or bw <= 0:
            raise ValueError(f"{where}: {section} binWidth={bw!r}: expected a finite number > 0")
    if out.get("binCount") is not None:
        bc = out["binCount"]
        if not isinstance(bc, int) or isinstance(bc, bool) or bc < 1:
            raise ValueError(f"{where}: {section} binCount={bc!r}: expected an integer >= 1")
    try:
        check_preprocessing(out)
    except ValueError as exc:
        raise ValueError(f"{where}: {section} {exc}") from None
    if "nonFinite" in out and out["nonFinite"] not in ("error", "drop"):
        raise ValueError(f"{where}: {section} nonFinite={out['nonFinite']!r}: expected 'error' or 'drop'")
    for key, value in out.items():
        why = _check_general_value(key, value)
        if why:
            raise ValueError(f"{where}: {section} {key}={value!r}: expected {why}")
    if any(k in out for k in ("gamma", "clipRange", "referenceDensity", "sigma")):
        from .ops import dem as dop
        from .ops import elasticity as eop

        try:   # the image types' own checks, whether or not Elasticity/DEM is enabled
            eop.elasticity_params(**eop.params_from_settings(out))
            if out.get("sigma") is not None and _sigma_is_dems(section, out["sigma"]):
                dop.check_sigma(out["sigma"])
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{where}: {section} {exc}") from None
    return out


def _sigma_is_dems(section: str, sigma) -> bool:
    """Whether ``sigma`` in this section is DEM's (one scale in mm) rather than LoG's (a list of scales)."""
    from .imagetypes import canonical

    if section.startswith("imageType "):
        return canonical(section[len("imageType "):]) == "DEM"
    return not isinstance(sigma, (list, tuple))


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_general_value(key, v) -> str:
    """'' when a general or image-type setting's value is usable, else what was expected (every value is
    checked when the file is read, whether or not the class or image type that reads it is enabled)."""
    def finite(x):
        return _is_number(x) and math.isfinite(x)

    if key == "voxelArrayShift":
        return "" if finite(v) else "a finite number"
    if key == "label":
        ok = v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 1) or (
            isinstance(v, list) and v and all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in v))
        return "" if ok else "nothing, an integer label >= 1 or a list of them"
    if key == "geometryTolerance":
        return "" if v is None or (finite(v) and v >= 0) else "nothing or a finite number >= 0"
    if key == "connectedComponents":
        return "" if isinstance(v, bool) else "true or false"
    if key == "connectivity":
        return "" if v in (6, 26) and not isinstance(v, bool) else "6 or 26"
    if key == "minimumComponentVoxels":
        return "" if isinstance(v, int) and not isinstance(v, bool) and v >= 1 else "an integer >= 1"
    return ""


def _check_class_settings(p: Params, where: str) -> None:
    """Every feature class checks its settings (general and per image type), enabled or not."""
    from .features import feature_classes

    for section, settings in [("setting", p.settings)] + [(f"imageType {k}", p.settings_for(k)) for k in p.image_types]:
        for fc in feature_classes().values():
            if fc.check_settings is not None:
                try:
                    fc.check_settings(settings)
                except ValueError as exc:
                    raise ValueError(f"{where}: {section}: {exc}") from None


def _check_feature_names(p: Params, where: str) -> None:
    from .features import feature_classes

    known = {name: set(fc.features) for name, fc in feature_classes().items()}
    for cls, feats in p.feature_classes.items():
        if feats and cls in known:
            bad = [f for f in feats if f not in known[cls]]
            if bad:
                hints = "".join(did_you_mean(f, known[cls]) for f in bad)
                raise ValueError(f"{where}: featureClass {cls}: unknown feature(s) {bad}{hints} "
                                 f"(known: {', '.join(sorted(known[cls]))})")
