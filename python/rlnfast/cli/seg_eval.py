"""``rlnfast seg-eval``: segmentation quality control (Dice, HD95, volume difference, node detection)."""
from __future__ import annotations

HELP = "compare predicted and true segmentations: Dice, HD95 (mm), volume difference, node detection"
DESCRIPTION = (
    "PRED and GT are two label map files or two folders paired by file name (<case>.nii.gz). Per case: Dice, "
    "95th-percentile Hausdorff distance in mm (MedPy's definition), volume difference, and node detection "
    "(matched, missed and false positive connected components by overlap); over the cohort: mean +- SD. "
    "Prints the summary; with -o writes seg_eval_cases.csv, seg_eval_summary.csv and seg_eval.txt.")


def add_arguments(p):
    p.add_argument("pred", metavar="PRED", help="predicted label map file or folder")
    p.add_argument("gt", metavar="GT", help="ground-truth label map file or folder")
    p.add_argument("-o", "--output", default=None, metavar="OUT", help="folder for the CSV and text reports (default: print only)")
    p.add_argument("--label", type=int, default=None, help="evaluate only this label (default: any positive label)")
    p.add_argument("--connectivity", type=int, choices=(6, 26), default=26, help="node connectivity (default 26)")
    p.add_argument("--backend", default="auto", help="auto (GPU via CuPy when available), cpu, numpy")


def run(args) -> int:
    import sys

    from rlnfast import BackendUnavailable
    from rlnfast.segmentation import seg_eval

    try:
        res = seg_eval(args.pred, args.gt, label=args.label, connectivity=args.connectivity, backend=args.backend)
    except BackendUnavailable as exc:
        print(f"rlnfast seg-eval: error: {exc}", file=sys.stderr)
        return 2
    print(res.text)
    if args.output:
        paths = res.write(args.output)
        print("written: " + ", ".join(str(p) for p in paths.values()))
    return 0
