"""pyradiomics' preprocessing and filtered image types, per region, with pyradiomics' own functions.

For every region of a label map this replays what ``radiomics.featureextractor.RadiomicsFeatureExtractor.execute``
does for one label, in the same order and with the same calls to ``radiomics.imageoperations`` (normalizeImage,
resampleImage, checkMask, cropToTumorMask, resegmentMask, get<ImageType>Image), so the images and masks that
the feature classes see are pyradiomics' by construction:

- ``normalize`` runs once per case on the whole image (pyradiomics normalises the whole image).
- Without resampling or ``preCrop`` the filters (LoG, Wavelet, ...) run once per case on the whole (normalised)
  image, as pyradiomics does for every label; each region then takes its crop.
- With ``resampledPixelSpacing`` each region is resampled onto pyradiomics' grid, anchored at the label's
  bounding box plus ``padDistance`` and computed from the whole label map; the interpolator reads an image
  window of the bounding box plus the padding plus 32 voxels (B-spline coefficients are computed on that
  window; their difference from whole-image coefficients decays as 0.268^32 ~ 1e-18). The filters then run
  on each region's resampled image, as in pyradiomics. With ``preCrop`` the same, on the padded crop.
- LBP3D reads the region's mask, so it runs per region (on a window of the bounding box plus 40 voxels when
  the image is not resampled). pyradiomics 3.0.1's LBP3D imports ``scipy.special.sph_harm``, removed in SciPy
  1.17: :class:`sph_harm_shim` provides it from ``sph_harm_y`` with SciPy's documented argument conversion.

A region that pyradiomics refuses (checkMask: one voxel, too few dimensions, ``minimumROISize``; too few voxels
left after ``resegmentRange``) gets NaN features and its reason in ``diagnostics_Reason``.

pyradiomics is an optional dependency of rlnfast: :func:`require` names it when it is missing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

# pyradiomics' general settings that change the images or masks (with pyradiomics' defaults).
SETTINGS = {
    "normalize": False, "normalizeScale": 1, "removeOutliers": None,
    "resampledPixelSpacing": None, "interpolator": "sitkBSpline", "padDistance": 5, "preCrop": False,
    "resegmentRange": None, "resegmentMode": "absolute", "resegmentShape": False,
    "correctMask": False, "minimumROIDimensions": 2, "minimumROISize": None,
}
# The settings that, when not at their default, make extract run this pipeline.
ACTIVATING = ("normalize", "resampledPixelSpacing", "resegmentRange", "minimumROISize")
RESAMPLE_GUARD = 32      # voxels of image read beyond the resampled window (B-spline support + IIR decay)
LBP3D_GUARD = 40
INTERPOLATORS = ("sitkNearestNeighbor", "sitkLinear", "sitkBSpline", "sitkGaussian", "sitkLabelGaussian",
                 "sitkHammingWindowedSinc", "sitkCosineWindowedSinc", "sitkWelchWindowedSinc",
                 "sitkLanczosWindowedSinc", "sitkBlackmanWindowedSinc")


def _sph_harm(m, n, theta, phi):
    """SciPy's removed ``scipy.special.sph_harm(m, n, theta, phi)`` (theta azimuthal, phi polar) as SciPy
    documents it in terms of its replacement: ``sph_harm_y(n, m, phi, theta)`` (polar first, then azimuthal)."""
    from scipy.special import sph_harm_y

    return sph_harm_y(n, m, phi, theta)


class sph_harm_shim:
    """Context manager: while it is active, ``scipy.special.sph_harm`` exists (SciPy's own where it still has
    it, else :func:`_sph_harm`), so that pyradiomics 3.0.1's ``getLBP3DImage``, which imports it when its
    generator starts, computes its LBP3D image instead of silently yielding nothing under SciPy >= 1.17.
    Removed again on exit when it was added."""

    def __enter__(self):
        import scipy.special

        self.added = not hasattr(scipy.special, "sph_harm") and hasattr(scipy.special, "sph_harm_y")
        if self.added:
            scipy.special.sph_harm = _sph_harm
        return self

    def __exit__(self, *exc):
        import scipy.special

        if self.added and getattr(scipy.special, "sph_harm", None) is _sph_harm:
            del scipy.special.sph_harm
        return False


def require(what: str):
    """``radiomics.imageoperations``, or ImportError naming ``what`` and how to install pyradiomics."""
    try:
        import radiomics
        from radiomics import imageoperations
    except ImportError as exc:
        raise ImportError(f"{what} needs pyradiomics, an optional dependency of rlnfast that is not installed "
                          "(pip install --no-build-isolation pyradiomics)") from exc
    radiomics.setVerbosity(40)   # pyradiomics logs every skipped filter at WARNING; rlnfast reports reasons
    return imageoperations


def check_settings(s: dict) -> None:
    """pyradiomics' schema for the preprocessing settings; raises ValueError naming the key."""
    def number(k, lo=None, strict=False):
        v = s.get(k)
        if v is None:
            return
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (lo is not None and (v <= lo if strict else v < lo)):
            raise ValueError(f"{k}={v!r}: expected a number {'>' if strict else '>='} {lo}")

    if s.get("normalize") not in (None, True, False):
        raise ValueError(f"normalize={s['normalize']!r}: expected true or false")
    number("normalizeScale", 0, strict=True)
    number("removeOutliers", 0, strict=True)
    number("padDistance", 0)
    number("minimumROISize", 1)
    if s.get("minimumROIDimensions") is not None and s["minimumROIDimensions"] not in (1, 2, 3):
        raise ValueError(f"minimumROIDimensions={s['minimumROIDimensions']!r}: expected 1, 2 or 3")
    rs = s.get("resampledPixelSpacing")
    if rs is not None:
        if not isinstance(rs, (list, tuple)) or len(rs) != 3 or any(
                isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 for v in rs):
            raise ValueError(f"resampledPixelSpacing={rs!r}: expected 3 spacings (x, y, z) in mm, >= 0 "
                             "(0: keep that axis)")
    it = s.get("interpolator")
    if it is not None and not (isinstance(it, int) and not isinstance(it, bool)) and it not in INTERPOLATORS:
        raise ValueError(f"interpolator={it!r}: expected one of {', '.join(INTERPOLATORS)}")
    rr = s.get("resegmentRange")
    if rr is not None:
        if not isinstance(rr, (list, tuple)) or len(rr) not in (1, 2) or any(
                isinstance(v, bool) or not isinstance(v, (int, float)) for v in rr):
            raise ValueError(f"resegmentRange={rr!r}: expected [lower] or [lower, upper]")
    if s.get("resegmentMode") not in (None, "absolute", "relative", "sigma"):
        raise ValueError(f"resegmentMode={s['resegmentMode']!r}: expected absolute, relative or sigma")


