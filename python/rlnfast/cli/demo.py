"""``rlnfast demo``: the whole study workflow on a seeded synthetic cohort, from CT files to the report.

CT + node masks (written as .nii.gz) -> regions -> E/DEM maps -> first-order and fractal features
(`rlnfast extract`) -> screening, selection, classifier -> validation AUC with CI, sensitivity/specificity,
calibration, decision curve (`rlnfast analyze`) -> HTML report. With --segment a tiny nnU-Net is trained on
the training cases first, and the validation nodes are taken from its predictions (Dice reported).
"""
from __future__ import annotations

import time
from pathlib import Path

HELP = "run the whole workflow on a built-in synthetic cohort (CT -> features -> statistics -> report)"


def add_arguments(p):
    p.add_argument("-o", "--output", default="rlnfast-demo", help="output folder (default ./rlnfast-demo)")
    p.add_argument("--cases", type=int, default=150, help="patients in the synthetic cohort (default 150)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--shape", type=int, nargs=3, default=(40, 96, 96), metavar=("Z", "Y", "X"),
                   help="voxels per CT (default 40 96 96; spacing 0.8 x 0.8 x 2.5 mm)")
    p.add_argument("--backend", default="auto", choices=["auto", "cuda", "cupy", "cpu", "numpy"])
    p.add_argument("--jobs", type=int, default=1, help="extraction worker processes (default 1)")
    p.add_argument("--bootstrap", type=int, default=500, help="bootstrap replicates for CIs and bands (default 500)")
    p.add_argument("--segment", action="store_true",
                   help="also train a tiny nnU-Net on the training cases and extract from its predictions "
                        "(needs rlnfast[seg]; a few minutes on a CPU)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def demo_params(path: Path) -> Path:
    """The demo's parameter file: three image types (per-type bin widths), first-order and fractal features."""
    bins = {"Original": "binWidth: 5", "Elasticity": "binWidth: 10", "DEM": "binCount: 32"}
    types = ["Original", "Elasticity", "DEM"]
    classes = ["firstorder", "fractal", "size"]
    # fractal box sizes: the default (features.md: s_min = the smallest spacing, 0.8 mm here, doubling up to the
    # node's largest extent L) gives the demo's 6-16 mm nodes 4-5 sizes; fractalMinBoxSize would move s_min
    text = ["# rlnfast demo parameters (pyradiomics parameter-file format)", "setting:", "  voxelArrayShift: 0",
            "imageType:"]
    text += [f"  {t}: {{{bins[t]}}}" for t in types]
    text += ["featureClass:"] + [f"  {c}:" for c in classes]
    path.write_text("\n".join(text) + "\n")
    return path


def run(args) -> int:
    import pandas as pd

    from rlnfast import stats
    from rlnfast.cli import main as cli
    from rlnfast.segmentation.synthetic import make_cohort

    t0 = time.perf_counter()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    steps = []

    def step(name, t):
        steps.append((name, time.perf_counter() - t))

    t = time.perf_counter()
    batch, nodes_csv = make_cohort(out / "data", n_patients=args.cases, seed=args.seed, shape=tuple(args.shape))
    step(f"synthetic cohort: {args.cases} CTs written as .nii.gz", t)
    params = demo_params(out / "params.yaml")

    t = time.perf_counter()
    features_csv = out / "features.csv"
    cmd = ["extract", str(batch), "-p", str(params), "-o", str(features_csv), "--out-dir", str(out / "extract_cases"),
           "--backend", args.backend, "--jobs", str(args.jobs)] + (["--quiet"] if args.quiet else [])
    if cli(cmd) != 0:
        raise RuntimeError(f"rlnfast {' '.join(cmd)} failed: see {out / 'extract_cases' / 'errors.csv'}")
    step("rlnfast extract (E/DEM maps, first-order, fractal)", t)

    nodes = pd.read_csv(nodes_csv)
    feats = pd.read_csv(features_csv, float_precision="round_trip")
    feature_cols = [c for c in feats.columns if c.startswith(("original_", "E_original_", "DEM_original_"))]
    table = nodes.merge(feats[["ID", "label", *feature_cols]], on=["ID", "label"], how="inner")
    if len(table) != len(nodes):
        raise RuntimeError(f"{len(nodes) - len(table)} node(s) have no features")
    extra = None
    if args.segment:
        t = time.perf_counter()
        table, extra = _segment(out, batch, table, params, args)
        step("nnU-Net: train on training cases, segment validation cases, Dice; validation nodes predicted", t)
    table_path = out / "analysis_table.csv"
    table.to_csv(table_path, index=False)

    t = time.perf_counter()
    # the study's comparison: the DEM model is the headline, compared with conventional radiomics and node
    # size (original_size_ShortAxisDiameter: used as soon as the size class is extracted; skipped with a note
    # in the report while it is absent)
    res = stats.analyze(table, outcome="metastatic", cohort="cohort", patient="patient", model_set="DEM model",
                        n_bootstrap=args.bootstrap, seed=args.seed, out_dir=out / "report",
                        title="rlnfast demo: lymph-node metastasis from CT elasticity radiomics (synthetic)",
                        extra_sections=extra)
    step("rlnfast analyze (screening, selection, model, validation, report)", t)
    _print_summary(res, table, steps, time.perf_counter() - t0, out)
    return 0


def _segment(out: Path, batch: Path, table, params: Path, args):
    """Train the tiny nnU-Net on the training cases' masks, segment the validation CTs, score Dice, and
    replace the validation nodes by the predicted nodes (each labelled with the outcome of the true node it
    overlaps most; predicted nodes that overlap none are false positives and left out).

    Returns (new node table, report sections)."""
    import numpy as np
    import pandas as pd
    import SimpleITK as sitk

    from rlnfast import cohort, segmentation as seg

    b = pd.read_csv(batch)
    for col in ("Image", "Mask"):
        b[col] = [str(batch.parent / p) for p in b[col]]
    train, val = b[b.cohort == "training"], b[b.cohort == "validation"]
    raw = seg.nnunet_dataset(train[["ID", "Image", "Mask"]], dataset_id=501, name="RLNDemo",
                             out_raw_dir=out / "nnunet_raw", overwrite=True)
    model = seg.train_tiny_model(raw, out / "nnunet_work")
    # specks under 30 mm^3 (a 4 mm node is ~34 mm^3) are not nodes
    pred_batch, _ = seg.segment(model, val[["ID", "Image"]], out / "nnunet_pred", min_volume_mm3=30.0)
    pred_files = [str(out / "nnunet_pred" / f"{cid}.nii.gz") for cid in val.ID]
    ev = seg.seg_eval(pred_files, list(val.Mask))
    ev.write(out / "seg_eval")
    print(ev.text)
    res = cohort.run(pred_batch[["ID", "Image", "Mask"]], params, out / "extract_pred_cases",
                     output=out / "features_predicted.csv", backend=args.backend, progress=not args.quiet)
    feats = res.table
    rows = []
    truth = table.set_index(["ID", "label"])
    for cid, g in feats.groupby("ID", sort=False):
        node_map = sitk.GetArrayFromImage(sitk.ReadImage(pred_batch.set_index("ID").loc[cid, "Mask"]))
        gt = sitk.GetArrayFromImage(sitk.ReadImage(val.set_index("ID").loc[cid, "Mask"]))
        both = (node_map > 0) & (gt > 0)
        pairs = np.stack([node_map[both], gt[both]], 1)
        for _, r in g.iterrows():
            hit = pairs[pairs[:, 0] == r.label, 1]
            if hit.size == 0:
                continue
            gt_label = int(np.bincount(hit).argmax())
            meta = truth.loc[(cid, gt_label)]
            rows.append({"ID": cid, "label": int(r.label), "metastatic": int(meta.metastatic), "cohort": "validation",
                         "patient": meta.patient, **{c: r[c] for c in table.columns if c.startswith(
                             ("original_", "E_original_", "DEM_original_"))}})
    predicted = pd.DataFrame(rows)
    new_table = pd.concat([table[table.cohort == "training"], predicted], ignore_index=True)
    sections = [("Segmentation quality: tiny nnU-Net on the validation cases (Dice, HD95, node detection)",
                 ev.cases, ev.text),
                ("Segmentation summary (mean +- SD over validation cases)", ev.summary)]
    return new_table, sections


def _print_summary(res, table, steps, total, out):
    perf = res.performance
    print()
    print(f"rlnfast demo: {table.ID.nunique()} patients, {len(table)} nodes "
          f"({int(table.metastatic.sum())} metastatic), {len(res.features)} feature(s) in the model: "
          f"{', '.join(map(str, res.features))}")
    print(f"{'cohort':<11} {'nodes':>5} {'AUC (95% CI, DeLong)':>24} {'sensitivity':>11} {'specificity':>11}")
    for lab in res.settings["cohort_labels"]:
        sub = perf[perf.cohort == lab]
        auc = sub[(sub.measure == "AUC") & (sub.method == "DeLong")].iloc[0]
        sens = sub[sub.measure == "sensitivity"].iloc[0].estimate
        spec = sub[sub.measure == "specificity"].iloc[0].estimate
        n = int((table.cohort == lab).sum())
        print(f"{lab:<11} {n:>5} {auc.estimate:>8.3f} ({auc.ci_low:.3f}-{auc.ci_high:.3f}) {sens:>11.3f} {spec:>11.3f}")
    for name, secs in steps:
        print(f"  {secs:6.1f} s  {name}")
    print(f"  {total:6.1f} s  total")
    from rlnfast.cli.analyze import _print_comparison

    print("compared models:")
    _print_comparison(res)
    print(f"report: {res.files['report']}")
