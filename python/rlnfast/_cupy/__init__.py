"""The CuPy path: the same kernel sources as the CUDA build (csrc/common/*.cuh), compiled at run time by
NVRTC through memoised factories. Nothing is compiled or allocated until a kernel is first used."""
from __future__ import annotations

import functools
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


@functools.lru_cache(maxsize=None)
def module(header: str):
    """A cupy.RawModule built from one shared kernel header (e.g. 'common/firstorder_kernel.cuh')."""
    import cupy as cp

    inc = include_dir()
    return cp.RawModule(code=f'#include "{header}"\n', options=("-std=c++17", f"-I{inc}"))
