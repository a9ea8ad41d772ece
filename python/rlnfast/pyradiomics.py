"""A drop-in for ``radiomics.featureextractor.RadiomicsFeatureExtractor`` with rlnfast as the engine.

    from rlnfast.pyradiomics import RadiomicsFeatureExtractor
    extractor = RadiomicsFeatureExtractor("Params.yaml")          # or a dict, or keyword settings
    result = extractor.execute("image.nrrd", "mask.nrrd", label=1)  # OrderedDict, pyradiomics' keys
    table = extractor.execute_all("image.nrrd", "labelmap.nrrd")    # every label in one call

The classes rlnfast computes (firstorder; fractal, and the Elasticity/DEM image types, which pyradiomics
does not have) are computed by rlnfast. Every other enabled class (shape, glcm, ...) and the diagnostics
are delegated to an installed pyradiomics on the same inputs, so the keys and their order are exactly
pyradiomics'; without pyradiomics such a class is refused with its name.
"""
from __future__ import annotations

import collections
import copy
import os
import warnings

import numpy as np

from .params import IMAGE_TYPES, PYRADIOMICS_CLASSES, load_params

RLNFAST_CLASSES = ("firstorder", "fractal")
RLNFAST_IMAGE_TYPES = ("Elasticity", "DEM")   # image types pyradiomics does not know


def _pyradiomics():
    try:
        from radiomics import featureextractor
    except ImportError:
        return None
    return featureextractor


