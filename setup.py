"""Build rlnfast: the Python package plus one CMake-built extension, rlnfast._core.

Follows pybind/cmake_example. Environment variables:
  RLNFAST_CUDA=AUTO|ON|OFF|EMULATE  build the CUDA kernels (AUTO: when nvcc is found; default AUTO); EMULATE
                                  compiles the same kernels as C++ on CPU threads with ASan+UBSan (CI without a
                                  GPU; import needs LD_PRELOAD of libasan, see tests/run_emulated.sh)
  RLNFAST_SANITIZE=address,undefined  sanitizers of the EMULATE build (empty: none)
  RLNFAST_CUDA_ARCHITECTURES="80;90"  CUDA architectures (default 80 and 90)
  RLNFAST_BUILD_JOBS=N            parallel compile jobs (default: CPU count)
"""
import os
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name, sourcedir=""):
        super().__init__(name, sources=[])
        self.sourcedir = os.fspath(Path(sourcedir).resolve())


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        import pybind11

        ext_fullpath = Path.cwd() / self.get_ext_fullpath(ext.name)
        extdir = ext_fullpath.parent.resolve()
        cuda = os.environ.get("RLNFAST_CUDA", "AUTO").upper()
        if cuda not in ("AUTO", "ON", "OFF", "EMULATE"):
            raise SystemExit(f"RLNFAST_CUDA={cuda!r}: expected AUTO, ON, OFF or EMULATE")
        cfg = "Debug" if self.debug else "Release"
        cmake_args = [
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={extdir}{os.sep}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
            f"-DCMAKE_BUILD_TYPE={cfg}",
            f"-DRLNFAST_CUDA={cuda}",
        ]
        if "RLNFAST_SANITIZE" in os.environ:
            cmake_args.append(f"-DRLNFAST_SANITIZE={os.environ['RLNFAST_SANITIZE']}")
        archs = os.environ.get("RLNFAST_CUDA_ARCHITECTURES")
        if archs:
            cmake_args.append(f"-DCMAKE_CUDA_ARCHITECTURES={archs}")
        jobs = os.environ.get("RLNFAST_BUILD_JOBS", str(os.cpu_count() or 2))
        build_temp = Path(self.build_temp) / ext.name
        build_temp.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cmake", ext.sourcedir, *cmake_args], cwd=build_temp, check=True)
        subprocess.run(["cmake", "--build", ".", "--config", cfg, "-j", jobs], cwd=build_temp, check=True)


class BuildPyWithHeaders(build_py):
    """Ship csrc/common (the kernel sources shared with CUDA) inside the package for the CuPy backend."""

    def run(self):
        super().run()
        import shutil

        dst = Path(self.build_lib) / "rlnfast" / "_cupy" / "include" / "common"
        dst.mkdir(parents=True, exist_ok=True)
        for f in (HERE / "csrc" / "common").iterdir():
            if f.suffix in (".h", ".cuh"):
                shutil.copy2(f, dst / f.name)
        # The build's identity (sources + CUDA settings): tests/run_tests.sh skips rebuilding an equal build.
        stamp = _load_source_hash()
        if stamp is not None:
            (Path(self.build_lib) / "rlnfast" / "_build_stamp.txt").write_text(stamp.source_hash(HERE) + "\n")


def _load_source_hash():
    import importlib.util

    path = HERE / "tests" / "source_hash.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("_rlnfast_source_hash", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


setup(
    name="rlnfast",
    version="0.1.0",
    description="Fast CT radiomics of lymph nodes: elasticity maps, pyradiomics-exact first-order and fractal "
    "features for thousands of regions at once, on CUDA, CuPy, C++ and NumPy backends",
    long_description=(HERE / "README.md").read_text(encoding="utf-8") if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    package_dir={"": "python"},
    packages=find_packages("python"),
    package_data={"rlnfast": ["py.typed"]},
    ext_modules=[CMakeExtension("rlnfast._core", sourcedir=str(HERE))],
    cmdclass={"build_ext": CMakeBuild, "build_py": BuildPyWithHeaders},
    install_requires=[
        "numpy>=1.23",
        "scipy>=1.10",
        "pandas>=1.5",
        "SimpleITK>=2.2",
        "PyYAML>=6",
        "tqdm>=4.60",
        "scikit-learn>=1.2",
        "statsmodels>=0.14",
        "dcurves>=1.1",
        "matplotlib>=3.6",
    ],
    extras_require={
        "parquet": ["pyarrow>=12"],
        "fastio": ["deflate>=0.7", "isal>=1.6"],
        "dask": ["dask[distributed]>=2023.1"],
        "gpu": ["cupy-cuda12x>=13"],
        # Ranges, not pins (the versions tested are in the README).
        "seg": ["torch>=2.2", "nnunetv2>=2.5"],
        "test": ["pytest>=7", "pytest-benchmark>=4", "pyarrow>=12", "dask[distributed]>=2023.1", "deflate>=0.7", "isal>=1.6",
                 "nibabel>=4", "hypothesis>=6"],
    },
    entry_points={"console_scripts": ["rlnfast=rlnfast.cli:main"]},
    zip_safe=False,
)
