"""``rlnfast maps``: write the elasticity image E and the differential elasticity map DEM of a CT."""
from __future__ import annotations

HELP = "write the elasticity image E and the DEM of a CT (NIfTI/NRRD with the CT's geometry) for viewing"
DESCRIPTION = """Write the elasticity image E and the differential elasticity map DEM of a CT.

  rlnfast maps ct.nii.gz -o maps/              writes maps/E.nii.gz and maps/DEM.nii.gz
  rlnfast maps ct.nii.gz -o case1 --sigma 2    writes case1_E.nii.gz and case1_DEM.nii.gz

OUT is a folder (existing, or ending with '/': OUT/E.nii.gz and OUT/DEM.nii.gz) or a prefix
(OUT_E.nii.gz and OUT_DEM.nii.gz). Formulas: docs/features.md, "Elasticity image E" and "DEM"."""


def add_arguments(p):
    p.add_argument("image", metavar="IMAGE", help="CT in HU (NIfTI, NRRD, MHA, or a DICOM folder)")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="an existing folder or one ending in / (writes OUT/E.nii.gz, OUT/DEM.nii.gz), otherwise a "
                        "file prefix (OUT_E.nii.gz, OUT_DEM.nii.gz)")
    p.add_argument("--sigma", type=float, default=1.0, help="Gaussian scale of DEM in mm (default 1.0)")
    p.add_argument("--gamma", type=float, default=2.0, help="density power-law exponent of E (default 2.0)")
    p.add_argument("--clip-range", type=float, nargs=2, default=(-1000.0, 3071.0), metavar=("LOW", "HIGH"),
                   help="HU clip range before the density fit (default -1000 3071)")
    p.add_argument("--reference-density", type=float, default=None,
                   help="rho_w in kg/m^3 (default: rho(HU 0) = 1011.886)")
    p.add_argument("--format", default="nii.gz", choices=["nii.gz", "nii", "nrrd", "mha"], help="file format of the maps")
    p.add_argument("--float64", action="store_true", help="write float64 maps (default float32)")
    p.add_argument("--only", choices=["E", "DEM"], default=None, help="write only one of the maps (default: both)")
    p.add_argument("--backend", default="auto", choices=["auto", "cuda", "cupy", "cpu", "numpy"],
                   help="compute backend (auto: cuda > cupy > cpu; numpy: the reference)")


def run(args) -> int:
    import time

    import numpy as np

    from rlnfast.ops.dem import write_maps

    t0 = time.perf_counter()
    maps = (args.only,) if args.only else ("E", "DEM")
    paths = write_maps(args.image, args.output, sigma=args.sigma, gamma=args.gamma, clip_range=tuple(args.clip_range),
                       reference_density=args.reference_density, format=args.format,
                       dtype=np.float64 if args.float64 else np.float32, backend=args.backend, maps=maps)
    for name, path in paths.items():
        print(f"{name}: {path}")
    print(f"written in {time.perf_counter() - t0:.2f} s")
    return 0
