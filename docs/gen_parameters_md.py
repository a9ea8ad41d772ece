"""Write docs/parameters.md from the registries: every setting (rlnfast.params.supported_settings()), every
feature class (rlnfast.features.feature_classes()) and every image type (rlnfast.imagetypes.REGISTRY), with
the pyradiomics keys rlnfast accepts, warns about or refuses (rlnfast.params).

    PYTHONPATH=python python docs/gen_parameters_md.py          # rewrite docs/parameters.md
    PYTHONPATH=python python docs/gen_parameters_md.py --check  # exit 1 if it is out of date

A setting, class or image type added without a description below is written as UNDOCUMENTED, and
tests/test_docs.py fails until it has one.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "parameters.md"

PR = "pyradiomics' own, with its default and meaning (run by pyradiomics' functions, rlnfast/preprocessing.py)"
DEL = "pyradiomics' own class run on each region's crop (identical names and values)"

# setting -> (meaning, pyradiomics: equivalent and differences)
SETTINGS = {
    "binWidth": ("Width of the intensity bins of the histogram features (Entropy, Uniformity) of `firstorder`, in the "
                 "image type's units (HU for Original). Bin edges as pyradiomics' `getBinEdges`: the lowest edge is "
                 "min - (min mod binWidth).",
                 "Same key, same default (25), same binning."),
    "binCount": ("A fixed number of bins instead of `binWidth` (integer >= 1); `null` = use `binWidth`.",
                 "Same key and meaning."),
    "voxelArrayShift": ("Added to the intensities before Energy, TotalEnergy and RootMeanSquared (`firstorder`).",
                        "Same key. pyradiomics' default is 0 except with `normalize` (which rlnfast refuses)."),
    "label": ("The label value to extract (an integer, or a list of them); `null` = every positive label, one row "
              "each. A batch CSV's `Label` cell overrides it for its row.",
              "Different default: pyradiomics extracts label 1 only. Set `label: 1` for pyradiomics' behaviour. "
              "Likewise a batch CSV without `Label` gives one row per label in rlnfast, one row (label 1) in "
              "pyradiomics."),
    "geometryTolerance": ("How far image and label map geometry may differ (spacing and origin relative to the "
                          "spacing, direction absolute); `null` = 1e-6 (SimpleITK's coordinate tolerance). "
                          "Beyond it the case is an error naming both geometries (unless `correctMask`).",
                          "Same key and meaning."),
    "normalize": ("Normalise the image (z-score over the whole image, times `normalizeScale`) before extraction.",
                  PR + "."),
    "normalizeScale": ("Scale applied after `normalize`.", PR + "."),
    "removeOutliers": ("With `normalize`: clip values beyond this many standard deviations; `null` = no clipping.",
                       PR + "."),
    "resampledPixelSpacing": ("Resample image and mask to this spacing `[x, y, z]` in mm (0 keeps an axis); `null` = "
                              "no resampling. Done per region on pyradiomics' grid.", PR + "."),
    "interpolator": ("Interpolator of the image for `resampledPixelSpacing` (SimpleITK name).", PR + "."),
    "padDistance": ("Voxels of padding kept around a region when cropping and resampling.", PR + "."),
    "preCrop": ("Crop to the region before applying filters.", PR + "."),
    "resegmentRange": ("Keep only the region's voxels within `[low, high]` (or `[low]`); `null` = no resegmentation.",
                       PR + "."),
    "resegmentMode": ("`absolute` values, `relative` to the range, or `sigma` (standard deviations from the mean).",
                      PR + "."),
    "resegmentShape": ("Resegment the shape class's mask too.", PR + "."),
    "correctMask": ("Resample a mask whose geometry differs from the image's onto the image instead of an error "
                    "(nearest neighbour, as pyradiomics' checkMask; a label whose ROI reaches outside the image is an "
                    "error naming it; refused together with `resampledPixelSpacing`).", PR + "."),
    "minimumROIDimensions": ("Minimum number of dimensions with more than one voxel; a smaller region gets NaN "
                             "features and pyradiomics' reason.", PR + "."),
    "minimumROISize": ("Minimum number of voxels of a region; `null` = no minimum.", PR + "."),
    "force2D": ("Compute the texture and shape classes per slice (2-D).", PR + "."),
    "force2Ddimension": ("Axis of the slices for `force2D` (0: axial).", PR + "."),
    "distances": ("Neighbour distances of the texture matrices (GLCM, GLDM, NGTDM).", PR + "."),
    "symmetricalGLCM": ("Count each GLCM pair in both directions.", PR + "."),
    "weightingNorm": ("Weight GLCM/GLRLM directions by distance (`manhattan`, `euclidean`, `infinity`, `no_weighting`); "
                      "`null` = no weighting.", PR + "."),
    "gldm_a": ("Coarseness cutoff alpha of the GLDM.", PR + "."),
    "wavelet": ("Wavelet of the `Wavelet` image type (PyWavelets name).", PR + "."),
    "level": ("Decomposition levels of the `Wavelet` image type.", PR + "."),
    "start_level": ("First decomposition level returned by the `Wavelet` image type.", PR + "."),
    "gradientUseSpacing": ("The `Gradient` image type takes the spacing into account.", PR + "."),
    "lbp2DRadius": ("Radius of the `LBP2D` image type.", PR + "."),
    "lbp2DSamples": ("Samples of the `LBP2D` image type.", PR + "."),
    "lbp2DMethod": ("Method of the `LBP2D` image type (scikit-image name).", PR + "."),
    "lbp3DLevels": ("Spherical-harmonics levels of the `LBP3D` image type.", PR + "."),
    "lbp3DIcosphereRadius": ("Icosphere radius of the `LBP3D` image type.", PR + "."),
    "lbp3DIcosphereSubdivision": ("Icosphere subdivisions of the `LBP3D` image type.", PR + "."),
    "nonFinite": ("What to do with NaN/inf voxels inside a region: `error` (default; the message names the region "
                  "and the voxel's index and physical position) or `drop` (leave them out; "
                  "`diagnostics_Mask-original_VoxelNum` counts the voxels used and "
                  "`diagnostics_Mask-original_NonFiniteDropped` the ones left out). DEM reads a crop with its filter "
                  "halo: a NaN there is an error whatever this says.",
                  "rlnfast's own (pyradiomics lets NaN into the features)."),
    "connectedComponents": ("`true`: every connected component of a label is its own region (row), with columns "
                            "`source_label` and `component`.",
                            "rlnfast's own."),
    "connectivity": ("Neighbourhood of `connectedComponents`: 26 (faces, edges, corners) or 6 (faces).",
                     "rlnfast's own."),
    "minimumComponentVoxels": ("With `connectedComponents`, components with fewer voxels are dropped.",
                               "rlnfast's own."),
    "fractalMinBoxSize": ("Smallest box size of the fractal box counting, in mm; `null` = the smallest voxel spacing "
                          "(see docs/features.md, \"Fractal features\").",
                          "rlnfast's own (pyradiomics has no fractal class)."),
    "fractalBoxSizes": ("An explicit list of box sizes in mm, overriding the doubling series from "
                        "`fractalMinBoxSize`.",
                        "rlnfast's own."),
    "fractalGreyLevels": ("Grey levels G of the differential box counting (DBCFD): intensities are rescaled to "
                          "[0, G-1] per region.",
                          "rlnfast's own."),
    "gamma": ("Exponent of the density power law of the elasticity image E (> 0).",
              "rlnfast's own (image types Elasticity and DEM)."),
    "clipRange": ("HU range `[low, high]` the CT is clipped to before the density fit of E.",
                  "rlnfast's own."),
    "referenceDensity": ("rho_w in kg/m^3, the density E is relative to; `null` = rho(HU 0) = 1011.886.",
                         "rlnfast's own."),
    "sigma": ("Two meanings by image type: a number is DEM's Gaussian scale in mm (> 0; default 1.0): "
              "DEM = sigma x |gradient of (G_sigma * E)|; a list (under `LoG`, or in `setting:`) is the `LoG` "
              "image type's scales in mm, one image each.",
              "A list: pyradiomics' LoG `sigma`, same meaning. A number for DEM: rlnfast's own."),
}

# image type -> (what it is, pyradiomics equivalent)
IMAGE_TYPES = {
    "Original": ("The CT as it is, in HU.", "`Original`: identical."),
    "Elasticity": ("The elasticity image E: per-mille stiffness contrast from the CT's density "
                   "(docs/features.md, \"Elasticity image E\"), computed on the regions only.",
                   "None (rlnfast's own; the study's `E_original_` features)."),
    "DEM": ("The differential elasticity map: sigma x Gaussian gradient magnitude of E in physical units "
            "(docs/features.md, \"DEM\"), computed on each region's bounding box plus the filter halo.",
            "None (rlnfast's own)."),
    "LoG": ("Laplacian of Gaussian filtered images, one per `sigma` (mm).", "`LoG`: pyradiomics' filter and names."),
    "Wavelet": ("Wavelet decompositions (`wavelet`, `level`, `start_level`), one image each (`wavelet-LLH_`, ...).",
                "`Wavelet`: pyradiomics' filter and names."),
    "Square": ("(c x)^2 with pyradiomics' scaling.", "`Square`: pyradiomics' filter."),
    "SquareRoot": ("sqrt(c |x|) with pyradiomics' scaling.", "`SquareRoot`: pyradiomics' filter."),
    "Logarithm": ("c log(|x| + 1) with pyradiomics' scaling.", "`Logarithm`: pyradiomics' filter."),
    "Exponential": ("exp(c x) with pyradiomics' scaling.", "`Exponential`: pyradiomics' filter."),
    "Gradient": ("Gradient magnitude (`gradientUseSpacing`).", "`Gradient`: pyradiomics' filter."),
    "LBP2D": ("Local binary pattern per slice (needs scikit-image).", "`LBP2D`: pyradiomics' filter."),
    "LBP3D": ("Local binary pattern in 3-D (needs trimesh; with SciPy >= 1.17, which removed `scipy.special.sph_harm`, "
              "rlnfast provides it from `sph_harm_y` by SciPy's documented conversion; refused by name where trimesh "
              "is missing).", "`LBP3D`: pyradiomics' filter."),
}

# feature class -> (what it is, pyradiomics equivalent)
CLASSES = {
    "firstorder": ("pyradiomics' first-order statistics of the voxel intensities, for every enabled image type "
                   "(docs/features.md, \"First-order features\").",
                   "`firstorder`: identical names and values (tested to 1e-9 against pyradiomics and its golden "
                   "values). StandardDeviation is computed only when listed, as in pyradiomics."),
    "shape": ("3-D shape of the region (mesh volume, surface, diameters, axes, ...).", DEL + "."),
    "shape2D": ("2-D shape of the region (with `force2D`).", DEL + "."),
    "glcm": ("Grey level co-occurrence matrix features.", DEL + "."),
    "glrlm": ("Grey level run length matrix features.", DEL + "."),
    "glszm": ("Grey level size zone matrix features.", DEL + "."),
    "gldm": ("Grey level dependence matrix features.", DEL + "."),
    "ngtdm": ("Neighbouring grey tone difference matrix features.", DEL + "."),
    "size": ("Node size in the axial plane: short- and long-axis diameters (minimum and maximum Feret diameters "
             "of the largest slice) and the number of axial slices (docs/features.md, \"Node size\").",
             "None (rlnfast's own; RECIST's short axis)."),
    "fractal": ("Box-counting dimensions and lacunarity of each region (region-only features, named "
                "`original_fractal_*`) and differential box counting of the intensities of every image type "
                "(`*_fractal_DBCFD`) (docs/features.md, \"Fractal features\").",
                "None (rlnfast's own)."),
}

NEUTRAL_NOTE = "accepted, no effect on rlnfast's features (the result is the same either way)"
FOREIGN_NOTE = ("warned about: they affect only pyradiomics classes rlnfast does not compute; the drop-in "
                "`rlnfast.pyradiomics.RadiomicsFeatureExtractor` passes them to pyradiomics")


def _fmt(v) -> str:
    return "`null`" if v is None else f"`{json.dumps(v)}`"


def generate() -> str:
    from rlnfast import params as P
    from rlnfast.features import feature_classes
    from rlnfast.imagetypes import REGISTRY

    settings = P.supported_settings()
    classes = feature_classes()
    users: dict = {k: [] for k in settings}
    for k in P.GENERAL_SETTINGS:
        users[k].append("general")
    for name, fc in classes.items():
        for k in fc.settings:
            users[k].append(f"class `{name}`")
    for name, it in REGISTRY.items():
        for k in it.settings:
            users[k].append(f"image type `{name}`")

    L = ["# Parameters",
         "",
         "<!-- Generated by docs/gen_parameters_md.py from rlnfast's registries; edit the descriptions there. -->",
         "",
         "rlnfast reads pyradiomics' parameter files (YAML or JSON, or the same structure as a Python dict) with the",
         "sections `setting:`, `imageType:` and `featureClass:`. Settings under `setting:` apply to every image type;",
         "an image type's own mapping overrides them for that image type (`imageType: {DEM: {sigma: 2.0}}`). Keyword",
         "arguments of `rlnfast.extract(..., binWidth=5)` override `setting:`. Every key is checked before anything",
         "is computed: an unknown key is an error that names it (with a suggestion for a close misspelling, e.g.",
         "`unknown setting key 'binwidth'; did you mean 'binWidth'?`), and a pyradiomics key that would change the",
         "features is refused by name. Nothing is silently ignored.",
         "",
         "```yaml",
         "setting:",
         "  binWidth: 25",
         "  label: 1                 # pyradiomics' default; rlnfast's own default is every positive label",
         "imageType:",
         "  Original: {}",
         "  Elasticity: {}",
         "  DEM: {sigma: 1.0}",
         "featureClass:",
         "  firstorder:              # nothing = the class's default features",
         "  fractal: [MaskFD, DBCFD]",
         "```",
         "",
         "## Settings",
         "",
         "| setting | default | read by | meaning | pyradiomics |",
         "|---|---|---|---|---|"]
    for k, v in settings.items():
        meaning, pr = SETTINGS.get(k, ("UNDOCUMENTED", "UNDOCUMENTED"))
        L.append(f"| `{k}` | {_fmt(v)} | {', '.join(users[k])} | {meaning} | {pr} |")
    L += ["",
          "## Image types",
          "",
          "Enabled under `imageType:` (default: `Original` only). The prefix starts every feature column of the",
          "image type (`{prefix}{class}_{Feature}`, e.g. `E_original_firstorder_Entropy`).",
          "",
          "| image type | prefix | also spelt | settings | what | pyradiomics |",
          "|---|---|---|---|---|---|"]
    for name, it in REGISTRY.items():
        what, pr = IMAGE_TYPES.get(name, ("UNDOCUMENTED", "UNDOCUMENTED"))
        sets = ", ".join(f"`{k}`" for k in it.settings) or "—"
        alias = ", ".join(f"`{a}`" for a in it.aliases) or "—"
        L.append(f"| `{name}` | `{it.prefix}` | {alias} | {sets} | {what} | {pr} |")
    L += ["",
          "## Feature classes",
          "",
          "Enabled under `featureClass:` (default: `firstorder` only), each with a list of features or nothing for",
          "its default set. An unknown feature name is an error naming it.",
          ""]
    for name, fc in classes.items():
        what, pr = CLASSES.get(name, ("UNDOCUMENTED", "UNDOCUMENTED"))
        default = set(fc.defaults)
        feats = ", ".join(f"`{f}`" + ("" if f in default else " (on request)") for f in fc.features)
        sets = ", ".join(f"`{k}`" for k in fc.settings) or "none"
        L += [f"### `{name}`", "",
              what, "",
              f"- features: {feats}",
              f"- settings: {sets}",
              f"- image types: {'every enabled image type' if fc.image_types is None else ', '.join(fc.image_types)}",
              f"- pyradiomics: {pr}",
              ""]
    L += ["## Other pyradiomics keys",
          "",
          "| key | what rlnfast does |",
          "|---|---|"]
    for k in sorted(P.NEUTRAL_SETTINGS):
        L.append(f"| `{k}` | {NEUTRAL_NOTE} |")
    for k in sorted(P.FOREIGN_CLASS_SETTINGS):
        L.append(f"| `{k}` | {FOREIGN_NOTE} |")
    for k, v in P.REFUSED_SETTINGS.items():
        L.append(f"| `{k}` | refused unless at pyradiomics' default {_fmt(v)} (it would change the features) |")
    L += ["| `voxelSetting` (section) | `rlnfast.extract`: refused (voxel-based extraction); the drop-in runs it through pyradiomics |",
          "",
          "## Other differences from pyradiomics",
          "",
          "- Every positive label is a region by default (pyradiomics: label 1), one row each; in a batch CSV an",
          "  empty or absent `Label` means the same.",
          "- A batch output starts with the batch row's own columns (`ID`, ...), then `Image`, `Mask` (and `Label`",
          "  where the CSV has it), then `label`, the diagnostics and the features.",
          "- A NumPy array has no geometry: `rlnfast.extract(array, array)` needs `spacing=(x, y, z)` in mm",
          "  (`spacing=(1, 1, 1)` for 1 mm voxels); an array label map takes the image's geometry.",
          "- 3-D only: a 2-D image is refused by name (give one slice as a volume of one slice, shape (1, y, x)).",
          "- rlnfast's own settings and image types (`nonFinite`, `connectedComponents`, E, DEM, `fractal`) do not",
          "  follow pyradiomics' preprocessing: combining them with `normalize`, resampling or resegmentation (or",
          "  `fractal` with a filtered image type) is refused by name.",
          ""]
    return "\n".join(L)


def main(argv) -> int:
    text = generate()
    if "--check" in argv:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is out of date: run PYTHONPATH=python python docs/gen_parameters_md.py", file=sys.stderr)
            return 1
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