def active(settings: dict, filters: bool, delegated: bool) -> bool:
    """Whether extract must run pyradiomics' pipeline: a preprocessing setting, a pyradiomics filter image
    type or a delegated class (shape, glcm, ...)."""
    return filters or delegated or bool(activating(settings))


def activating(settings: dict) -> list:
    """The preprocessing settings that are set (they change the images or the masks)."""
    return [k for k in ACTIVATING if is_set(settings, k)]


def is_set(settings, key) -> bool:
    v = settings.get(key, SETTINGS.get(key))
    if key == "resampledPixelSpacing":
        return v is not None and settings.get("interpolator", "sitkBSpline") is not None
    return v not in (None, False)


def sub_image(img, lo, hi):
    """The part [lo, hi) (x, y, z indices) of a 3-D scalar SimpleITK image, as SimpleITK's Slice / CropImageFilter
    make it (the same pixels, pixel type, spacing and direction; origin = the physical point of index ``lo``),
    built from a NumPy view of the pixels: a crop of a few thousand voxels then costs microseconds, not the
    milliseconds of an ITK filter's pipeline and thread pool. Other images go through SimpleITK's Slice."""
    import SimpleITK as sitk

    lo = [int(v) for v in lo]
    hi = [int(v) for v in hi]
    if img.GetDimension() != 3 or img.GetNumberOfComponentsPerPixel() != 1:
        return img[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    arr = sitk.GetArrayViewFromImage(img)[lo[2]:hi[2], lo[1]:hi[1], lo[0]:hi[0]]
    out = sitk.GetImageFromArray(np.ascontiguousarray(arr))
    out.SetSpacing(img.GetSpacing())
    out.SetDirection(img.GetDirection())
    out.SetOrigin(img.TransformIndexToPhysicalPoint(lo))
    return out


def crop_to_mask(image, mask, bbox):
    """pyradiomics' ``cropToTumorMask(image, mask, bbox)`` (padDistance 0) by :func:`sub_image`: both cropped to
    the bounding box [x0, x1, y0, y1, z0, z1] (inclusive)."""
    bb = np.asarray(bbox, np.int64)
    lo, hi = bb[0::2], bb[1::2] + 1
    return sub_image(image, lo, hi), sub_image(mask, lo, hi)


@dataclass
class RegionPrep:
    """One region after pyradiomics' loadImage, checkMask and resegmentMask (execute's variables)."""

    label: int
    image: object = None         # SimpleITK image the filters run on (None: the case's whole image)
    mask: object = None          # mask for the image types (resegmented when resegmentRange)
    shape_mask: object = None    # mask for shape (resegmented only with resegmentShape)
    bbox: np.ndarray | None = None
    window: tuple | None = None   # (x0, x1, y0, y1, z0, z1) of the case's image this region's image is cut from
    reason: str = ""


@dataclass
class CasePrep:
    """pyradiomics' pipeline for every region of one case; built once per case (``ctx.cache``)."""

    volume: object
    regions: object
    settings: dict
    lbp3d: bool = False
    _preps: dict = field(default_factory=dict)
    _whole: dict = field(default_factory=dict)

    def __post_init__(self):
        import SimpleITK as sitk

        self.io = require("pyradiomics' preprocessing and image types")
        s = self.settings
        self.resample = s.get("resampledPixelSpacing") is not None and s.get("interpolator") is not None
        self.precrop = bool(s.get("preCrop")) and not self.resample
        image = self.volume.to_sitk()
        if s.get("normalize"):
            image = self.io.normalizeImage(image, **s)
        self.image = image   # the whole (normalised) image: what the filters run on unless resampled/pre-cropped
        lm = self.regions.label_map
        self.labels = sitk.Cast(self.volume.to_sitk(np.ascontiguousarray(lm)), sitk.sitkUInt32)   # getMask's cast

    @property
    def per_region_images(self) -> bool:
        return self.resample or self.precrop

    def _window(self, r: int, margin) -> tuple:
        z0, y0, x0, z1, y1, x1 = (int(v) for v in self.regions.bbox[r])
        nx, ny, nz = self.image.GetSize()
        mx, my, mz = margin
        return (max(x0 - mx, 0), min(x1 + mx + 1, nx), max(y0 - my, 0), min(y1 + my + 1, ny),
                max(z0 - mz, 0), min(z1 + mz + 1, nz))

    @staticmethod
    def cut(img, w):
        """``img[x0:x1, y0:y1, z0:z1]`` (SimpleITK's Slice), built from a NumPy view of the pixels."""
        return sub_image(img, (w[0], w[2], w[4]), (w[1], w[3], w[5]))

    def kwargs(self, r: int, extra: dict | None = None) -> dict:
        kw = dict(self.settings)
        kw.update(extra or {})
        kw["label"] = int(self.regions.label[r])
        return kw

    def region(self, r: int) -> RegionPrep:
        if r not in self._preps:
            try:
                self._preps[r] = self._prepare(r)
            except ValueError as exc:   # pyradiomics' refusals (checkMask, resegmentMask) are ValueErrors
                self._preps[r] = RegionPrep(int(self.regions.label[r]), reason=str(exc).strip().splitlines()[0])
        return self._preps[r]

    def _prepare(self, r: int) -> RegionPrep:
        io, kw = self.io, self.kwargs(r)
        lab = kw["label"]
        if self.resample:
            sp = np.asarray(self.image.GetSpacing(), float)
            new = np.where(np.asarray(kw["resampledPixelSpacing"], float) == 0, sp,
                           np.asarray(kw["resampledPixelSpacing"], float))
            pad = float(kw.get("padDistance", 5))
            margin = tuple(int(math.ceil(pad * max(new[a], sp[a]) / sp[a])) + RESAMPLE_GUARD for a in range(3))
            window = self._window(r, margin)
            # the grid comes from the whole label map (pyradiomics' anchoring); the image from a window of it
            image, mask = io.resampleImage(self.cut(self.image, window), self.labels, **kw)
            window = None
        else:
            margin = 0
            if self.precrop:
                margin = int(kw.get("padDistance", 5))
            if self.lbp3d:
                margin = max(margin, LBP3D_GUARD)
            window = self._window(r, (margin,) * 3)
            image, mask = self.cut(self.image, window), self.cut(self.labels, window)
            if self.precrop:
                bb, corrected = io.checkMask(image, mask, **kw)
                if corrected is not None:
                    mask = corrected
                image, mask = io.cropToTumorMask(image, mask, bb, **kw)
                window = None
        bbox, corrected = io.checkMask(image, mask, **kw)
        if corrected is not None:
            mask = corrected
        shape_mask = mask
        if kw.get("resegmentRange") is not None:
            reseg = io.resegmentMask(image, mask, **kw)
            bbox, _ = io.checkMask(image, reseg, **kw)
            if kw.get("resegmentShape", False):
                shape_mask = reseg
            mask = reseg
        return RegionPrep(lab, image, mask, shape_mask, bbox, window)

    # ---- image types
    def filtered(self, image_type: str, custom: dict) -> dict:
        """pyradiomics' image type ``image_type`` for every region: {image name ('log-sigma-1-0-mm-3D', ...):
        [None or (croppedImage, croppedMask, kwargs) per region]}, names in pyradiomics' generator order."""
        io = self.io
        func = getattr(io, f"get{image_type}Image")
        n = len(self.regions)
        out: dict = {}
        custom = dict(custom)
        if image_type == "LoG" and custom.get("sigma") is None:
            custom["sigma"] = []

        def put(name, r, img, rp, kw):
            ci, cm = crop_to_mask(img, rp.mask, rp.bbox)
            out.setdefault(name, [None] * n)[r] = (ci, cm, kw)

        preps = [self.region(r) for r in range(n)]
        if self.per_region_images or image_type in ("Original", "LBP3D"):
            with sph_harm_shim():   # LBP3D: pyradiomics' own function, with SciPy >= 1.17 too
                for r, rp in enumerate(preps):
                    if rp.reason:
                        continue
                    kw = self.kwargs(r, custom)
                    for img, name, ikw in func(rp.image, rp.mask, **kw):
                        put(name, r, img, rp, ikw)
            return out
        # the filter does not depend on the region: once on the whole image, as pyradiomics does for every label
        kw0 = dict(self.settings)
        kw0.update(custom)
        for img, name, ikw in func(self.image, self.labels, **kw0):
            for r, rp in enumerate(preps):
                if not rp.reason:
                    put(name, r, self.cut(img, rp.window), rp, {**ikw, "label": rp.label})
        return out
