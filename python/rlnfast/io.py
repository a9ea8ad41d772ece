"""Reading and writing volumes: the only module that touches image files (with :mod:`rlnfast.nifti` for
NIfTI-1, SimpleITK for everything else: NRRD, MetaImage, DICOM, and the NIfTI files the fast reader declines).

A :class:`Volume` is a NumPy array in (z, y, x) order plus SimpleITK geometry (spacing, origin and
direction in (x, y, z) order), so everything below this module works on arrays. ``Volume.reader`` says which
reader produced it: ``'rlnfast-nifti'``, ``'SimpleITK'`` or ``'SimpleITK (<why the fast reader declined>)'``
(empty for arrays and images passed in).

``RLNFAST_NIFTI_READER=sitk`` reads NIfTI files with SimpleITK too.
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
    reader: str = ""

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


# ---- truncated files ---------------------------------------------------------------------------------------
# SimpleITK reads a truncated .nii.gz (and a short gzip NRRD) as zeros without a word. Before trusting it,
# the file's data size (decompressed, to the end of the gzip stream) is compared with what its header says.

def _nifti_expected(head: bytes) -> int | None:
    """Bytes a NIfTI-1/2 file holds according to its header (vox_offset + voxels * bitpix / 8), or None."""
    import struct

    if len(head) < 348:
        return None
    for end in "<>":
        (sz,) = struct.unpack(end + "i", head[:4])
        if sz == 348:
            dim = struct.unpack(end + "8h", head[40:56])
            (bitpix,) = struct.unpack(end + "h", head[72:74])
            (vox_offset,) = struct.unpack(end + "f", head[108:112])
            break
        if sz == 540 and len(head) >= 540:
            (bitpix,) = struct.unpack(end + "h", head[14:16])
            dim = struct.unpack(end + "8q", head[16:80])
            (vox_offset,) = struct.unpack(end + "q", head[168:176])
            break
    else:
        return None
    nd = int(dim[0])
    if not 1 <= nd <= 7 or bitpix <= 0 or not np.isfinite(vox_offset) or vox_offset < 0:
        return None
    nvox = 1
    for d in dim[1:nd + 1]:
        nvox *= max(int(d), 0)
    return int(vox_offset) + nvox * int(bitpix) // 8


_NRRD_TYPES = {"uchar": 1, "unsigned char": 1, "uint8": 1, "uint8_t": 1, "signed char": 1, "int8": 1,
               "int8_t": 1, "char": 1, "short": 2, "short int": 2, "signed short": 2, "signed short int": 2,
               "int16": 2, "int16_t": 2, "ushort": 2, "unsigned short": 2, "unsigned short int": 2,
               "uint16": 2, "uint16_t": 2, "int": 4, "signed int": 4, "int32": 4, "int32_t": 4, "uint": 4,
               "unsigned int": 4, "uint32": 4, "uint32_t": 4, "longlong": 8, "long long": 8,
               "long long int": 8, "signed long long": 8, "signed long long int": 8, "int64": 8, "int64_t": 8,
               "ulonglong": 8, "unsigned long long": 8, "unsigned long long int": 8, "uint64": 8,
               "uint64_t": 8, "float": 4, "double": 8}


def _stream_size(f, chunk=1 << 22) -> int:
    n = 0
    while True:
        b = f.read(chunk)
        if not b:
            return n
        n += len(b)


def check_complete(path, name: str = "image") -> None:
    """ValueError naming the file when a .nii/.nii.gz holds fewer bytes than its header promises or its gzip
    stream ends early or is corrupt, or a gzip-encoded .nrrd's data decompresses short. Other formats pass."""
    import gzip
    import zlib

    path = Path(path)
    lower = path.name.lower()
    what = f"{name} file {str(path)!r}"
    try:
        if lower.endswith(".nii.gz") or lower.endswith(".nii"):
            opener = gzip.open if lower.endswith(".gz") else open
            with opener(path, "rb") as f:
                head = f.read(540)
                expected = _nifti_expected(head)
                got = len(head) + _stream_size(f)
            if expected is not None and got < expected:
                raise ValueError(f"{what} is truncated: {got} bytes of data where its header needs {expected}")
        elif lower.endswith(".nrrd"):
            with open(path, "rb") as f:
                fields, line = {}, f.readline()
                if not line.startswith(b"NRRD"):
                    return
                while True:
                    line = f.readline()
                    if not line or not line.strip():
                        break
                    if b":" in line and not line.startswith(b"#"):
                        k, v = line.decode("latin-1").split(":", 1)
                        fields[k.strip().lower()] = v.strip().lstrip("=").strip()
                if fields.get("encoding", "raw") not in ("gzip", "gz") or "data file" in fields \
                        or "datafile" in fields:
                    return
                size = _NRRD_TYPES.get(fields.get("type", "").lower())
                sizes = [int(v) for v in fields.get("sizes", "").split()]
                if size is None or not sizes:
                    return
                expected = size * int(np.prod(sizes, dtype=np.int64))
                got = _stream_size(gzip.GzipFile(fileobj=f, mode="rb"))
            if got < expected:
                raise ValueError(f"{what} is truncated: its gzip data holds {got} bytes where its header "
                                 f"needs {expected}")
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise ValueError(f"{what} is truncated or corrupt (gzip: {exc})") from None


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
        vol, why = None, None
        if path.is_file() and path.name.lower().endswith((".nii", ".nii.gz")):
            vol, why = _read_nifti_fast(path, name)
        if vol is None:
            vol = _read_sitk(path, name)
            vol.reader = "SimpleITK" if why is None else f"SimpleITK ({why})"
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
        vol = Volume(arr, parse_spacing(spacing, name), name=name)
    arr = vol.array
    _check_3d(arr, vol.name if vol.name != "image" else name)
    arr = kernel_array(arr, vol.name if vol.name != "image" else name)
    if any(not np.isfinite(s) or s <= 0 for s in vol.spacing):
        raise ValueError(f"{name}: spacing {tuple(vol.spacing)} must be finite and > 0")
    if arr is not vol.array or not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    vol = Volume(arr, tuple(vol.spacing), tuple(vol.origin), tuple(vol.direction),
                 vol.name if vol.name != "image" else name, reader=vol.reader)
    return vol


