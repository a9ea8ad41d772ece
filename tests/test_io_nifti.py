"""rlnfast's NIfTI reader against SimpleITK.ReadImage: the same array (dtype, values, (z, y, x) order) and the
same geometry (spacing, origin, direction bit for bit), on every NIfTI file of the shared data and on files
written by SimpleITK and nibabel with every header variant the reader claims (qform only, sform only, both
disagreeing, scaled, 4-D with one volume, big-endian, units, NaN in float data), and SimpleITK's own result
with the reason where it falls back. Truncated and corrupt files are errors naming the file."""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

sitk = pytest.importorskip("SimpleITK")
nib = pytest.importorskip("nibabel")

from rlnfast import io as rio  # noqa: E402
from rlnfast import nifti  # noqa: E402

pytestmark = pytest.mark.skipif(nifti.inflater() is None, reason="neither deflate nor isal is installed "
                                "(pip install deflate isal): .nii.gz files would all fall back to SimpleITK")


def _shared_data() -> Path | None:
    env = os.environ.get("RLNFAST_SHARED")
    cands = [Path(env) / "data"] if env else []
    cands.append(Path(__file__).resolve().parents[1].parent / "shared" / "data")
    for c in cands:
        if c.is_dir():
            return c
    return None


def assert_same_as_sitk(path, expect_fast: bool | None = True):
    """read_volume(path) equals SimpleITK.ReadImage(path) exactly; returns the Volume."""
    img = sitk.ReadImage(str(path))
    ref = sitk.GetArrayFromImage(img)
    vol = rio.read_volume(path)
    assert vol.array.dtype == ref.dtype, (path, vol.array.dtype, ref.dtype)
    assert vol.array.shape == ref.shape
    np.testing.assert_array_equal(vol.array, ref)
    assert tuple(vol.spacing) == img.GetSpacing(), (vol.spacing, img.GetSpacing())
    assert tuple(vol.origin) == img.GetOrigin(), (vol.origin, img.GetOrigin())
    assert tuple(vol.direction) == img.GetDirection(), (vol.direction, img.GetDirection())
    if expect_fast is True:
        assert vol.reader == nifti.READER_NAME, vol.reader
    elif expect_fast is False:
        assert vol.reader.startswith("SimpleITK ("), vol.reader
    return vol


def test_every_shared_nifti_file():
    data = _shared_data()
    if data is None:
        if os.environ.get("CI") == "true":
            pytest.fail("shared data folder (RLNFAST_SHARED or ../shared/data) missing under CI=true")
        pytest.skip("shared data folder (RLNFAST_SHARED or ../shared/data) is absent")
    files = sorted(p for p in data.rglob("*") if p.name.endswith((".nii", ".nii.gz")))
    assert files, f"no NIfTI files under {data}"
    for p in files:
        assert_same_as_sitk(p, expect_fast=None)
    fast = sum(rio.read_volume(p).reader == nifti.READER_NAME for p in files)
    assert fast == len(files), f"only {fast} of {len(files)} shared files read without SimpleITK"


# --------------------------------------------------------------------------------------- generated files

def _rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


def _volume(rng, dtype, shape=(7, 6, 5)):
    if np.dtype(dtype).kind == "f":
        return (rng.normal(size=shape) * 300).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -3000), min(info.max, 3000), size=shape, endpoint=True).astype(dtype)


def _nib_save(path, data_xyz, affine, qcode=None, scode=None, endian="<", slope=None, inter=None, units=None,
              qaffine=None):
    hdr = nib.Nifti1Header(endianness=endian)
    img = nib.Nifti1Image(data_xyz, affine, header=hdr)
    if qcode is not None:
        img.set_qform(affine if qaffine is None else qaffine, code=qcode)
    if scode is not None:
        img.set_sform(affine, code=scode)
    if slope is not None:
        img.header.set_slope_inter(slope, inter)
    if units is not None:
        img.header.set_xyzt_units(units)
    img.update_header = lambda: None  # keep the codes exactly as set
    nib.save(img, str(path))
    return path


def _patch(path, endian="<", **fields):
    """Overwrite header fields in place (offsets of the NIfTI-1 header), keeping the file's compression."""
    import struct

    offsets = {"scl_slope": (112, "f"), "scl_inter": (116, "f"), "intent_code": (68, "h"), "vox_offset": (108, "f"),
               "qform_code": (252, "h"), "sform_code": (254, "h"), "datatype": (70, "h")}
    gz = str(path).endswith(".gz")
    raw = bytearray(gzip.decompress(Path(path).read_bytes()) if gz else Path(path).read_bytes())
    for k, v in fields.items():
        off, fmt = offsets[k]
        struct.pack_into(endian + fmt, raw, off, v)
    Path(path).write_bytes(gzip.compress(bytes(raw)) if gz else bytes(raw))
    return path


