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
pyradiomics to 1e-9 relative). ``execute`` follows pyradiomics' ``execute`` step by step, with the full-volume
passes for one label (provenance, getMask's label check, checkMask's bounding box, crops, the resampling input)
done by identical, cheaper means (:class:`_FastChecks`). rlnfast's own ``fractal`` class and ``Elasticity`` / ``DEM`` image types can be
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


def _plain(img) -> bool:
    """A scalar 3-D SimpleITK image (what the fast checks handle; anything else goes to pyradiomics' code)."""
    return img.GetDimension() == 3 and img.GetNumberOfComponentsPerPixel() == 1


def _same_grid(a, b) -> bool:
    return (a.GetSize() == b.GetSize() and a.GetOrigin() == b.GetOrigin() and a.GetSpacing() == b.GetSpacing()
            and a.GetDirection() == b.GetDirection())


class _FastChecks:
    """Identical, faster versions of two full-volume steps of pyradiomics' ``execute`` for one label.

    - The image's and mask's provenance (``generalinfo.GeneralInfo.addImageElements`` / ``addMaskElements``,
      every prefix: original, interpolated, corrected, resegmented): the SHA-1 of the pixel buffer by hashlib (the bytes ITK's
      ``sitk.Hash`` digests, checked equal in the tests), and the mask's bounding box, voxel count, connected
      volumes (26-connected components counted by ``scipy.ndimage.label`` on the bounding box, where all of the
      label's components lie, as ITK's fully connected ConnectedComponent counts them) and centre of mass (integer coordinates: their sum is exact, so the mean is the same number) from one
      NumPy pass over the mask instead of ITK's LabelShapeStatistics, ConnectedComponent and ``numpy.where`` over
      the whole volume.
    - ``imageoperations.checkMask`` on an image and mask of identical geometry (size, origin, spacing,
      direction): the bounding box and count from that same pass, then pyradiomics' own checks and messages.
      Any other geometry (where ITK's tolerance or ``correctMask`` matter) is pyradiomics' checkMask.
    """

    def __init__(self, label):
        self.label = label
        self._stats = {}

    def stats(self, mask):
        """(bounding box as LabelStatistics' [x0, x1, y0, y1, z0, z1], voxel count, the label's mask cropped
        to it (z, y, x), its (z, y, x) start) or None when the label is absent."""
        import SimpleITK as sitk

        key = id(mask)
        if key not in self._stats:
            arr = sitk.GetArrayViewFromImage(mask)
            ma = arr == self.label
            zs = np.flatnonzero(ma.any(axis=(1, 2)))
            if zs.size == 0:
                self._stats[key] = (mask, None)
            else:
                ys = np.flatnonzero(ma[zs[0]:zs[-1] + 1].any(axis=(0, 2)))
                xs = np.flatnonzero(ma[zs[0]:zs[-1] + 1, ys[0]:ys[-1] + 1].any(axis=(0, 1)))
                crop = ma[zs[0]:zs[-1] + 1, ys[0]:ys[-1] + 1, xs[0]:xs[-1] + 1]
                bb = np.array([xs[0], xs[-1], ys[0], ys[-1], zs[0], zs[-1]], dtype=np.int64)
                self._stats[key] = (mask, (bb, int(np.count_nonzero(crop)), crop, (zs[0], ys[0], xs[0])))
        return self._stats[key][1]

    def getMask(self, mask, **kwargs):
        """pyradiomics' ``imageoperations.getMask`` for a scalar integer mask: the same UInt32 image (NumPy's cast
        wraps negative values as ITK's static_cast does), the label's presence from :meth:`stats`; pyradiomics'
        own function for anything else and for its errors (no label, label absent)."""
        import SimpleITK as sitk

        getMask = self.original_getMask
        label = kwargs.get("label", 1)
        if (label != self.label or not label or not _plain(mask)
                or sitk.GetArrayViewFromImage(mask).dtype.kind not in "iu"):
            return getMask(mask, **kwargs)
        arr = sitk.GetArrayViewFromImage(mask)
        out = sitk.GetImageFromArray(arr.astype(np.uint32))
        out.CopyInformation(mask)
        if self.stats(out) is None:
            return getMask(mask, **kwargs)   # pyradiomics' error
        return out

    def resampleImage(self, image, mask, **kwargs):
        """pyradiomics' ``imageoperations.resampleImage`` given only the window of the image that the resampling
        grid (the label's bounding box plus ``padDistance``) and the interpolator's support read: the bounding box
        plus the padding plus 32 voxels, as rlnfast.preprocessing does for extract. With a B-spline interpolator
        ITK computes the spline coefficients on the whole input; on the window they differ from the whole
        image's by about 0.268^32 ~ 1e-18 of the image's range, below double precision. Where the spacing does
        not change, or the geometries differ, pyradiomics' function on the whole image."""
        import math

        from .preprocessing import RESAMPLE_GUARD, sub_image

        resample = self.original_resampleImage
        if (kwargs.get("label", 1) != self.label or not (_plain(image) and _plain(mask) and _same_grid(image, mask))):
            return resample(image, mask, **kwargs)
        sp = np.asarray(mask.GetSpacing(), float)
        new = np.asarray(kwargs["resampledPixelSpacing"], float)
        new = np.where(new == 0, sp, new)
        st = self.stats(mask)
        if st is None or np.array_equal(new, sp):
            return resample(image, mask, **kwargs)
        pad = float(kwargs.get("padDistance", 5))
        bb = st[0]
        size = image.GetSize()
        lo, hi = [], []
        for a in range(3):
            m = int(math.ceil(pad * max(new[a], sp[a]) / sp[a])) + RESAMPLE_GUARD
            lo.append(max(int(bb[2 * a]) - m, 0))
            hi.append(min(int(bb[2 * a + 1]) + m + 1, size[a]))
        return resample(sub_image(image, lo, hi), mask, **kwargs)

    def checkMask(self, image, mask, **kwargs):
        from radiomics import imageoperations

        if kwargs.get("label", 1) != self.label or not (_plain(image) and _plain(mask) and _same_grid(image, mask)):
            return imageoperations.checkMask(image, mask, **kwargs)
        st = self.stats(mask)
        if st is None:
            raise ValueError("Label (%g) not present in mask" % self.label)
        boundingBox, count = st[0], st[1]
        minDims = kwargs.get("minimumROIDimensions", 2)
        minSize = kwargs.get("minimumROISize", None)
        ndims = np.sum((boundingBox[1::2] - boundingBox[0::2] + 1) > 1)
        if ndims == 0:
            raise ValueError("mask only contains 1 segmented voxel! Cannot extract features for a single voxel.")
        elif ndims < minDims:
            raise ValueError("mask has too few dimensions (number of dimensions %d, minimum required %d)"
                             % (ndims, minDims))
        if minSize is not None and count <= minSize:
            raise ValueError("Size of the ROI is too small (minimum size: %g, ROI size: %g" % (minSize, count))
        return boundingBox, None

    def general_info(self, base):
        fast = self

        class GeneralInfo(base):
            def addImageElements(self, image, prefix="original"):
                import hashlib

                import SimpleITK as sitk

                if not _plain(image):
                    return super().addImageElements(image, prefix)
                p = self.generalInfo_prefix
                arr = sitk.GetArrayViewFromImage(image)
                if prefix == "original":
                    self.generalInfo[p + "Image-original_Hash"] = hashlib.sha1(np.ascontiguousarray(arr)).hexdigest()
                    self.generalInfo[p + "Image-original_Dimensionality"] = "%iD" % image.GetDimension()
                self.generalInfo[p + "Image-" + prefix + "_Spacing"] = image.GetSpacing()
                self.generalInfo[p + "Image-" + prefix + "_Size"] = image.GetSize()
                im_arr = arr.astype("float")
                self.generalInfo[p + "Image-" + prefix + "_Mean"] = np.mean(im_arr)
                self.generalInfo[p + "Image-" + prefix + "_Minimum"] = np.min(im_arr)
                self.generalInfo[p + "Image-" + prefix + "_Maximum"] = np.max(im_arr)

            def addMaskElements(self, image, mask, label, prefix="original"):
                import hashlib

                import SimpleITK as sitk
                from scipy import ndimage

                if (mask is None or label != fast.label or not _plain(mask)
                        or (image is not None and not (_plain(image) and _same_grid(image, mask)))):
                    return super().addMaskElements(image, mask, label, prefix)
                st = fast.stats(mask)
                if st is None:   # LabelShapeStatistics raises for an absent label: pyradiomics' own error
                    return super().addMaskElements(image, mask, label, prefix)
                bb, count, crop, (z0, y0, x0) = st
                p = self.generalInfo_prefix
                if prefix == "original":
                    self.generalInfo[p + "Mask-original_Hash"] = hashlib.sha1(
                        np.ascontiguousarray(sitk.GetArrayViewFromImage(mask))).hexdigest()
                q = p + "Mask-" + prefix
                self.generalInfo[q + "_Spacing"] = mask.GetSpacing()
                self.generalInfo[q + "_Size"] = mask.GetSize()
                self.generalInfo[q + "_BoundingBox"] = (
                    int(bb[0]), int(bb[2]), int(bb[4]), int(bb[1] - bb[0] + 1), int(bb[3] - bb[2] + 1),
                    int(bb[5] - bb[4] + 1))
                self.generalInfo[q + "_VoxelNum"] = count
                # ITK's fully connected (26-neighbour) ConnectedComponent count = SciPy's with a 3x3x3 structure
                _, volumes = ndimage.label(crop, structure=np.ones((3, 3, 3), bool))
                self.generalInfo[q + "_VolumeNum"] = int(volumes)
                zz, yy, xx = np.where(crop)
                center_index = (np.mean(xx + x0), np.mean(yy + y0), np.mean(zz + z0))
                self.generalInfo[q + "_CenterOfMassIndex"] = center_index
                self.generalInfo[q + "_CenterOfMass"] = mask.TransformContinuousIndexToPhysicalPoint(center_index)
                if image is None:
                    return
                # the ROI's voxels in C order: the bounding box keeps their order, so the same numbers
                box = sitk.GetArrayViewFromImage(image)[z0:z0 + crop.shape[0], y0:y0 + crop.shape[1],
                                                        x0:x0 + crop.shape[2]]
                targetvoxels = box[crop].astype("float")
                self.generalInfo[q + "_Mean"] = np.mean(targetvoxels)
                self.generalInfo[q + "_Minimum"] = np.min(targetvoxels)
                self.generalInfo[q + "_Maximum"] = np.max(targetvoxels)

        return GeneralInfo()


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
                return self._execute(imageFilepath, maskFilepath, label, label_channel, voxelBased)
            if voxelBased:
                raise ValueError(f"voxelBased extraction of rlnfast's {(extra_types + extra_classes)[0]!r} is not "
                                 "supported")
            saved = self.enabledImagetypes, self.enabledFeatures
            try:
                self.enabledImagetypes = {k: v for k, v in saved[0].items() if k not in RLNFAST_IMAGE_TYPES}
                self.enabledFeatures = {k: v for k, v in saved[1].items() if k not in RLNFAST_ONLY_CLASSES}
                out = self._execute(imageFilepath, maskFilepath, label, label_channel, voxelBased)
            finally:
                self.enabledImagetypes, self.enabledFeatures = saved
            label = label if label is not None else self.settings.get("label", 1)
            out.update(_rlnfast_keys(self, imageFilepath, maskFilepath, label))
            return out

        def _execute(self, imageFilepath, maskFilepath, label=None, label_channel=None, voxelBased=False):
            """pyradiomics 3.0.1's ``execute``, statement for statement, with two full-volume steps done faster
            and identically (see :class:`_FastChecks`): the provenance of the original image and mask (SHA-1,
            bounding box, voxel count, connected volumes, centre of mass) and checkMask's bounding box. Voxel-based
            extraction is pyradiomics' own ``execute``."""
            from itertools import chain

            from radiomics import featureextractor as fe
            from radiomics import generalinfo, imageoperations

            from .preprocessing import crop_to_mask, sph_harm_shim

            if voxelBased:
                with sph_harm_shim():
                    return super().execute(imageFilepath, maskFilepath, label, label_channel, voxelBased)
            _settings = self.settings.copy()
            tolerance = _settings.get("geometryTolerance")
            additionalInfo = _settings.get("additionalInfo", False)
            resegmentShape = _settings.get("resegmentShape", False)
            if label is not None:
                _settings["label"] = label
            else:
                label = _settings.get("label", 1)
            if label_channel is not None:
                _settings["label_channel"] = label_channel
            if fe.geometryTolerance != tolerance:
                self._setTolerance()
            fast = _FastChecks(label)
            if additionalInfo:
                generalInfo = fast.general_info(generalinfo.GeneralInfo)
                generalInfo.addGeneralSettings(_settings)
                generalInfo.addEnabledImageTypes(self.enabledImagetypes)
            else:
                generalInfo = None
            featureVector = collections.OrderedDict()
            self._fast = fast
            try:
                image, mask = self.loadImage(imageFilepath, maskFilepath, generalInfo, **_settings)
            finally:
                self._fast = None
            boundingBox, correctedMask = fast.checkMask(image, mask, **_settings)
            if correctedMask is not None:
                if generalInfo is not None:
                    generalInfo.addMaskElements(image, correctedMask, label, "corrected")
                mask = correctedMask
            resegmentedMask = None
            if _settings.get("resegmentRange", None) is not None:
                resegmentedMask = imageoperations.resegmentMask(image, mask, **_settings)
                boundingBox, correctedMask = fast.checkMask(image, resegmentedMask, **_settings)
                if generalInfo is not None:
                    generalInfo.addMaskElements(image, resegmentedMask, label, "resegmented")
            if generalInfo is not None:
                featureVector.update(generalInfo.getGeneralInfo())
            if resegmentShape and resegmentedMask is not None:
                mask = resegmentedMask
            featureVector.update(self.computeShape(image, mask, boundingBox, **_settings))
            if not resegmentShape and resegmentedMask is not None:
                mask = resegmentedMask
            imageGenerators = []
            for imageType, customKwargs in self.enabledImagetypes.items():
                args = _settings.copy()
                args.update(customKwargs)
                imageGenerators = chain(imageGenerators,
                                        getattr(imageoperations, "get%sImage" % imageType)(image, mask, **args))
            with sph_harm_shim():   # LBP3D: pyradiomics' own function, with SciPy >= 1.17 too
                for inputImage, imageTypeName, inputKwargs in imageGenerators:
                    inputImage, inputMask = crop_to_mask(inputImage, mask, boundingBox)   # cropToTumorMask, pad 0
                    featureVector.update(self.computeFeatures(inputImage, inputMask, imageTypeName, **inputKwargs))
            return featureVector

        def computeShape(self, image, mask, boundingBox, **kwargs):
            """pyradiomics' computeShape; with no shape class enabled it returns the empty OrderedDict at once
            (pyradiomics crops image and mask first, then computes nothing)."""
            if not any(c in self.enabledFeatures for c in ("shape", "shape2D")):
                return collections.OrderedDict()
            return super().computeShape(image, mask, boundingBox, **kwargs)

        def loadImage(self, ImageFilePath, MaskFilePath, generalInfo=None, **kwargs):
            """pyradiomics 3.0.1's loadImage, statement for statement; inside ``execute`` its ``getMask`` (cast to
            UInt32, ``numpy.unique`` of the whole mask to check the label) is :meth:`_FastChecks.getMask`,
            identical and cheaper, and its ``resampleImage`` reads a window of the image
            (:meth:`_FastChecks.resampleImage`). Outside ``execute``: pyradiomics' own."""
            import SimpleITK as sitk
            from radiomics import imageoperations

            fast = getattr(self, "_fast", None)
            if fast is None:
                return super().loadImage(ImageFilePath, MaskFilePath, generalInfo, **kwargs)
            fast.original_getMask = imageoperations.getMask
            fast.original_resampleImage = imageoperations.resampleImage
            normalize = kwargs.get("normalize", False)
            interpolator = kwargs.get("interpolator")
            resampledPixelSpacing = kwargs.get("resampledPixelSpacing")
            preCrop = kwargs.get("preCrop", False)
            label = kwargs.get("label", 1)
            if isinstance(ImageFilePath, str) and os.path.isfile(ImageFilePath):
                image = sitk.ReadImage(ImageFilePath)
            elif isinstance(ImageFilePath, sitk.SimpleITK.Image):
                image = ImageFilePath
            else:
                raise ValueError("Error reading image Filepath or SimpleITK object")
            if isinstance(MaskFilePath, str) and os.path.isfile(MaskFilePath):
                mask = sitk.ReadImage(MaskFilePath)
            elif isinstance(MaskFilePath, sitk.SimpleITK.Image):
                mask = MaskFilePath
            else:
                raise ValueError("Error reading mask Filepath or SimpleITK object")
            mask = fast.getMask(mask, **kwargs)
            if generalInfo is not None:
                generalInfo.addImageElements(image)
                generalInfo.addMaskElements(None, mask, label)
            if normalize:
                image = imageoperations.normalizeImage(image, **kwargs)
            if interpolator is not None and resampledPixelSpacing is not None:
                image, mask = fast.resampleImage(image, mask, **kwargs)
                if generalInfo is not None:
                    generalInfo.addImageElements(image, "interpolated")
                    generalInfo.addMaskElements(image, mask, label, "interpolated")
            elif preCrop:
                bb, correctedMask = imageoperations.checkMask(image, mask, **kwargs)
                if correctedMask is not None:
                    mask = correctedMask
                if bb is None:
                    raise ValueError("Mask checks failed during pre-crop")
                image, mask = imageoperations.cropToTumorMask(image, mask, bb, **kwargs)
            return image, mask

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
