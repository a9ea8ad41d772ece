"""``rlnfast nnunet-dataset``: CT + node masks -> an nnU-Net v2 raw training set."""
from __future__ import annotations

import json

HELP = "write an nnU-Net v2 raw dataset (imagesTr, labelsTr, dataset.json) from CT + node masks"
DESCRIPTION = (
    "Read a batch CSV (ID, Image, Mask[, Label]; pyradiomics batch convention), check that every mask lies on "
    "its CT's grid, and write RAW_DIR/DatasetXXX_NAME/imagesTr/<ID>_0000.nii.gz, labelsTr/<ID>.nii.gz and "
    "dataset.json (channel_names CT, label names), ready for nnUNetv2_plan_and_preprocess -d XXX and "
    "nnUNetv2_train. By default every positive mask voxel becomes label 1 'node'.")


def add_arguments(p):
    p.add_argument("batch", metavar="BATCH.csv", help="CSV with columns ID, Image, Mask (optionally Label)")
    p.add_argument("--id", type=int, default=501, help="nnU-Net dataset id, 1..999 (default 501)")
    p.add_argument("--name", default="RLNNodes", help="dataset name (default RLNNodes)")
    p.add_argument("-o", "--output", required=True, metavar="RAW_DIR", help="nnU-Net raw folder (nnUNet_raw)")
    p.add_argument("--labels", default=None, metavar="JSON",
                   help='label names as JSON, e.g. \'{"background": 0, "node": 1}\' (default: binary node masks)')
    p.add_argument("--overwrite", action="store_true", help="write into an existing, non-empty dataset folder")


def run(args) -> int:
    from rlnfast.segmentation import nnunet_dataset

    labels = None
    if args.labels:
        try:
            labels = json.loads(args.labels)
        except ValueError as exc:
            raise ValueError(f"--labels {args.labels!r}: expected a JSON object of name: value ({exc})") from exc
        if not isinstance(labels, dict):
            raise ValueError(f"--labels {args.labels!r}: expected a JSON object of name: value")
    root = nnunet_dataset(args.batch, args.id, args.name, args.output, labels, overwrite=args.overwrite)
    ds = json.loads((root / "dataset.json").read_text())
    print(f"{root}: {ds['numTraining']} training case(s), labels {ds['labels']}")
    print(f"next: nnUNet_raw={args.output} nnUNetv2_plan_and_preprocess -d {args.id} --verify_dataset_integrity")
    return 0