def _affine(rng, spacing=(0.7, 0.8, 2.5), flip=False):
    a = np.eye(4)
    r = _rotation(rng)
    if flip:
        r[:, 2] *= -1
    a[:3, :3] = r * np.asarray(spacing)
    a[:3, 3] = rng.normal(size=3) * 100
    return a


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("dtype", [np.int16, np.uint8, np.float32, np.uint16, np.int32, np.float64, np.int8])
def test_simpleitk_written(tmp_path, seed, dtype):
    rng = np.random.default_rng(seed)
    img = sitk.GetImageFromArray(_volume(rng, dtype))
    img.SetSpacing(tuple(rng.uniform(0.3, 3.0, 3)))
    img.SetOrigin(tuple(rng.normal(size=3) * 100))
    img.SetDirection(tuple(_rotation(rng).ravel()))
    for name in ("a.nii.gz", "b.nii"):
        p = tmp_path / name
        sitk.WriteImage(img, str(p), name.endswith(".gz"))
        assert_same_as_sitk(p)


@pytest.mark.parametrize("seed", range(16))
@pytest.mark.parametrize("variant", ["nibabel-default", "qform-only", "sform-only-scanner", "sform-only-mni",
                                     "both-agree", "both-scanner-disagree", "both-offsets-disagree"])
def test_nibabel_headers(tmp_path, seed, variant):
    rng = np.random.default_rng(100 + seed)
    aff = _affine(rng, spacing=rng.uniform(0.4, 3.0, 3), flip=seed % 2 == 1)
    data = _volume(rng, np.int16, (5, 6, 7))
    p = tmp_path / f"{variant}.nii.gz"
    if variant == "nibabel-default":
        nib.save(nib.Nifti1Image(data, aff), str(p))
    elif variant == "qform-only":
        _nib_save(p, data, aff, qcode="scanner", scode="unknown")
    elif variant == "sform-only-scanner":
        _nib_save(p, data, aff, qcode="unknown", scode="scanner")
    elif variant == "sform-only-mni":
        _nib_save(p, data, aff, qcode="unknown", scode="mni")
    elif variant == "both-agree":
        _nib_save(p, data, aff, qcode="scanner", scode="scanner")
    elif variant == "both-scanner-disagree":  # ITK takes the orthonormal SCANNER_ANAT sform
        _nib_save(p, data, aff, qcode="aligned", scode="scanner", qaffine=_affine(rng))
    elif variant == "both-offsets-disagree":  # aligned sform, scanner qform 5 mm apart: ITK keeps the qform
        q = aff.copy()
        q[:3, 3] += 5.0
        _nib_save(p, data, aff, qcode="scanner", scode="aligned", qaffine=q)
    assert_same_as_sitk(p)


@pytest.mark.parametrize("dtype,slope,inter", [(np.int16, 2.5, -1024.0), (np.uint8, 1.0, 5.0), (np.float32, 0.5, 0.0),
                                               (np.int16, 0.0, 3.0), (np.float64, 1.7, -2.2), (np.int32, 0.37, 11.0),
                                               (np.uint16, 1.0, -1024.0), (np.int16, 1.0, 0.0)])
@pytest.mark.parametrize("endian", ["<", ">"])
def test_scaled_and_big_endian(tmp_path, dtype, slope, inter, endian):
    rng = np.random.default_rng(7)
    data = _volume(rng, dtype, (6, 5, 4))
    if dtype == np.int32:
        data = rng.integers(-(2 ** 31), 2 ** 31 - 1, size=(6, 5, 4)).astype(np.int32)  # float32 rounding matters
    p = _nib_save(tmp_path / "s.nii.gz", data, _affine(rng), qcode="scanner", scode="scanner", endian=endian)
    _patch(p, endian, scl_slope=slope, scl_inter=inter)
    raw = nifti.read_header(p)
    assert raw["order"] == endian and raw["scl_slope"] == np.float32(slope)
    assert_same_as_sitk(p)


