"""A NIfTI-1 reader that gives what ``SimpleITK.ReadImage`` gives, at the speed of the inflater.

:func:`read_nifti` parses the 348-byte header itself and inflates a ``.nii.gz`` with libdeflate (the ``deflate``
package, called through its C entry points so the stream inflates straight into the array's buffer) or ISA-L
(the ``isal`` package, streamed into the buffer in small chunks); a ``.nii`` is read into its buffer with
``readinto``. ``pip install "rlnfast[fastio]"`` installs both.

The result reproduces ITK 5.4's ``NiftiImageIO`` on top of niftilib, which SimpleITK uses:

- the array: the on-disk type, byte-swapped to native order; NaN/Inf in float data replaced by 0 (niftilib does
  this on load); ``scl_slope``/``scl_inter`` applied as ITK applies them (a slope of 0 counts as 1; integer data
  becomes float32 first, then ``float(double(x) * slope + inter)``; float and double data in place); (z, y, x);
- the geometry: spacing ``pixdim[1:4]`` times the ``xyz_units`` scale (m, mm, um); the qform matrix rebuilt
  as niftilib does (double and long double arithmetic, stored in float32); ITK's choice between sform and qform
  (sform when it is orthonormal and the qform code is 0 or the sform code is SCANNER_ANAT); origin and
  direction in ITK's LPS convention (first two rows negated, columns normalised in double).

Whatever the reader cannot prove equal (NIfTI-2, two-file NIfTI, 2-D or several volumes, intent codes other
than none/label, complex/RGB types, a skewed or nearly singular sform, qform and sform codes that send ITK into
its SVD comparison with matrices that differ slightly, non-finite or non-positive pixdim, unusual units) raises
:class:`Fallback` with the reason; :func:`rlnfast.io.read_volume` then reads the file with SimpleITK and records
``'SimpleITK (<reason>)'`` as the volume's ``reader``. A truncated or corrupt file raises :class:`CorruptNifti`
(a ``ValueError``) naming the file and the decompressed size against the size the header announces.
"""
from __future__ import annotations

import ctypes
import math
import os
import struct
import threading
import zlib

import numpy as np

READER_NAME = "rlnfast-nifti"

# NIfTI datatype code -> numpy type (the scalar types ITK maps to a scalar pixel)
_DTYPES = {2: np.uint8, 4: np.int16, 8: np.int32, 16: np.float32, 64: np.float64, 256: np.int8,
           512: np.uint16, 768: np.uint32, 1024: np.int64, 1280: np.uint64}
_XYZ_SCALE = {0: 1.0, 1: 1e3, 2: 1.0, 3: 1e-3}  # NIFTI_UNITS_UNKNOWN, METER, MM, MICRON (ITK's spacingscale)
_SCALAR_INTENTS = (0, 1002)  # NIFTI_INTENT_NONE, NIFTI_INTENT_LABEL
_EPS = np.finfo(np.float64).eps
_GZIP_MAGIC = b"\x1f\x8b"


class Fallback(Exception):
    """The file is valid but the fast reader cannot prove it would equal SimpleITK: read it with SimpleITK."""


class CorruptNifti(ValueError):
    """A truncated or corrupt NIfTI file (the message names the file and the sizes)."""


# ----------------------------------------------------------------------------------------------- inflaters

class _LibDeflate:
    """libdeflate's gzip decompressor through the C symbols of the ``deflate`` package's extension module."""

    def __init__(self):
        from deflate import _deflate  # noqa: F401  (ImportError: not installed)

        lib = ctypes.CDLL(_deflate.__file__)
        self.alloc = lib.libdeflate_alloc_decompressor
        self.alloc.restype = ctypes.c_void_p
        self.alloc.argtypes = []
        self.free = lib.libdeflate_free_decompressor
        self.free.restype = None
        self.free.argtypes = [ctypes.c_void_p]
        self.gunzip = lib.libdeflate_gzip_decompress_ex
        self.gunzip.restype = ctypes.c_int
        self.gunzip.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p,
                                ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_size_t)]

    def inflate_into(self, raw: bytes, out: np.ndarray) -> tuple[int, str]:
        """Inflate every gzip member of ``raw`` into ``out`` (uint8); (bytes written, problem or '')."""
        d = self.alloc()  # one per call (a few kB, microseconds): safe in the prefetch threads
        if not d:
            raise MemoryError("libdeflate_alloc_decompressor failed")
        try:
            return self._inflate(d, raw, out)
        finally:
            self.free(d)

    def _inflate(self, d, raw: bytes, out: np.ndarray) -> tuple[int, str]:
        src = ctypes.cast(ctypes.c_char_p(raw), ctypes.c_void_p).value
        dst = out.ctypes.data
        n_in, n_out = len(raw), out.nbytes
        pos_in = pos_out = 0
        used_in, used_out = ctypes.c_size_t(0), ctypes.c_size_t(0)
        while pos_out < n_out:
            if n_in - pos_in < 18 or raw[pos_in:pos_in + 2] != _GZIP_MAGIC:
                return pos_out, "stream ends early"
            rc = self.gunzip(d, src + pos_in, n_in - pos_in, dst + pos_out, n_out - pos_out,
                             ctypes.byref(used_in), ctypes.byref(used_out))
            if rc == 3:  # LIBDEFLATE_INSUFFICIENT_SPACE: more data than the header announces
                return n_out, "more data than the header announces"
            if rc != 0:
                return pos_out, "corrupt or truncated gzip stream"
            pos_in += used_in.value
            pos_out += used_out.value
        return pos_out, ""