class RadiomicsFeatureExtractor:
    """pyradiomics' extractor interface; see the module docstring."""

    def __init__(self, *args, **kwargs):
        self.settings: dict = {}
        self.enabledImagetypes: dict = {"Original": {}}
        self.enabledFeatures: dict = {}
        self.backend = kwargs.pop("backend", "auto")
        self._user_settings: dict = {}   # what the user set (validated), as opposed to pyradiomics' defaults
        fe = _pyradiomics()
        self._pr = None
        if fe is not None:
            self._pr = fe.RadiomicsFeatureExtractor()
            self.settings = copy.deepcopy(self._pr.settings)
            self.enabledFeatures = {c: [] for c in self._pr.enabledFeatures}
        else:
            self.settings = {"label": 1, "binWidth": 25, "voxelArrayShift": 0, "additionalInfo": True}
            self.enabledFeatures = {"firstorder": []}
            warnings.warn("pyradiomics is not installed: only rlnfast's classes (firstorder, fractal) can be "
                          "enabled; pip install --no-build-isolation pyradiomics for the others", stacklevel=2)
        if args:
            src = args[0]
            if isinstance(src, dict):
                self.loadJSONParams(src)
            elif isinstance(src, (str, os.PathLike)):
                self.loadParams(src)
            else:
                raise ValueError(f"RadiomicsFeatureExtractor: expected a parameter file path or dict, got {type(src).__name__}")
        self.settings.update(kwargs)
        self._user_settings.update(kwargs)
        self._validate()

    # ---- parameters (pyradiomics names)
    def loadParams(self, paramsFile):
        if not os.path.exists(paramsFile):
            raise FileNotFoundError(f"parameter file {str(paramsFile)!r} does not exist")
        self._apply(_raw(paramsFile))

    def loadJSONParams(self, JSON_configuration):
        self._apply(copy.deepcopy(JSON_configuration))

    def _apply(self, raw):
        raw = raw or {}
        settings = dict(raw.get("setting") or {})
        base = copy.deepcopy(self._pr._getDefaultSettings()) if self._pr is not None else {}
        base.update(settings)
        self.settings = base
        self._user_settings = dict(settings)
        if "imageType" in raw:
            self.enabledImagetypes = {k: dict(v or {}) for k, v in (raw.get("imageType") or {}).items()}
        if "featureClass" in raw:
            self.enabledFeatures = {k: list(v or []) for k, v in (raw.get("featureClass") or {}).items()}
        self._validate()

    def _validate(self):
        """Refuse what rlnfast cannot honour, naming the key; keys of delegated classes are fine when a class
        that uses them is delegated to pyradiomics, and warned about otherwise."""
        foreign = [c for c in self.enabledFeatures if c not in RLNFAST_CLASSES]
        with warnings.catch_warnings():
            if foreign and self._pr is not None:
                warnings.simplefilter("ignore")
            load_params({"setting": self._user_settings, "imageType": self.enabledImagetypes,
                         "featureClass": {k: (v or None) for k, v in self.enabledFeatures.items()}},
                        allow_foreign=True)
        if foreign and self._pr is None:
            raise ValueError(f"feature class(es) {foreign} are not computed by rlnfast and pyradiomics is not "
                             "installed to delegate them (pip install --no-build-isolation pyradiomics)")

    def enableAllFeatures(self):
        classes = list(PYRADIOMICS_CLASSES if self._pr is not None else ()) + list(RLNFAST_CLASSES)
        self.enabledFeatures = {c: [] for c in dict.fromkeys(["firstorder", *classes])}

    def disableAllFeatures(self):
        self.enabledFeatures = {}

    def enableFeatureClassByName(self, featureClass, enabled=True):
        if enabled:
            if featureClass not in RLNFAST_CLASSES and featureClass not in PYRADIOMICS_CLASSES:
                raise ValueError(f"feature class {featureClass!r} does not exist")
            if featureClass not in RLNFAST_CLASSES and self._pr is None:
                raise ValueError(f"feature class {featureClass!r} is not computed by rlnfast and pyradiomics is "
                                 "not installed to delegate it")
            self.enabledFeatures[featureClass] = []
        else:
            self.enabledFeatures.pop(featureClass, None)

    def enableFeaturesByName(self, **enabledFeatures):
        for cls, feats in enabledFeatures.items():
            self.enableFeatureClassByName(cls)
            self.enabledFeatures[cls] = list(feats or [])

    def enableImageTypeByName(self, imageType, enabled=True, customArgs=None):
        if enabled:
            if imageType not in IMAGE_TYPES and self._pr is None:
                raise ValueError(f"image type {imageType!r} is not supported by rlnfast")
            self.enabledImagetypes[imageType] = dict(customArgs or {})
        else:
            self.enabledImagetypes.pop(imageType, None)

    def enableImageTypes(self, **enabledImagetypes):
        for k, v in enabledImagetypes.items():
            self.enableImageTypeByName(k, True, v)

    def enableAllImageTypes(self):
        for k in IMAGE_TYPES:
            self.enabledImagetypes[k] = {}

    def disableAllImageTypes(self):
        self.enabledImagetypes = {}

    # ---- extraction
    def _rlnfast_params(self, label=None):
        settings = {k: v for k, v in self.settings.items()}
        if label is not None:
            settings["label"] = label
        itypes = {k: v for k, v in self.enabledImagetypes.items() if k in IMAGE_TYPES}
        classes = {c: (f or None) for c, f in self.enabledFeatures.items() if c in RLNFAST_CLASSES}
        return {"setting": settings, "imageType": itypes, "featureClass": classes}

    def execute(self, imageFilepath, maskFilepath, label=None, label_channel=None, voxelBased=False):
        """Features of one label, as pyradiomics' ``execute`` returns them (an OrderedDict, same keys)."""
        if voxelBased:
            raise ValueError("voxelBased extraction is not supported by rlnfast; use pyradiomics for it")
        from .extract import extract

        label = int(label if label is not None else self.settings.get("label", 1))
        ours = {}
        rl = self._rlnfast_params(label)
        if rl["featureClass"] and rl["imageType"]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                df = extract(imageFilepath, maskFilepath, rl, backend=self.backend)
            row = df.iloc[0]
            ours = {c: float(row[c]) for c in df.columns if c.startswith(tuple(IMAGE_TYPES.values()))}
        theirs = self._delegate(imageFilepath, maskFilepath, label, label_channel)
        return self._ordered(theirs, ours)

    def _delegate(self, image, mask, label, label_channel):
        if self._pr is None:
            return collections.OrderedDict()
        pr = self._pr
        pr.settings = copy.deepcopy(self.settings)
        pr.enabledImagetypes = {k: v for k, v in self.enabledImagetypes.items() if k not in RLNFAST_IMAGE_TYPES}
        pr.enabledFeatures = {c: v for c, v in self.enabledFeatures.items() if c not in RLNFAST_CLASSES}
        if not pr.enabledImagetypes:
            pr.enabledImagetypes = {"Original": {}}
        return pr.execute(image, mask, label=label, label_channel=label_channel)

    def _ordered(self, theirs, ours):
        """pyradiomics' key order: diagnostics, shape, then per image type the classes in enabledFeatures order."""
        out = collections.OrderedDict((k, v) for k, v in theirs.items() if k.startswith("diagnostics_"))
        for k, v in theirs.items():
            if k.startswith("original_shape"):
                out[k] = v
        for itype in self.enabledImagetypes:
            pref = IMAGE_TYPES.get(itype, f"{itype.lower()}_")
            for cls in self.enabledFeatures:
                if cls in ("shape", "shape2D"):
                    continue
                src = ours if cls in RLNFAST_CLASSES else theirs
                keys = [k for k in src if k.startswith(f"{pref}{cls}_")]
                if cls in RLNFAST_CLASSES:
                    # pyradiomics' order: the listed features in list order, else all by name (dir() order)
                    listed = self.enabledFeatures.get(cls) or []
                    keys = [f"{pref}{cls}_{f}" for f in listed if f"{pref}{cls}_{f}" in src] if listed else \
                        sorted(keys, key=lambda k: f"get{k.rsplit('_', 1)[1]}FeatureValue")
                for k in keys:
                    out[k] = src[k]
        # rlnfast's region-only fractal features are named original_fractal_* whatever the image types
        for k, v in ours.items():
            out.setdefault(k, v)
        for k, v in theirs.items():
            out.setdefault(k, v)
        return out

    def execute_all(self, imageFilepath, labelmapFilepath):
        """Every label of a label map in one call: a DataFrame with one row per label (rlnfast's classes in one
        pass; delegated classes run per label through pyradiomics)."""
        import pandas as pd

        from .extract import extract

        rl = self._rlnfast_params()
        rl["setting"].pop("label", None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            df = extract(imageFilepath, labelmapFilepath, rl, backend=self.backend)
        foreign = [c for c in self.enabledFeatures if c not in RLNFAST_CLASSES]
        if foreign:
            rows = [self._delegate(imageFilepath, labelmapFilepath, int(lab), None) for lab in df["label"]]
            extra = pd.DataFrame([{k: v for k, v in r.items() if not k.startswith("diagnostics_")
                                   and not k.startswith("original_firstorder_")} for r in rows])
            df = pd.concat([df.reset_index(drop=True), extra], axis=1)
        return df


def _raw(path):
    import json

    import yaml

    text = open(path, encoding="utf-8").read()
    return json.loads(text) if str(path).endswith(".json") else (yaml.safe_load(text) or {})
