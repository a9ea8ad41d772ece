"""``rlnfast segment``: run a trained nnU-Net v2 model (or import its predictions), one region per node,
optionally straight into feature extraction."""
from __future__ import annotations

import sys

HELP = "segment CT with a trained nnU-Net v2 model (or import nnU-Net predictions) into one region per node"
DESCRIPTION = (
    "Run a trained nnU-Net v2 model folder on CT files (a folder of <case>_0000.nii.gz or a CSV with columns "
    "ID, Image), or import predictions made elsewhere (--predictions), split each prediction into nodes "
    "(each connected component of the node label, or each label value) and write OUT/<case>.nii.gz, "
    "OUT/nodes/<case>_nodes.nii.gz, OUT/batch.csv (ID, Image, Mask: what `rlnfast extract` runs) and "
    "OUT/nodes.csv (node id, voxels, volume, centroid in mm). With --extract, node features go to "
    "OUT/features.csv. Needs torch and nnunetv2 to run a model: pip install \"rlnfast[seg]\".\n\n"
    "SECURITY: an nnU-Net checkpoint is a Python pickle (torch.load with weights_only=False): loading one "
    "runs any code its author put in it. --model takes only the folder you name, and --checkpoint only a "
    "file name inside its fold_X folders; use only models you trust.")


def add_arguments(p):
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", metavar="MODEL_FOLDER",
                     help="nnU-Net trained model folder (dataset.json, plans.json, fold_X/CHECKPOINT). Its "
                     "checkpoints are pickles that run code when loaded: only models you trust")
    src.add_argument("--predictions", metavar="PRED_FOLDER",
                     help="import existing nnU-Net predictions (<case>.nii.gz) instead of running a model")
    p.add_argument("--input", "-i", required=True, metavar="CT_FOLDER_OR_CSV",
                   help="folder of <case>_0000.nii.gz CT files, or a CSV with columns ID, Image")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder")
    p.add_argument("--folds", nargs="+", default=["0"], help="folds to ensemble (default: 0; 'all' for fold_all)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="torch device (default: cpu)")
    p.add_argument("--checkpoint", default="checkpoint_final.pth", help="checkpoint file name in each fold folder")
    p.add_argument("--no-mirroring", action="store_true",
                   help="disable nnU-Net's test-time mirroring (up to 8x faster)")
    p.add_argument("--processes", type=int, default=None,
                   help="nnU-Net worker processes for preprocessing and export; 0 runs in this process "
                        "(default: 0 on cpu, 3 on cuda)")
    p.add_argument("--label", default=None,
                   help="label value or dataset.json name that holds nodes (default: 'node', else the only "
                        "foreground label, else any positive label)")
    p.add_argument("--nodes", choices=("components", "labels"), default="components",
                   help="a node is each connected component of the label (default) or each label value")
    p.add_argument("--connectivity", type=int, choices=(6, 26), default=26, help="component connectivity")
    p.add_argument("--min-volume", type=float, default=0.0, metavar="MM3",
                   help="drop nodes smaller than this volume in mm^3")
    p.add_argument("--extract", metavar="PARAMS", nargs="?", const="", default=None,
                   help="extract node features into OUT/features.csv (optional pyradiomics-style params YAML; default: no extraction; --extract alone: rlnfast's default parameters)")
    p.add_argument("--backend", default="auto", help="feature backend for --extract (auto, cuda, cupy, cpu, numpy)")


def run(args) -> int:
    from rlnfast import segmentation as seg

    common = dict(label=args.label, mode=args.nodes, connectivity=args.connectivity, min_volume_mm3=args.min_volume)
    if args.model:
        # only the folder the user names: an existing directory, and a checkpoint that is a plain file name
        # inside its fold folders (no path that points a pickle load anywhere else)
        from pathlib import Path, PurePath

        if not Path(args.model).is_dir():
            raise ValueError(f"--model {args.model!r}: expected an existing nnU-Net model folder")
        ck = PurePath(args.checkpoint)
        if ck.name != args.checkpoint or ck.name in ("", ".", "..") or "\\" in args.checkpoint:
            raise ValueError(f"--checkpoint {args.checkpoint!r}: expected a file name inside the model's fold "
                             "folders, not a path")
        bad = [f for f in args.folds if not (str(f).isdigit() or str(f) == "all")]
        if bad:   # fold_<f> must stay a folder of the named model
            raise ValueError(f"--folds {' '.join(map(str, bad))}: expected fold numbers (0 1 ...) or 'all'")
    try:
        if args.model:
            batch, nodes = seg.segment(args.model, args.input, args.output, folds=args.folds, device=args.device,
                                       checkpoint=args.checkpoint, use_mirroring=not args.no_mirroring,
                                       num_processes=args.processes, **common)
        else:
            batch, nodes = seg.import_predictions(args.predictions, args.input, args.output, **common)
    except ImportError as exc:
        print(f"rlnfast segment: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"rlnfast segment: error: {exc}", file=sys.stderr)
        return 1
    print(f"{len(batch)} case(s), {len(nodes)} node(s) -> {args.output}/batch.csv, {args.output}/nodes.csv")
    for r in batch.itertuples():
        print(f"  {r.ID}: {r.n_nodes} node(s)" + ("  (empty prediction: zero nodes)" if r.n_nodes == 0 else ""))
    if args.extract is not None:
        from pathlib import Path

        feats, skipped = seg.extract_nodes(batch, params=args.extract or None, backend=args.backend, nodes=nodes,
                                           out_dir=Path(args.output) / "extract")
        out = Path(args.output) / "features.csv"
        feats.to_csv(out, index=False)
        print(f"features: {len(feats)} node row(s) x {feats.shape[1]} column(s) -> {out}")
        for case, why in skipped.items():
            print(f"  {case}: no features ({why})")
    return 0