class _Isal:
    """ISA-L's inflate (``isal`` package), streamed into the output buffer in 4 MB chunks."""

    def __init__(self):
        from isal import igzip_lib

        self.lib = igzip_lib

    def inflate_into(self, raw: bytes, out: np.ndarray) -> tuple[int, str]:
        lib, pos, n = self.lib, 0, out.nbytes
        data = raw
        try:
            while pos < n:
                if len(data) < 18 or data[:2] != _GZIP_MAGIC:
                    return pos, "stream ends early"
                d = lib.IgzipDecompressor(flag=lib.DECOMP_GZIP)
                chunk = d.decompress(data, min(1 << 22, n - pos))
                while True:
                    out[pos:pos + len(chunk)] = np.frombuffer(chunk, np.uint8)
                    pos += len(chunk)
                    if d.eof or pos >= n:
                        break
                    if d.needs_input:
                        return pos, "corrupt or truncated gzip stream"
                    chunk = d.decompress(b"", min(1 << 22, n - pos))
                if pos >= n and not d.eof:
                    return pos, "more data than the header announces"
                data = d.unused_data
        except (lib.IsalError, OSError, ValueError, EOFError):
            return pos, "corrupt or truncated gzip stream"
        return pos, ""


_INFLATER = None
_INFLATER_LOCK = threading.Lock()


def inflater():
    """The inflater in use: libdeflate (``deflate`` package) if importable, else ISA-L (``isal``), else None."""
    global _INFLATER
    if _INFLATER is None:
        with _INFLATER_LOCK:
            if _INFLATER is None:
                choice = os.environ.get("RLNFAST_INFLATE", "").lower()
                found = False
                for name, cls in (("libdeflate", _LibDeflate), ("isal", _Isal)):
                    if choice and choice != name:
                        continue
                    try:
                        _INFLATER = (name, cls())
                        found = True
                        break
                    except (ImportError, OSError, AttributeError):
                        continue
                if not found:
                    _INFLATER = (None, None)
    return _INFLATER[1]


def inflater_name() -> str | None:
    inflater()
    return _INFLATER[0]


def _count_inflatable(raw: bytes) -> int:
    """How many bytes ``raw`` (gzip, possibly several members) inflates to before it ends or breaks."""
    total, data = 0, raw
    while len(data) >= 18 and data[:2] == _GZIP_MAGIC:
        d = zlib.decompressobj(31)
        try:
            while data:
                part = d.decompress(data, 1 << 24)
                total += len(part)
                data = d.unconsumed_tail
                if d.eof:
                    break
            total += len(d.flush())
        except zlib.error:
            return total
        if not d.eof:
            return total
        data = d.unused_data
    return total


# -------------------------------------------------------------------------------------------------- header

_HDR_FORMAT = "i10s18sihcc8h3f4h8f3fhcc4f2i80s24s2h6f4f4f4f16s4s"


