"""A drop-in for ``radiomics.featureextractor.RadiomicsFeatureExtractor`` with rlnfast as the first-order engine.

    from rlnfast.pyradiomics import RadiomicsFeatureExtractor
    extractor = RadiomicsFeatureExtractor("Params.yaml")          # or a dict, or keyword settings
    result = extractor.execute("image.nrrd", "mask.nrrd", label=1)  # OrderedDict, pyradiomics' keys and order
    table = extractor.execute_all("image.nrrd", "labelmap.nrrd")    # every label, one row each

With pyradiomics installed the drop-in is a subclass of pyradiomics' own extractor class, captured when this
module is imported: parameter files, settings, preprocessing (normalisation, resampling, resegmentation, mask
checks), every image type (LoG, Wavelet, ...), shape and the texture classes, diagnostics, ``loadImage``,
``computeShape``, ``addProvenance``, ``loadJSONParams`` (a JSON string) and voxel-based extraction are
pyradiomics' code; only the ``firstorder`` class of ``computeFeatures`` is computed by rlnfast's kernel (equal to
pyradiomics to 1e-9 relative). rlnfast's own ``fractal`` class and ``Elasticity`` / ``DEM`` image types can be
enabled as well; their keys follow pyradiomics'. Because the original class is captured at import, the drop-in
can replace it inside pyradiomics (``radiomics.featureextractor.RadiomicsFeatureExtractor = ...``) so that
pyradiomics' CLI, its test harness or a user's tool run through rlnfast.

Without pyradiomics only rlnfast's classes (firstorder, fractal) and image types (Original, Elasticity, DEM) can
be enabled; anything else is an error that names it.
"""
from __future__ import annotations

import collections
import json
import os

import numpy as np

RLNFAST_CLASSES = ("firstorder", "fractal")
RLNFAST_ONLY_CLASSES = ("fractal",)
RLNFAST_IMAGE_TYPES = ("Elasticity", "DEM")   # image types pyradiomics does not have

try:
    from radiomics import featureextractor as _featureextractor
except ImportError:   # pyradiomics is optional
    _featureextractor = None
    _ORIGINAL = None
else:
    # The original class, captured now: replacing radiomics.featureextractor.RadiomicsFeatureExtractor with the
    # drop-in later must not make the drop-in its own base class.
    _ORIGINAL = getattr(_featureextractor.RadiomicsFeatureExtractor, "_rlnfast_original",
                        _featureextractor.RadiomicsFeatureExtractor)


def _pyradiomics():
    """pyradiomics' featureextractor module, or None when pyradiomics is not installed."""
    return _featureextractor


def firstorder_features(image, mask, featureNames=None, backend="auto", **kwargs) -> collections.OrderedDict:
    """pyradiomics' ``RadiomicsFirstOrder(image, mask, **kwargs)`` (with ``featureNames`` enabled, else the
    default ones) computed by rlnfast's kernel: {feature name: value}, in pyradiomics' order."""
    import SimpleITK as sitk

    from .ops import firstorder as op
    from .spec.firstorder import DEFAULT_FEATURES, FEATURES

    names = list(dict.fromkeys(featureNames or ()))
    for f in names:
        if f not in FEATURES:
            raise LookupError(f"Feature not found: {f}")   # pyradiomics' enableFeatureByName
    if not names:
        names = sorted(DEFAULT_FEATURES, key=lambda f: f"get{f}FeatureValue")
    arr = sitk.GetArrayFromImage(image)
    m = sitk.GetArrayFromImage(mask) == kwargs.get("label", 1)
    values = np.asarray(arr[m], dtype=np.float64)
    sx, sy, sz = (tuple(image.GetSpacing()) + (1.0, 1.0))[:3]
    row = op.firstorder(values, np.array([0, values.size], np.int64), bin_width=kwargs.get("binWidth", 25),
                        bin_count=kwargs.get("binCount"), voxel_array_shift=kwargs.get("voxelArrayShift", 0) or 0,
                        voxel_volume=sx * sy * sz, value_dtype=arr.dtype, backend=backend)[0]
    return collections.OrderedDict((f, np.float64(row[FEATURES.index(f)])) for f in names)


