"""Files of the segmentation front end: image headers and grid checks, image files found in a folder
(nnU-Net's ``<case>.nii.gz`` predictions and ``<case>_0000.nii.gz`` CTs), case IDs and batch tables."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..io import IMAGE_SUFFIXES, _fmt, geometry_mismatches


def _header(path) -> dict:
    import SimpleITK as sitk

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file {str(path)!r} does not exist")
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise ValueError(f"file {str(path)!r} could not be read: {str(exc).strip().splitlines()[-1]}") from exc
    size = tuple(int(s) for s in reader.GetSize())
    if len(size) != 3:
        raise ValueError(f"file {str(path)!r}: expected a 3-D image, got size {size}")
    return {"size": size, "spacing": tuple(reader.GetSpacing()), "origin": tuple(reader.GetOrigin()),
            "direction": tuple(reader.GetDirection())}


def _fmt_geometry(g: dict) -> str:
    return (f"size {tuple(g['size'])}, spacing {_fmt(g['spacing'])}, origin {_fmt(g['origin'])}, "
            f"direction {_fmt(g['direction'])}")


def check_same_geometry(geo_a: dict, name_a: str, geo_b: dict, name_b: str, tolerance: float | None = None) -> None:
    """Raise ValueError naming both geometries when two images do not lie on the same grid
    (the comparison and its tolerance: :func:`rlnfast.io.geometry_mismatches`)."""
    tol = 1e-6 if tolerance is None else float(tolerance)
    bad = geometry_mismatches(geo_a, geo_b, tol)
    if bad:
        raise ValueError(f"{name_a} and {name_b} lie on different grids ({', '.join(bad)} differ, tolerance "
                         f"{tol:g}): {name_a} has {_fmt_geometry(geo_a)}; {name_b} has {_fmt_geometry(geo_b)}")


def _strip_suffix(name: str) -> tuple[str, str] | None:
    for suf in sorted(IMAGE_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suf):
            return name[: -len(suf)], name[-len(suf):]
    return None


def _image_files(folder: Path) -> dict[str, Path]:
    """case id -> file for every image file directly in ``folder``."""
    out = {}
    for p in sorted(folder.iterdir()):
        if not p.is_file() or p.name.startswith("."):
            continue
        s = _strip_suffix(p.name)
        if s is None:
            continue
        case = s[0]
        if case in out:
            raise ValueError(f"folder {str(folder)!r}: case {case!r} has two files ({out[case].name!r} and {p.name!r})")
        out[case] = p
    return out


def _find_ct(ct_folder: Path, case: str) -> Path | None:
    for suf in IMAGE_SUFFIXES:
        p = ct_folder / f"{case}_0000{suf}"
        if p.is_file():
            return p
    return None


def _read_table(path_or_df, what: str, required=("ID", "Image", "Mask")):
    import pandas as pd

    if isinstance(path_or_df, pd.DataFrame):
        df, base = path_or_df.copy(), Path.cwd()
        src = "batch table"
    else:
        path = Path(path_or_df)
        if not path.is_file():
            raise FileNotFoundError(f"{what} {str(path)!r} does not exist")
        df = pd.read_csv(path)
        base, src = path.parent, f"{what} {str(path)!r}"
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"{src}: missing column(s) {missing}; expected columns {list(required)} "
                         f"(pyradiomics batch convention), found {list(df.columns)}")
    if len(df) == 0:
        raise ValueError(f"{src} has no rows")
    ids = df["ID"].astype(str)
    dup = ids[ids.duplicated()].unique().tolist()
    if dup:
        raise ValueError(f"{src}: duplicate ID(s) {dup[:10]}; each case needs a unique ID")
    df["ID"] = ids

    def resolve(p):
        p = Path(str(p))
        return p if p.is_absolute() else (base / p)

    for c in required:
        if c != "ID":
            df[c] = [str(resolve(p)) for p in df[c]]
    return df, src


_CASE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _check_case_id(case: str, src: str) -> str:
    if not _CASE_RE.match(case):
        raise ValueError(f"{src}: case ID {case!r} must be letters, digits, '.', '_' or '-' (it names files)")
    return case


def _must_exist(p, what) -> Path:
    p = Path(str(p))
    if not p.is_file():
        raise FileNotFoundError(f"{what} {str(p)!r} does not exist")
    return p


def _isnan(v) -> bool:
    try:
        return v is None or (isinstance(v, float) and np.isnan(v))
    except TypeError:
        return False