def _parse_header(b: bytes, what: str) -> dict:
    if len(b) < 348:
        raise CorruptNifti(f"{what}: {len(b)} bytes, shorter than a NIfTI-1 header (348)")
    (size_le,) = struct.unpack_from("<i", b, 0)
    (size_be,) = struct.unpack_from(">i", b, 0)
    if size_le == 348:
        order = "<"
    elif size_be == 348:
        order = ">"
    else:
        raise Fallback("not a NIfTI-1 header (NIfTI-2 or other)")
    f = struct.unpack_from(order + _HDR_FORMAT, b, 0)
    keys = ("sizeof_hdr", "data_type", "db_name", "extents", "session_error", "regular", "dim_info",
            "dim", "intent_p1", "intent_p2", "intent_p3", "intent_code", "datatype", "bitpix", "slice_start",
            "pixdim", "vox_offset", "scl_slope", "scl_inter", "slice_end", "slice_code", "xyzt_units",
            "cal_max", "cal_min", "slice_duration", "toffset", "glmax", "glmin", "descrip", "aux_file",
            "qform_code", "sform_code", "quatern_b", "quatern_c", "quatern_d", "qoffset_x", "qoffset_y",
            "qoffset_z", "srow_x", "srow_y", "srow_z", "intent_name", "magic")
    h, i = {}, 0
    for k in keys:
        n = 8 if k in ("dim", "pixdim") else 4 if k.startswith("srow") else 1
        h[k] = f[i] if n == 1 else tuple(f[i:i + n])
        i += n
    h["order"] = order
    return h


def _f32(x) -> np.float32:
    return np.float32(x)


def _quatern_to_mat44(qb, qc, qd, qx, qy, qz, dx, dy, dz, qfac) -> np.ndarray:
    """niftilib's nifti_quatern_to_mat44 (double and long double arithmetic, float32 result)."""
    LD = np.longdouble
    b, c, d = float(qb), float(qc), float(qd)
    s = b * b + c * c + d * d
    a = float(LD(1) - LD(s))
    if LD(a) < LD("1e-7"):
        a = float(LD(1) / LD(math.sqrt(s)))
        b *= a
        c *= a
        d *= a
        a = 0.0
    else:
        a = math.sqrt(a)
    xd = float(dx) if dx > 0 else 1.0
    yd = float(dy) if dy > 0 else 1.0
    zd = float(dz) if dz > 0 else 1.0
    if qfac < 0:
        zd = -zd
    two = LD(2)
    R = np.zeros((4, 4), np.float32)
    R[0, 0] = _f32((a * a + b * b - c * c - d * d) * xd)
    R[0, 1] = _f32(two * LD(b * c - a * d) * LD(yd))
    R[0, 2] = _f32(two * LD(b * d + a * c) * LD(zd))
    R[1, 0] = _f32(two * LD(b * c + a * d) * LD(xd))
    R[1, 1] = _f32((a * a + c * c - b * b - d * d) * yd)
    R[1, 2] = _f32(two * LD(c * d - a * b) * LD(zd))
    R[2, 0] = _f32(two * LD(b * d - a * c) * LD(xd))
    R[2, 1] = _f32(two * LD(c * d + a * b) * LD(yd))
    R[2, 2] = _f32((a * a + d * d - c * c - b * b) * zd)
    R[0, 3], R[1, 3], R[2, 3], R[3, 3] = qx, qy, qz, 1.0
    return R


def _choose_matrix(h: dict) -> np.ndarray | None:
    """The float32 4x4 matrix ITK takes origin and direction from (None: both codes unknown), following
    NiftiImageIO::SetImageIOOrientationFromNIfTI; raises Fallback where its outcome is not certain here."""
    q, s = h["qform_code"], h["sform_code"]
    if not (0 <= q <= 4 and 0 <= s <= 4):
        raise Fallback(f"qform_code {q} / sform_code {s} outside 0-4")
    if q == 0 and s == 0:
        return None
    dx, dy, dz = (np.float32(v) for v in h["pixdim"][1:4])
    qto = None
    if q > 0:
        qv = (h["quatern_b"], h["quatern_c"], h["quatern_d"], h["qoffset_x"], h["qoffset_y"], h["qoffset_z"])
        if not all(math.isfinite(v) for v in qv):
            raise Fallback("non-finite quaternion parameters")
        qfac = -1.0 if h["pixdim"][0] < 0 else 1.0
        qto = _quatern_to_mat44(*qv, dx, dy, dz, qfac)
    if s == 0:
        return qto
    sto = np.zeros((4, 4), np.float32)
    sto[0], sto[1], sto[2] = h["srow_x"], h["srow_y"], h["srow_z"]
    sto[3, 3] = 1.0
    if not np.all(np.isfinite(sto)):
        raise Fallback("non-finite sform")
    # sform_decomposable_without_skew: invertible (IsAffine) and orthonormal columns (to 1e-4)
    sv = np.linalg.svd(sto.astype(np.float64), compute_uv=False)
    if not sv[-1] > 1e-10 * sv[0]:
        raise Fallback("sform nearly singular")
    rot = sto[:3, :3].astype(np.float64)
    norms = np.sqrt((rot * rot).sum(axis=0))
    if np.any(norms == 0):
        raise Fallback("sform has a zero column")
    rot = rot / norms
    if np.max(np.abs(rot @ rot.T - np.eye(3))) >= 5e-5:
        raise Fallback("sform not orthonormal (ITK's permissive/strict sform handling)")
    if q == 0 or s == 1:  # sform with an unknown qform, or an orthonormal SCANNER_ANAT sform: ITK takes the sform
        return sto
    # both codes set, sform not SCANNER_ANAT: ITK compares the two by SVD (spacing, rotation, offset 1e-4)
    off = np.max(np.abs(sto[:3, 3].astype(np.float64) - qto[:3, 3].astype(np.float64)))
    ws = np.linalg.svd(sto[:3, :3].astype(np.float64), compute_uv=False)
    wq = np.linalg.svd(qto[:3, :3].astype(np.float64), compute_uv=False)
    if off > 2e-4 or np.max(np.abs(ws - wq)) > 2e-4:
        return qto  # certainly not similar: ITK keeps the qform
    if np.array_equal(sto[:3, :3], qto[:3, :3]) and off < 5e-5:
        return sto  # identical rotation/scale, offsets within tolerance: ITK takes the sform
    raise Fallback(f"qform_code {q} and sform_code {s} with slightly different matrices (ITK's SVD comparison)")


