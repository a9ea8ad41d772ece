"""The CuPy path: the same kernel sources as the CUDA build (csrc/common/*.cuh), compiled at run time by
NVRTC through memoised factories. Nothing is compiled or allocated until a kernel is first used."""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path


def include_dir() -> str:
    """Folder holding the shared headers: installed copies next to this file, or the source tree's csrc/."""
    here = Path(__file__).resolve().parent
    if (here / "include" / "common" / "firstorder_math.h").exists():
        return str(here / "include")
    src = here.parents[2] / "csrc"
    if (src / "common" / "firstorder_math.h").exists():
        return str(src)
    raise FileNotFoundError("rlnfast CuPy path: shared kernel headers not found (csrc/common or rlnfast/_cupy/include)")


def headers_digest(inc: str | None = None) -> str:
    """SHA-256 of every shared header (names and contents) under ``inc``/common: what the kernels compile from."""
    root = Path(inc or include_dir()) / "common"
    h = hashlib.sha256()
    for f in sorted(root.iterdir()):
        if f.suffix in (".h", ".cuh"):
            h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def source(header: str, inc: str | None = None) -> str:
    """The NVRTC source of one kernel header. CuPy caches compiled kernels on disk keyed on the source text
    and options, and the text alone is only an #include: the headers' digest in a comment makes an edited or
    upgraded header a new key, so a stale binary is never loaded."""
    return f'// rlnfast shared headers sha256 {headers_digest(inc)}\n#include "{header}"\n'


def module(header: str):
    """A cupy.RawModule built from one shared kernel header (e.g. 'common/firstorder_kernel.cuh')."""
    inc = include_dir()
    return _module(header, inc, source(header, inc))


@functools.lru_cache(maxsize=None)
def _module(header: str, inc: str, code: str):
    import cupy as cp

    return cp.RawModule(code=code, options=("-std=c++17", f"-I{inc}"))