# One dtype rule for every op and backend (images, label maps, ragged values):
#   bool -> uint8; float16 -> float32 (exact); uint64 -> int64 when every value fits (exact), else refused
#   by name; (u)int8..64, float32, float64 as they are; anything else (complex, object, float128, ...) refused.
#   Values handed to the float64 ops (first-order, fractal grey levels) must be exact in float64: integers
#   beyond +-2^53 are refused by name.
DTYPE_RULE = ("bool as uint8, float16 as float32 (exact), uint64 as int64 when its values fit (exact), "
              "(u)int8-64, float32 and float64 as they are")
_F64_EXACT = 2 ** 53


def kernel_array(arr, name: str = "image", xp=np):
    """``arr`` in a dtype every op and backend takes, by the one rule (DTYPE_RULE); ``xp``: numpy or cupy."""
    dt = np.dtype(arr.dtype)
    if dt == np.bool_:
        return arr.view(xp.uint8)
    if dt == np.float16:
        return arr.astype(xp.float32)
    if dt == np.uint64:
        top = int(arr.max()) if arr.size else 0
        if top > np.iinfo(np.int64).max:
            raise ValueError(f"{name}: uint64 value {top} does not fit int64, so it cannot be used exactly "
                             f"(supported: {DTYPE_RULE})")
        return arr.astype(xp.int64)
    if dt.kind in "iu" or dt in (np.float32, np.float64):
        return arr
    raise ValueError(f"{name}: dtype {dt} is not supported (supported: {DTYPE_RULE})")


def float64_values(values, name: str = "values"):
    """Ragged values as float64 by the same rule: float16/float32 exactly, integers when |v| <= 2^53 (exactly
    representable), uint64/int64 beyond that refused by name; other dtypes refused."""
    v = np.asarray(values)
    v = kernel_array(v, name)
    if v.dtype.kind in "iu" and v.size and v.dtype.itemsize >= 8:
        big = int(np.max(np.abs(v.astype(np.float64))))
        if big > _F64_EXACT:
            raise ValueError(f"{name}: integer value of magnitude {big} is beyond 2^53, where float64 (in which "
                             "features are computed) cannot hold every integer exactly; rescale or clip the image")
    return np.ascontiguousarray(v, dtype=np.float64)


def parse_spacing(spacing, name: str = "image") -> tuple:
    """Three spacings (x, y, z) in mm as floats, or a ValueError naming the argument and what is expected."""
    want = "three numbers (x, y, z) in mm, e.g. spacing=(0.7, 0.7, 1.5)"
    if isinstance(spacing, (str, bytes)):
        raise ValueError(f"{name}: spacing={spacing!r}: expected {want}, got a string")
    try:
        sp = tuple(float(s) for s in spacing)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: spacing={spacing!r}: expected {want}") from None
    if len(sp) != 3:
        raise ValueError(f"{name}: spacing {sp} must have 3 values (x, y, z) in mm")
    if any(not np.isfinite(s) or s <= 0 for s in sp):
        raise ValueError(f"{name}: spacing {sp} must be finite and > 0 (mm)")
    return sp


def _check_3d(arr, name) -> None:
    if arr.ndim == 2:
        raise ValueError(f"{name}: a 2-D image of shape {arr.shape} is not supported: rlnfast computes 3-D features "
                         "(DEM filters and fractal box counting in 3-D). A single slice must be given as a 3-D "
                         "image of one slice (array[None], shape (1, y, x), with its slice thickness in spacing)")
    if arr.ndim != 3:
        raise ValueError(f"{name}: expected a 3-D image (z, y, x), got {arr.ndim}-D with shape {arr.shape}")


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


def _read_sitk(path: Path, name: str) -> Volume:
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
            check_complete(path, name)
            img = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise ValueError(f"{name} file {str(path)!r} could not be read: {str(exc).strip().splitlines()[-1]}") from exc
    return _from_sitk(img, f"{name} {str(path)!r}")


def _read_nifti_fast(path: Path, name: str):
    """(Volume, None) from rlnfast's NIfTI reader, or (None, why SimpleITK must read it)."""
    if os.environ.get("RLNFAST_NIFTI_READER", "").lower() in ("sitk", "simpleitk"):
        return None, "RLNFAST_NIFTI_READER=sitk"
    from . import nifti

    try:
        arr, sp, org, dr = nifti.read_nifti(path)
    except nifti.Fallback as exc:
        return None, str(exc)
    except nifti.CorruptNifti as exc:
        raise ValueError(f"{name} file {exc}") from None
    return Volume(arr, sp, org, dr, f"{name} {str(path)!r}", reader=nifti.READER_NAME), None


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
    arr = _array_view(img)
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