def _direction_origin(m: np.ndarray | None, scale: float) -> tuple[tuple, tuple]:
    if m is None:
        return (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0), (0.0, 0.0, 0.0)
    origin = (-float(m[0, 3]) * scale, -float(m[1, 3]) * scale, float(m[2, 3]) * scale)
    cols = []
    for j in range(3):
        v = [-float(m[0, j]), -float(m[1, j]), float(m[2, j])]
        ss = 0.0
        for x in v:
            ss += x * x
        if ss != 0.0:
            ss = math.sqrt(ss)
            v = [x / ss for x in v]
        cols.append(v)
    direction = tuple(cols[c][r] for r in range(3) for c in range(3))
    return direction, origin


def _layout(h: dict) -> tuple:
    """(shape zyx, numpy dtype on disk, data offset, spacing, origin, direction) or Fallback."""
    if h["magic"] != b"n+1\x00":
        raise Fallback("two-file NIfTI or Analyze header" if h["magic"] == b"ni1\x00" else "no NIfTI-1 magic")
    dim = h["dim"]
    if not 3 <= dim[0] <= 7:
        raise Fallback(f"dim[0] = {dim[0]} (not a 3-D volume)")
    if min(dim[1:4]) < 1:
        raise Fallback(f"dimensions {dim[1:4]}")
    if any(v != 1 for v in dim[4:dim[0] + 1]):
        raise Fallback(f"dim[4..] = {dim[4:dim[0] + 1]} (more than one volume)")
    if h["intent_code"] not in _SCALAR_INTENTS:
        raise Fallback(f"intent_code {h['intent_code']}")
    dt = _DTYPES.get(h["datatype"])
    if dt is None:
        raise Fallback(f"datatype {h['datatype']}")
    pix = h["pixdim"][1:4]
    if not all(math.isfinite(v) and v > 0 for v in pix):
        raise Fallback(f"pixdim {pix}")
    units = h["xyzt_units"][0] & 0x07
    if units not in _XYZ_SCALE:
        raise Fallback(f"xyz_units {units}")
    vox = h["vox_offset"]
    if not (math.isfinite(vox) and vox >= 352 and vox == int(vox)):
        raise Fallback(f"vox_offset {vox}")
    scale = _XYZ_SCALE[units]
    spacing = tuple(float(np.float32(v)) * scale for v in pix)
    direction, origin = _direction_origin(_choose_matrix(h), scale)
    dtype = np.dtype(dt).newbyteorder(h["order"])
    return (dim[3], dim[2], dim[1]), dtype, int(vox), spacing, origin, direction


# ---------------------------------------------------------------------------------------------------- data

def _scaling(h: dict) -> tuple[float, float] | None:
    """(slope, intercept) when ITK rescales, else None (NiftiImageIO::MustRescale)."""
    slope = float(h["scl_slope"]) if math.isfinite(h["scl_slope"]) else 0.0
    inter = float(h["scl_inter"]) if math.isfinite(h["scl_inter"]) else 0.0
    if abs(slope) < _EPS:
        slope = 1.0
    if abs(slope) > _EPS and (abs(slope - 1.0) > _EPS or abs(inter) > _EPS):
        return slope, inter
    return None


