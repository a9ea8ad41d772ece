"""Reading and writing volumes: the only module that touches image files (SimpleITK for NIfTI, NRRD, DICOM).

A :class:`Volume` is a NumPy array in (z, y, x) order plus SimpleITK geometry (spacing, origin and
direction in (x, y, z) order), so everything below this module works on arrays.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd", ".dcm")


@dataclass
class Volume:
    """A 3-D array (z, y, x) with SimpleITK geometry (spacing/origin/direction in x, y, z order)."""

    array: np.ndarray
    spacing: tuple = (1.0, 1.0, 1.0)
    origin: tuple = (0.0, 0.0, 0.0)
    direction: tuple = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    name: str = "image"
    meta: dict = field(default_factory=dict)

    @property
    def shape(self):
        return self.array.shape

    @property
    def spacing_zyx(self) -> tuple:
        return tuple(float(s) for s in self.spacing[::-1])

    @property
    def voxel_volume(self) -> float:
        """mm^3 per voxel, multiplied in pyradiomics' order (x * y * z)."""
        x, y, z = self.spacing
        return x * y * z

    def geometry(self) -> dict:
        return {"size": tuple(int(s) for s in self.array.shape[::-1]), "spacing": tuple(self.spacing),
                "origin": tuple(self.origin), "direction": tuple(self.direction)}

    def to_sitk(self, array: np.ndarray | None = None):
        """A SimpleITK image of ``array`` (default: this volume's) with this volume's geometry."""
        import SimpleITK as sitk

        img = sitk.GetImageFromArray(self.array if array is None else array)
        img.SetSpacing(tuple(float(s) for s in self.spacing))
        img.SetOrigin(tuple(float(s) for s in self.origin))
        img.SetDirection(tuple(float(s) for s in self.direction))
        return img

    def with_array(self, array: np.ndarray, name: str | None = None) -> "Volume":
        return Volume(array, self.spacing, self.origin, self.direction, name or self.name)


def _describe(x) -> str:
    if isinstance(x, (str, os.PathLike)):
        return str(x)
    return type(x).__name__


def read_volume(source, spacing=None, name: str = "image") -> Volume:
    """A :class:`Volume` from a file path, a SimpleITK image, a Volume, a NumPy array or a device array
    (CuPy, torch CUDA tensor: copied to the host).

    Arrays are (z, y, x); ``spacing`` is then (x, y, z) in mm as in SimpleITK (default 1 mm).
    A 2-D input becomes one slice; 4-D and higher inputs are refused.
    """
    if isinstance(source, Volume):
        vol = source
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"{name} file {str(path)!r} does not exist")
        import SimpleITK as sitk

        try:
            if path.is_dir():
                reader = sitk.ImageSeriesReader()
                files = reader.GetGDCMSeriesFileNames(str(path))
                if not files:
                    raise ValueError(f"{name} folder {str(path)!r}: no DICOM series found")
                reader.SetFileNames(files)
                img = reader.Execute()
            else:
                img = sitk.ReadImage(str(path))
        except RuntimeError as exc:
            raise ValueError(f"{name} file {str(path)!r} could not be read: {str(exc).strip().splitlines()[-1]}") from exc
        vol = _from_sitk(img, f"{name} {str(path)!r}")
    elif type(source).__name__ == "Image" and type(source).__module__.startswith("SimpleITK"):
        vol = _from_sitk(source, name)
    else:
        from ._gpu import is_device_array, to_host

        # device arrays (CuPy, torch CUDA): copied to the host once; region discovery runs on the CPU
        arr = to_host(source) if is_device_array(source) else np.asarray(source)
        if spacing is None:
            spacing = (1.0, 1.0, 1.0)
        sp = tuple(float(s) for s in spacing)
        if len(sp) != 3:
            raise ValueError(f"{name}: spacing {sp} must have 3 values (x, y, z) in mm")
        vol = Volume(arr, sp, name=name)
    arr = vol.array
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f"{name}: expected a 3-D image (z, y, x), got {arr.ndim}-D with shape {arr.shape}")
    if any(not np.isfinite(s) or s <= 0 for s in vol.spacing):
        raise ValueError(f"{name}: spacing {tuple(vol.spacing)} must be finite and > 0")
    if arr is not vol.array or not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    vol = Volume(arr, tuple(vol.spacing), tuple(vol.origin), tuple(vol.direction), vol.name if vol.name != "image" else name)
    return vol