def test_nan_and_inf_become_zero_like_niftilib(tmp_path):
    data = np.arange(60, dtype=np.float32).reshape(5, 4, 3)
    data[0, 0, 0], data[1, 2, 0], data[2, 0, 1] = np.nan, np.inf, -np.inf
    p = _nib_save(tmp_path / "nan.nii.gz", data, np.eye(4), qcode="scanner", scode="scanner")
    vol = assert_same_as_sitk(p)
    assert np.isfinite(vol.array).all()


@pytest.mark.parametrize("units", ["meter", "micron", "mm", "unknown"])
def test_spatial_units(tmp_path, units):
    rng = np.random.default_rng(3)
    p = _nib_save(tmp_path / "u.nii.gz", _volume(rng, np.int16, (4, 5, 6)), _affine(rng), qcode="scanner",
                  scode="scanner", units=units)
    assert_same_as_sitk(p)


def test_4d_with_one_volume(tmp_path):
    rng = np.random.default_rng(5)
    for scode in ("scanner", "unknown"):
        p = _nib_save(tmp_path / f"t{scode}.nii.gz", _volume(rng, np.int16, (5, 6, 7, 1)), _affine(rng),
                      qcode="scanner", scode=scode)
        vol = assert_same_as_sitk(p)
        assert vol.array.shape == (7, 6, 5)


def test_no_qform_no_sform(tmp_path):
    rng = np.random.default_rng(9)
    p = _nib_save(tmp_path / "none.nii", _volume(rng, np.uint8, (4, 5, 6)), np.diag([0.5, 0.6, 2.0, 1.0]),
                  qcode="unknown", scode="unknown")
    assert_same_as_sitk(p)


def test_nnunet_style_files(tmp_path):
    """nnU-Net writes predictions with SimpleITK (SimpleITKIO: the CT's geometry, uint8) or nibabel (NibabelIO)."""
    rng = np.random.default_rng(11)
    ct = sitk.GetImageFromArray(_volume(rng, np.int16, (9, 8, 7)))
    ct.SetSpacing((0.7, 0.7, 2.5))
    ct.SetOrigin((-180.0, -200.5, 33.25))
    ct.SetDirection((1, 0, 0, 0, -1, 0, 0, 0, 1))
    seg = sitk.GetImageFromArray((sitk.GetArrayFromImage(ct) > 0).astype(np.uint8))
    seg.CopyInformation(ct)
    sitk.WriteImage(seg, str(tmp_path / "case_0000.nii.gz"), True)
    assert_same_as_sitk(tmp_path / "case_0000.nii.gz")
    aff = _affine(rng)
    nib.save(nib.Nifti1Image(_volume(rng, np.uint8, (7, 8, 9)), aff), str(tmp_path / "nib.nii.gz"))
    assert_same_as_sitk(tmp_path / "nib.nii.gz")


# ------------------------------------------------------------------------------------------------ fallbacks

def test_fallbacks_say_why_and_equal_simpleitk(tmp_path):
    rng = np.random.default_rng(13)
    aff = _affine(rng)
    cases = {}
    # both codes set, sform ALIGNED, qform a slightly different rotation: ITK's SVD comparison decides
    q = aff.copy()
    q[:3, :3] = q[:3, :3] @ np.array([[1, 0, 0], [0, np.cos(1e-3), -np.sin(1e-3)], [0, np.sin(1e-3), np.cos(1e-3)]])
    cases["svd"] = _nib_save(tmp_path / "svd.nii.gz", _volume(rng, np.int16, (4, 5, 6)), aff, qcode="scanner",
                             scode="aligned", qaffine=q)
    # a skewed sform
    sk = aff.copy()
    sk[0, 1] += 0.3
    cases["skew"] = _nib_save(tmp_path / "skew.nii.gz", _volume(rng, np.int16, (4, 5, 6)), sk, qcode="scanner",
                              scode="scanner")
    # an intent code
    img = nib.Nifti1Image(_volume(rng, np.float32, (4, 5, 6)), aff)
    img.header.set_intent("t test", (10,))
    nib.save(img, str(tmp_path / "intent.nii.gz"))
    cases["intent"] = tmp_path / "intent.nii.gz"
    for name, p in cases.items():
        vol = assert_same_as_sitk(p, expect_fast=False)
        assert len(vol.reader) > len("SimpleITK ()"), vol.reader
    # several volumes: SimpleITK reads 4-D, read_volume refuses it either way
    p4 = _nib_save(tmp_path / "4d.nii.gz", _volume(rng, np.int16, (4, 5, 6, 2)), aff, qcode="scanner",
                   scode="scanner")
    with pytest.raises(nifti.Fallback, match="more than one volume"):
        nifti.read_nifti(p4)
    with pytest.raises(ValueError, match="3-D"):
        rio.read_volume(p4)