_CHUNK = 1 << 20  # elements per pass of the in-place fix-ups (cache-sized)


def _finish(raw: np.ndarray, h: dict, shape: tuple) -> np.ndarray:
    """Native byte order, niftilib's non-finite fix, ITK's rescale; returns the (z, y, x) array."""
    if not raw.dtype.isnative:
        raw = raw.byteswap(inplace=True).view(raw.dtype.newbyteorder("="))
    flat = raw.reshape(-1)
    if raw.dtype.kind == "f":
        for i in range(0, flat.size, _CHUNK):
            part = flat[i:i + _CHUNK]
            bad = ~np.isfinite(part)
            if bad.any():
                part[bad] = 0
    sc = _scaling(h)
    if sc is not None:
        slope, inter = sc
        out = flat if raw.dtype.kind == "f" else np.empty(flat.size, np.float32)
        tmp = np.empty(min(_CHUNK, flat.size), np.float64)
        for i in range(0, flat.size, _CHUNK):
            src = flat[i:i + _CHUNK]
            t = tmp[:src.size]
            if src.dtype.kind == "f":
                t[...] = src
            else:
                t[...] = src.astype(np.float32)  # CastCopy to float first, as ITK does
            t *= slope
            t += inter
            out[i:i + src.size] = t
        flat = out
    return flat.reshape(shape)


def read_header(path) -> dict:
    """The parsed NIfTI-1 header of ``path`` (.nii or .nii.gz), in native Python types."""
    path = os.fspath(path)
    with open(path, "rb") as fh:
        start = fh.read(4096)
    if start[:2] == _GZIP_MAGIC:
        d = zlib.decompressobj(31)
        with open(path, "rb") as fh:
            b = b""
            while len(b) < 348:
                chunk = fh.read(65536)
                if not chunk:
                    break
                b += d.decompress(chunk, 348 - len(b))
                while len(b) < 348 and d.unconsumed_tail:
                    b += d.decompress(d.unconsumed_tail, 348 - len(b))
    else:
        b = start
    return _parse_header(b, repr(path))


def read_nifti(path):
    """``(array (z, y, x), spacing, origin, direction)`` of a .nii/.nii.gz file, equal to SimpleITK's.

    Raises :class:`Fallback` (read it with SimpleITK), :class:`CorruptNifti` (truncated or corrupt) or OSError.
    """
    path = os.fspath(path)
    what = repr(path)
    with open(path, "rb") as fh:
        head = fh.read(2)
        gz = head == _GZIP_MAGIC
        if not gz:
            fh.seek(0)
            hb = fh.read(348)
            h = _parse_header(hb, what)
            shape, dtype, offset, spacing, origin, direction = _layout(h)
            nbytes = int(np.prod(shape)) * dtype.itemsize
            buf = np.empty(nbytes, np.uint8)
            fh.seek(offset)
            got = fh.readinto(memoryview(buf))
            if got != nbytes:
                raise CorruptNifti(f"{what} is truncated: {offset + got} bytes of image data and header, the "
                                   f"header announces {offset + nbytes} ({'x'.join(map(str, shape[::-1]))} "
                                   f"{dtype.name} after a {offset}-byte header)")
            return _finish(buf.view(dtype), h, shape), spacing, origin, direction
        fh.seek(0)
        raw = fh.read()
    inf = inflater()
    if inf is None:
        raise Fallback("no fast inflater (pip install deflate or isal)")
    d = zlib.decompressobj(31)
    try:
        hb = d.decompress(raw[:65536], 348)
    except zlib.error as exc:
        raise CorruptNifti(f"{what}: corrupt gzip stream ({exc})") from None
    h = _parse_header(hb, what)
    shape, dtype, offset, spacing, origin, direction = _layout(h)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    buf = np.empty(offset + nbytes, np.uint8)  # the header's bytes land in front of the data: no copy after
    got, problem = inf.inflate_into(raw, buf)
    if problem == "more data than the header announces":
        raise Fallback("the stream holds more data than the header announces")
    if problem or got != buf.size:
        n = _count_inflatable(raw) if problem else got
        raise CorruptNifti(f"{what} is truncated or corrupt ({problem or 'stream ends early'}): it inflates to "
                           f"{n} bytes, the header announces {offset + nbytes} "
                           f"({'x'.join(map(str, shape[::-1]))} {dtype.name} after a {offset}-byte header)")
    return _finish(buf[offset:].view(dtype), h, shape), spacing, origin, direction