class _ImageBuffer:
    """Exposes a SimpleITK image's pixel buffer to NumPy and keeps the image alive: an array made from it (and
    every view of that array) holds this object as its base, so the buffer never outlives the image."""

    def __init__(self, img, view: np.ndarray):
        self.image = img
        self.__array_interface__ = view.__array_interface__


def _array_view(img) -> np.ndarray:
    """The image's voxels as a read-only (z, y, x) NumPy view, without a copy (sitk.GetArrayViewFromImage, whose
    bare view does not keep the image alive)."""
    import SimpleITK as sitk

    view = sitk.GetArrayViewFromImage(img)
    arr = np.asarray(_ImageBuffer(img, view))
    arr.flags.writeable = False
    return arr


def _from_sitk(img, what) -> Volume:
    import SimpleITK as sitk

    if img.GetDimension() not in (2, 3):
        raise ValueError(f"{what}: expected a 3-D image, got a {img.GetDimension()}-D image of size {img.GetSize()}")
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError(f"{what}: expected one value per voxel, got {img.GetNumberOfComponentsPerPixel()} components")
    arr = _array_view(img)
    sp, org, dr = img.GetSpacing(), img.GetOrigin(), img.GetDirection()
    if img.GetDimension() == 2:
        sp, org = sp + (1.0,), org + (0.0,)
        dr = (dr[0], dr[1], 0.0, dr[2], dr[3], 0.0, 0.0, 0.0, 1.0)
    return Volume(arr, tuple(sp), tuple(org), tuple(dr), what)


def geometry_mismatches(a: dict, b: dict, tolerance: float | None = None) -> list:
    """The fields ('size', 'spacing', 'origin', 'direction') in which geometry ``a`` differs from ``b``.

    Size must match exactly; spacing and origin within ``tolerance`` times ``b``'s spacing (default 1e-6,
    SimpleITK's coordinate tolerance), direction within ``tolerance`` (pyradiomics geometryTolerance).
    Geometries are :meth:`Volume.geometry` dicts, SimpleITK (x, y, z) order.
    """
    tol = 1e-6 if tolerance is None else float(tolerance)
    sp = np.asarray(b["spacing"], float)
    bad = []
    if tuple(a["size"]) != tuple(b["size"]):
        bad.append("size")
    if np.any(np.abs(np.asarray(a["spacing"], float) - sp) > tol * sp):
        bad.append("spacing")
    if np.any(np.abs(np.asarray(a["origin"], float) - np.asarray(b["origin"], float)) > tol * sp):
        bad.append("origin")
    if np.any(np.abs(np.asarray(a["direction"], float) - np.asarray(b["direction"], float)) > tol):
        bad.append("direction")
    return bad


def check_geometry(image: Volume, mask: Volume, tolerance: float | None = None) -> None:
    """Raise ValueError naming both geometries when image and label map differ (:func:`geometry_mismatches`)."""
    gi, gm = image.geometry(), mask.geometry()
    bad = geometry_mismatches(gm, gi, tolerance)
    if bad:
        problems = [f"{k} {_fmt(gm[k]) if k != 'size' else gm[k]} differs from image {k} "
                    f"{_fmt(gi[k]) if k != 'size' else gi[k]}" for k in bad]
        tol = 1e-6 if tolerance is None else float(tolerance)
        raise ValueError(f"{mask.name} does not match {image.name}: " + "; ".join(problems)
                         + f" (geometryTolerance {tol:g})")


def _fmt(t) -> str:
    return "(" + ", ".join(f"{v:.6g}" for v in t) + ")"


def write_volume(volume_or_image, path, like: Volume | None = None, compress: bool = True) -> Path:
    """Write a Volume, SimpleITK image or array (with ``like``'s geometry) atomically (temp file, rename)."""
    import SimpleITK as sitk

    path = Path(path)
    if isinstance(volume_or_image, Volume):
        img = volume_or_image.to_sitk()
    elif isinstance(volume_or_image, np.ndarray):
        if like is None:
            raise ValueError(f"write_volume({str(path)!r}): an array needs `like` for its geometry")
        img = like.to_sitk(volume_or_image)
    else:
        img = volume_or_image
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".nii.gz") else path.suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=str(path.parent))
    os.close(fd)
    try:
        sitk.WriteImage(img, tmp, compress)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