def _rlnfast_keys(extractor, image, mask, label) -> collections.OrderedDict:
    """rlnfast's own image types / classes (Elasticity, DEM, fractal) for one label, pyradiomics-style keys."""
    from .extract import extract

    itypes = {k: dict(v or {}) for k, v in extractor.enabledImagetypes.items()
              if k in RLNFAST_IMAGE_TYPES or k == "Original"}
    classes = {c: (list(f) if f else None) for c, f in extractor.enabledFeatures.items() if c in RLNFAST_CLASSES}
    if not classes or not itypes:
        return collections.OrderedDict()
    keep = {k: v for k, v in extractor.settings.items() if k in ("binWidth", "binCount", "voxelArrayShift")}
    df = extract(image, mask, {"setting": {**keep, "label": int(label)}, "imageType": itypes,
                               "featureClass": classes}, backend=getattr(extractor, "backend", "auto"))
    row = df.iloc[0]
    out = collections.OrderedDict()
    for c in df.columns:
        if c.startswith(("original_fractal_", "E_original_", "DEM_original_")):
            out[c] = row[c]
    return out


if _ORIGINAL is not None:

    class RadiomicsFeatureExtractor(_ORIGINAL):
        """pyradiomics' extractor with rlnfast computing ``firstorder``; see the module docstring."""

        _rlnfast_original = _ORIGINAL

        def __init__(self, *args, backend: str = "auto", **kwargs):
            self.backend = backend
            super().__init__(*args, **kwargs)

        def _applyParams(self, paramsFile=None, paramsDict=None):
            """pyradiomics' _applyParams; a file or dict its schema refuses raises ValueError naming the file and
            every offending key (pyradiomics raises pykwalify's bare 'validation.invalid' and logs the keys)."""
            import pykwalify.core
            from pykwalify.errors import SchemaError

            try:
                return super()._applyParams(paramsFile=paramsFile, paramsDict=paramsDict)
            except SchemaError as exc:
                from radiomics import getParameterValidationFiles

                schemaFile, schemaFuncs = getParameterValidationFiles()
                c = pykwalify.core.Core(source_file=paramsFile, source_data=paramsDict, schema_files=[schemaFile],
                                        extensions=[schemaFuncs])
                c.validate(raise_exception=False)
                where = f"parameter file {str(paramsFile)!r}" if paramsFile is not None else "parameters"
                raise ValueError(f"{where}: " + "; ".join(str(e) for e in c.validation_errors)) from exc

        def computeFeatures(self, image, mask, imageTypeName, **kwargs):
            """pyradiomics' computeFeatures: every enabled class but shape, in enabledFeatures order, firstorder by
            rlnfast's kernel (voxel-based firstorder stays pyradiomics')."""
            from radiomics import getFeatureClasses

            featureVector = collections.OrderedDict()
            featureClasses = getFeatureClasses()
            for featureClassName, featureNames in self.enabledFeatures.items():
                if featureClassName.startswith("shape") or featureClassName not in featureClasses:
                    continue
                if featureClassName == "firstorder" and not kwargs.get("voxelBased", False):
                    result = firstorder_features(image, mask, featureNames, backend=self.backend, **kwargs)
                else:
                    featureClass = featureClasses[featureClassName](image, mask, **kwargs)
                    if featureNames is not None:
                        for feature in featureNames:
                            featureClass.enableFeatureByName(feature)
                    result = featureClass.execute()
                for featureName, featureValue in result.items():
                    featureVector[f"{imageTypeName}_{featureClassName}_{featureName}"] = featureValue
            return featureVector

        def execute(self, imageFilepath, maskFilepath, label=None, label_channel=None, voxelBased=False):
            """pyradiomics' execute (keys, order and diagnostics as pyradiomics), then rlnfast's own image types
            and classes when enabled."""
            extra_types = [k for k in self.enabledImagetypes if k in RLNFAST_IMAGE_TYPES]
            extra_classes = [c for c in self.enabledFeatures if c in RLNFAST_ONLY_CLASSES]
            if not extra_types and not extra_classes:
                return super().execute(imageFilepath, maskFilepath, label, label_channel, voxelBased)
            if voxelBased:
                raise ValueError(f"voxelBased extraction of rlnfast's {(extra_types + extra_classes)[0]!r} is not "
                                 "supported")
            saved = self.enabledImagetypes, self.enabledFeatures
            try:
                self.enabledImagetypes = {k: v for k, v in saved[0].items() if k not in RLNFAST_IMAGE_TYPES}
                self.enabledFeatures = {k: v for k, v in saved[1].items() if k not in RLNFAST_ONLY_CLASSES}
                out = super().execute(imageFilepath, maskFilepath, label, label_channel, voxelBased)
            finally:
                self.enabledImagetypes, self.enabledFeatures = saved
            label = label if label is not None else self.settings.get("label", 1)
            out.update(_rlnfast_keys(self, imageFilepath, maskFilepath, label))
            return out

        def enableFeatureClassByName(self, featureClass, enabled=True):
            if featureClass in RLNFAST_ONLY_CLASSES:
                if enabled:
                    self.enabledFeatures[featureClass] = []
                else:
                    self.enabledFeatures.pop(featureClass, None)
                return
            if featureClass not in self.featureClassNames:
                raise ValueError(f"feature class {featureClass!r} does not exist (pyradiomics: "
                                 f"{', '.join(self.featureClassNames)}; rlnfast: {', '.join(RLNFAST_ONLY_CLASSES)})")
            super().enableFeatureClassByName(featureClass, enabled)

        def enableImageTypeByName(self, imageType, enabled=True, customArgs=None):
            if imageType in RLNFAST_IMAGE_TYPES:
                if enabled:
                    self.enabledImagetypes[imageType] = dict(customArgs or {})
                else:
                    self.enabledImagetypes.pop(imageType, None)
                return
            from radiomics import getImageTypes

            if imageType not in getImageTypes():
                raise ValueError(f"image type {imageType!r} does not exist (pyradiomics: "
                                 f"{', '.join(getImageTypes())}; rlnfast: {', '.join(RLNFAST_IMAGE_TYPES)})")
            super().enableImageTypeByName(imageType, enabled, customArgs)

        def execute_all(self, imageFilepath, labelmapFilepath):
            """Every positive label of a label map: a DataFrame with one row per label (column ``label``, then
            exactly the keys pyradiomics' ``execute`` returns for that label, diagnostics included). The image and
            label map are read once."""
            return _execute_all(self, imageFilepath, labelmapFilepath)

