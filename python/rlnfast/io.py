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


def physical_point(volume: "Volume", index_zyx) -> tuple:
    """The physical position (x, y, z) in mm of voxel ``index_zyx`` (z, y, x) of ``volume``:
    origin + direction . (index * spacing), as SimpleITK's TransformIndexToPhysicalPoint."""
    idx = np.asarray(index_zyx, dtype=np.float64)[::-1] * np.asarray(volume.spacing, np.float64)
    d = np.asarray(volume.direction, np.float64).reshape(3, 3)
    return tuple(float(v) for v in np.asarray(volume.origin, np.float64) + d @ idx)


def voxel_text(index_zyx, volume: "Volume | None" = None) -> str:
    """How messages name a voxel: its index in the volume (z, y, x) and, with ``volume``, its physical
    position, e.g. ``z,y,x=(16, 64, 83) (x,y,z=(83.0, 64.0, 32.0) mm)``."""
    idx = tuple(int(i) for i in index_zyx)
    text = f"z,y,x={idx}"
    if volume is not None:
        text += " (x,y,z=(" + ", ".join(f"{v:.6g}" for v in physical_point(volume, idx)) + ") mm)"
    return text


def _describe(x) -> str:
    if isinstance(x, (str, os.PathLike)):
        return str(x)
    return type(x).__name__


def read_volume(source, spacing=None, name: str = "image", *, spacing_required: bool = True) -> Volume:
    """A :class:`Volume` from a file path, a SimpleITK image, a Volume, a NumPy array or a device array
    (CuPy, torch CUDA tensor: copied to the host).

    Arrays are (z, y, x); ``spacing`` is then (x, y, z) in mm as in SimpleITK. An array carries no spacing,
    so ``spacing`` is required (ValueError saying so; ``spacing=(1, 1, 1)`` for 1 mm voxels) unless
    ``spacing_required=False`` (callers whose result does not depend on it: 1 mm then).
    Only 3-D images: 2-D images (one slice) and 4-D and higher inputs are refused by name.
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
        _check_3d(arr, name)
        if spacing is None:
            if spacing_required:
                raise ValueError(f"{name}: an array of shape {arr.shape} carries no voxel spacing, "
                                 "and DEM and fractal features depend on it: pass spacing=(x, y, z) in mm "
                                 "(spacing=(1, 1, 1) for 1 mm voxels), or give a file / SimpleITK image")
            spacing = (1.0, 1.0, 1.0)
        sp = tuple(float(s) for s in spacing)
        if len(sp) != 3:
            raise ValueError(f"{name}: spacing {sp} must have 3 values (x, y, z) in mm")
        vol = Volume(arr, sp, name=name)
    arr = vol.array
    _check_3d(arr, name)
    if any(not np.isfinite(s) or s <= 0 for s in vol.spacing):
        raise ValueError(f"{name}: spacing {tuple(vol.spacing)} must be finite and > 0")
    if arr is not vol.array or not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    vol = Volume(arr, tuple(vol.spacing), tuple(vol.origin), tuple(vol.direction), vol.name if vol.name != "image" else name)
    return vol


def _check_3d(arr, name) -> None:
    if arr.ndim == 2:
        raise ValueError(f"{name}: a 2-D image of shape {arr.shape} is not supported: rlnfast computes 3-D features "
                         "(DEM filters and fractal box counting in 3-D). A single slice must be given as a 3-D "
                         "image of one slice (array[None], shape (1, y, x), with its slice thickness in spacing)")
    if arr.ndim != 3:
        raise ValueError(f"{name}: expected a 3-D image (z, y, x), got {arr.ndim}-D with shape {arr.shape}")


def _from_sitk(img, what) -> Volume:
    import SimpleITK as sitk

    if img.GetDimension() == 2:
        raise ValueError(f"{what}: a 2-D image of size {img.GetSize()} is not supported: rlnfast computes 3-D "
                         "features (DEM filters and fractal box counting in 3-D); give a 3-D image (a single slice "
                         "as a volume of one slice, with its slice thickness as z spacing)")
    if img.GetDimension() != 3:
        raise ValueError(f"{what}: expected a 3-D image, got a {img.GetDimension()}-D image of size {img.GetSize()}")
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError(f"{what}: expected one value per voxel, got {img.GetNumberOfComponentsPerPixel()} components")
    arr = sitk.GetArrayFromImage(img)
    sp, org, dr = img.GetSpacing(), img.GetOrigin(), img.GetDirection()
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


def current_umask() -> int:
    """The process's umask (read without changing it where /proc tells it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def as_if_opened(tmp) -> None:
    """Give a temporary file (``tempfile.mkstemp`` makes them 0600) the mode ``open()`` would have given a new
    file: 0666 less the umask, so colleagues can read the outputs that an atomic rename puts in place."""
    os.chmod(tmp, 0o666 & ~current_umask())


def write_volume(volume_or_image, path, like: Volume | None = None, compress: bool = True) -> Path:
    """Write a Volume, SimpleITK image or array (with ``like``'s geometry) atomically (temp file, rename), with
    the mode a new file gets (0666 less the umask)."""
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
        as_if_opened(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