def test_forced_simpleitk(tmp_path, monkeypatch):
    p = tmp_path / "f.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((3, 4, 5), np.int16)), str(p), True)
    monkeypatch.setenv("RLNFAST_NIFTI_READER", "sitk")
    assert rio.read_volume(p).reader == "SimpleITK (RLNFAST_NIFTI_READER=sitk)"
    monkeypatch.delenv("RLNFAST_NIFTI_READER")
    assert rio.read_volume(p).reader == nifti.READER_NAME


# ------------------------------------------------------------------------------------- truncated / corrupt

def _ct_file(tmp_path, name="ct.nii.gz"):
    rng = np.random.default_rng(17)
    img = sitk.GetImageFromArray(_volume(rng, np.int16, (20, 30, 40)))
    p = tmp_path / name
    sitk.WriteImage(img, str(p), name.endswith(".gz"))
    return p


def test_truncated_gzip_names_the_file(tmp_path):
    p = _ct_file(tmp_path)
    raw = p.read_bytes()
    bad = tmp_path / "cut.nii.gz"
    bad.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=r"cut\.nii\.gz.*truncated or corrupt.*inflates to \d+ bytes, the header "
                                         r"announces 48352"):
        rio.read_volume(bad)


def test_corrupt_gzip_names_the_file(tmp_path):
    p = _ct_file(tmp_path)
    raw = bytearray(p.read_bytes())
    raw[len(raw) // 2: len(raw) // 2 + 64] = bytes(64)
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"broken\.nii\.gz"):
        rio.read_volume(bad)


def test_truncated_uncompressed_names_the_file(tmp_path):
    p = _ct_file(tmp_path, "ct.nii")
    bad = tmp_path / "short.nii"
    bad.write_bytes(p.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r"short\.nii.* is truncated: 48252 bytes.*announces 48352"):
        rio.read_volume(bad)


def test_multi_member_gzip(tmp_path):
    """A .nii.gz made of two concatenated gzip members (as some tools write) inflates whole, like zlib's gzread."""
    p = _ct_file(tmp_path, "ct.nii")
    raw = p.read_bytes()
    two = tmp_path / "two.nii.gz"
    two.write_bytes(gzip.compress(raw[:10000]) + gzip.compress(raw[10000:]))
    assert_same_as_sitk(two)


def test_extract_reports_the_reader(tmp_path):
    import rlnfast

    rng = np.random.default_rng(19)
    ct = sitk.GetImageFromArray(_volume(rng, np.int16, (10, 12, 14)))
    lab = np.zeros((10, 12, 14), np.uint8)
    lab[3:6, 4:8, 5:9] = 1
    m = sitk.GetImageFromArray(lab)
    sitk.WriteImage(ct, str(tmp_path / "ct.nii.gz"), True)
    sitk.WriteImage(m, str(tmp_path / "m.nrrd"), True)
    df = rlnfast.extract(str(tmp_path / "ct.nii.gz"), str(tmp_path / "m.nrrd"))
    assert list(df["diagnostics_Image-original_Reader"]) == [nifti.READER_NAME]
    assert list(df["diagnostics_Mask-original_Reader"]) == ["SimpleITK"]


@pytest.mark.parametrize("which", ["libdeflate", "isal"])
def test_each_inflater(tmp_path, monkeypatch, which):
    """Both inflaters give SimpleITK's result and name truncated files (each where its package is installed)."""
    cls = {"libdeflate": nifti._LibDeflate, "isal": nifti._Isal}[which]
    try:
        inst = cls()
    except (ImportError, OSError, AttributeError) as exc:
        pytest.skip(f"{which} unavailable: {exc}")
    monkeypatch.setattr(nifti, "_INFLATER", (which, inst))
    p = _ct_file(tmp_path)
    assert_same_as_sitk(p)
    raw = p.read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(raw[:-2000])
    with pytest.raises(ValueError, match=r"cut\.nii\.gz.*announces 48352"):
        rio.read_volume(tmp_path / "cut.nii.gz")
    ct = gzip.decompress(raw)
    (tmp_path / "two.nii.gz").write_bytes(gzip.compress(ct[:5000]) + gzip.compress(ct[5000:]))
    assert_same_as_sitk(tmp_path / "two.nii.gz")
