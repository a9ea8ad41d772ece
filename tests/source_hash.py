"""The identity of an rlnfast build: a hash of the sources that go into it and of the build settings.

setup.py writes it into the installed package (``rlnfast/_build_stamp.txt``); tests/run_tests.sh compares it
with this tree's, so the package is built once and not again while nothing changed.

    python tests/source_hash.py      # prints this tree's stamp
"""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("setup.py", "pyproject.toml", "CMakeLists.txt", "csrc", "python/rlnfast")
SKIP_SUFFIXES = (".so", ".pyd", ".pyc", ".dll", ".dylib")


def build_settings() -> str:
    cuda = os.environ.get("RLNFAST_CUDA", "AUTO").upper()
    if cuda == "AUTO":
        cuda = "AUTO:" + ("nvcc" if shutil.which("nvcc") else "no-nvcc")
    return f"cuda={cuda};archs={os.environ.get('RLNFAST_CUDA_ARCHITECTURES', '')}"


def source_hash(root: Path = ROOT) -> str:
    h = hashlib.sha256()
    for top in SOURCES:
        p = root / top
        files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file())
        for f in files:
            rel = f.relative_to(root).as_posix()
            if "__pycache__" in rel or rel.endswith(SKIP_SUFFIXES) or f.name == "_build_stamp.txt":
                continue
            h.update(rel.encode() + b"\0" + f.read_bytes() + b"\0")
    h.update(build_settings().encode())
    return h.hexdigest()


if __name__ == "__main__":
    print(source_hash())