else:

    class RadiomicsFeatureExtractor:
        """pyradiomics' extractor interface without pyradiomics: rlnfast's classes and image types only."""

        def __init__(self, *args, backend: str = "auto", **kwargs):
            self.backend = backend
            self.settings = {"minimumROIDimensions": 2, "minimumROISize": None, "normalize": False,
                             "normalizeScale": 1, "removeOutliers": None, "resampledPixelSpacing": None,
                             "interpolator": "sitkBSpline", "preCrop": False, "padDistance": 5, "distances": [1],
                             "force2D": False, "force2Ddimension": 0, "resegmentRange": None, "label": 1,
                             "additionalInfo": True}
            self.enabledImagetypes = {"Original": {}}
            self.enabledFeatures = {"firstorder": []}
            self.featureClassNames = list(RLNFAST_CLASSES)
            if len(args) == 1 and isinstance(args[0], dict):
                self._apply(args[0], "dict")
            elif len(args) == 1 and isinstance(args[0], (str, os.PathLike)):
                self.loadParams(args[0])
            self.settings.update(kwargs)

        def loadParams(self, paramsFile):
            from .params import _read

            data, where = _read(paramsFile)
            self._apply(data, where)

        def loadJSONParams(self, JSON_configuration):
            self._apply(json.loads(JSON_configuration), "JSON")

        def _apply(self, raw, where):
            from .params import load_params

            load_params(raw if where in ("dict", "JSON") else raw)   # refuses what rlnfast cannot run, by name
            self.settings.update(raw.get("setting") or {})
            self.enabledImagetypes = {k: dict(v or {}) for k, v in (raw.get("imageType") or {"Original": {}}).items()}
            if raw.get("featureClass"):
                self.enabledFeatures = {k: list(v or []) for k, v in raw["featureClass"].items()}

        def addProvenance(self, provenance_on=True):
            self.settings["additionalInfo"] = provenance_on

        def enableAllFeatures(self):
            for c in RLNFAST_CLASSES:
                self.enabledFeatures[c] = []

        def disableAllFeatures(self):
            self.enabledFeatures = {}

        def enableFeatureClassByName(self, featureClass, enabled=True):
            if featureClass not in RLNFAST_CLASSES:
                raise ValueError(f"feature class {featureClass!r} is computed by pyradiomics, an optional dependency "
                                 "of rlnfast that is not installed (pip install --no-build-isolation pyradiomics)")
            if enabled:
                self.enabledFeatures[featureClass] = []
            else:
                self.enabledFeatures.pop(featureClass, None)

        def enableFeaturesByName(self, **enabledFeatures):
            for cls in enabledFeatures:
                if cls not in RLNFAST_CLASSES:
                    self.enableFeatureClassByName(cls)
            self.enabledFeatures.update(enabledFeatures)

        def enableImageTypeByName(self, imageType, enabled=True, customArgs=None):
            if imageType not in ("Original",) + RLNFAST_IMAGE_TYPES:
                raise ValueError(f"image type {imageType!r} is computed by pyradiomics, an optional dependency of "
                                 "rlnfast that is not installed (pip install --no-build-isolation pyradiomics)")
            if enabled:
                self.enabledImagetypes[imageType] = dict(customArgs or {})
            else:
                self.enabledImagetypes.pop(imageType, None)

        def enableImageTypes(self, **enabledImagetypes):
            for k, v in enabledImagetypes.items():
                self.enableImageTypeByName(k, True, v)

        def enableAllImageTypes(self):
            for k in ("Original",) + RLNFAST_IMAGE_TYPES:
                self.enabledImagetypes[k] = {}

        def disableAllImageTypes(self):
            self.enabledImagetypes = {}

        def _params(self, label):
            from .params import GENERAL_SETTINGS

            settings = {k: v for k, v in self.settings.items() if k in GENERAL_SETTINGS}
            settings["label"] = label
            return {"setting": settings, "imageType": self.enabledImagetypes,
                    "featureClass": {c: (list(f) if f else None) for c, f in self.enabledFeatures.items()}}

        def execute(self, imageFilepath, maskFilepath, label=None, label_channel=None, voxelBased=False):
            if voxelBased:
                raise ValueError("voxelBased extraction needs pyradiomics, which is not installed")
            from .extract import extract

            label = int(label if label is not None else self.settings.get("label", 1))
            df = extract(imageFilepath, maskFilepath, self._params(label), backend=self.backend)
            row = df.iloc[0]
            return collections.OrderedDict((c, row[c]) for c in df.columns if c != "label")

        def execute_all(self, imageFilepath, labelmapFilepath):
            from .extract import extract

            p = self._params(None)
            p["setting"].pop("label")
            return extract(imageFilepath, labelmapFilepath, p, backend=self.backend)


def _execute_all(extractor, image, labelmap):
    import pandas as pd
    import SimpleITK as sitk

    from .regions import find_regions

    img = sitk.ReadImage(str(image)) if isinstance(image, (str, os.PathLike)) else image
    lm = sitk.ReadImage(str(labelmap)) if isinstance(labelmap, (str, os.PathLike)) else labelmap
    labels = find_regions(sitk.GetArrayViewFromImage(lm), copy=False).label
    rows = []
    for lab in labels:
        r = collections.OrderedDict(label=int(lab))
        r.update(extractor.execute(img, lm, label=int(lab)))
        rows.append(r)
    return pd.DataFrame(rows)
