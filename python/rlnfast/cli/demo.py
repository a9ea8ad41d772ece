"""``rlnfast demo``: the whole study workflow on a seeded synthetic cohort, from CT files to the report.

CT + node masks (written as .nii.gz) -> regions -> E/DEM maps -> first-order and fractal features
(`rlnfast extract`) -> screening, selection, classifier -> validation AUC with CI, sensitivity/specificity,
calibration, decision curve (`rlnfast analyze`) -> HTML report. With --segment a tiny nnU-Net is trained on
training cases first, and the validation nodes are taken from its predictions: Dice, node detection and the
validation AUC on the predicted nodes beside the AUC on the drawn masks are reported.
"""
from __future__ import annotations

import resource
import time
from pathlib import Path

HELP = "run the whole workflow on a built-in synthetic cohort (CT -> features -> statistics -> report)"

DEMO_SHAPE = (40, 96, 96)
# --segment: smaller CTs whose nodes lie in fat (as mediastinal nodes do). In the default cohort a node has
# the mean HU of the soft tissue around it (only its texture differs), which no small model finds.
SEGMENT_SHAPE = (24, 64, 64)
SEGMENT_FAT_HALO_MM = 2.5
SEGMENT_TRAIN_CTS = 40          # training CTs the tiny nnU-Net learns from (the statistics use all of them)
# no augmentation (as nnU-Net's nnUNetTrainerNoDA): these clean synthetic CTs need none, and with nnU-Net's
# default augmentation a short training leaves the outlines a voxel off. nnU-Net's fold 'all': every training CT
# is learnt from (fold 0 would keep 8 of the 40 for nnU-Net's own validation, which the demo does not use).
# 1200 iterations: with 600 nearly every predicted node took in ~16 fat voxels at its outline, which moves
# boundary-sensitive first-order features (E/HU Minimum, Variance, Kurtosis) of the predicted nodes away from
# those of the drawn masks (validation AUC 0.12 below the drawn masks'); with 1200, ~4 voxels and 0.03 below.
SEGMENT_TRAINING = {"epochs": 4, "iterations_per_epoch": 300, "augmentation": False, "fold": "all"}


def add_arguments(p):
    p.add_argument("-o", "--output", default="rlnfast-demo", help="output folder (default ./rlnfast-demo)")
    p.add_argument("--cases", type=int, default=150, help="patients in the synthetic cohort (default 150)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--shape", type=int, nargs=3, default=None, metavar=("Z", "Y", "X"),
                   help="voxels per CT (default 40 96 96, with --segment 24 64 64; spacing 0.8 x 0.8 x 2.5 mm)")
    p.add_argument("--backend", default="auto", choices=["auto", "cuda", "cupy", "cpu", "numpy"],
                   help="compute backend (auto: cuda > cupy > cpu; numpy: the reference)")
    p.add_argument("--jobs", type=int, default=1, help="extraction worker processes (default 1)")
    p.add_argument("--bootstrap", type=int, default=500, help="bootstrap replicates for CIs and bands (default 500)")
    p.add_argument("--segment", action="store_true",
                   help="also train a tiny nnU-Net on training cases (nodes in fat, smaller CTs) and take the "
                        "validation nodes from its predictions (needs rlnfast[seg]; about 4.5 CPU minutes)")
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


def _cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (the nnU-Net training child)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run(args) -> int:
    import pandas as pd

    from rlnfast import stats
    from rlnfast.cli import main as cli
    from rlnfast.segmentation.synthetic import make_cohort
    from rlnfast.stats.report import write_report

    t0, c0 = time.perf_counter(), _cpu_seconds()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    steps = []
    shape = tuple(args.shape) if args.shape is not None else (SEGMENT_SHAPE if args.segment else DEMO_SHAPE)

    def step(name, t, c):
        steps.append((name, time.perf_counter() - t, _cpu_seconds() - c))

    t, c = time.perf_counter(), _cpu_seconds()
    batch, nodes_csv = make_cohort(out / "data", n_patients=args.cases, seed=args.seed, shape=shape,
                                   fat_halo_mm=SEGMENT_FAT_HALO_MM if args.segment else 0.0)
    step(f"synthetic cohort: {args.cases} CTs of {' x '.join(map(str, shape))} voxels written as .nii.gz"
         + (f" (nodes in {SEGMENT_FAT_HALO_MM:g} mm of fat)" if args.segment else ""), t, c)
    params = demo_params(out / "params.yaml")

    t, c = time.perf_counter(), _cpu_seconds()
    features_csv = out / "features.csv"
    cmd = ["extract", str(batch), "-p", str(params), "-o", str(features_csv), "--out-dir", str(out / "extract_cases"),
           "--backend", args.backend, "--jobs", str(args.jobs)] + (["--quiet"] if args.quiet else [])
    if cli(cmd) != 0:
        raise RuntimeError(f"rlnfast {' '.join(cmd)} failed: see {out / 'extract_cases' / 'errors.csv'}")
    step("rlnfast extract (E/DEM maps, first-order, fractal)", t, c)

    nodes = pd.read_csv(nodes_csv)
    feats = pd.read_csv(features_csv, float_precision="round_trip")
    feature_cols = [c for c in feats.columns if c.startswith(("original_", "E_original_", "DEM_original_"))]
    table = nodes.merge(feats[["ID", "label", *feature_cols]], on=["ID", "label"], how="inner")
    if len(table) != len(nodes):
        raise RuntimeError(f"{len(nodes) - len(table)} node(s) have no features")
    seg_res = None
    drawn = table
    if args.segment:
        t, c = time.perf_counter(), _cpu_seconds()
        table, seg_res = _segment(out, batch, table, params, args)
        step(f"nnU-Net: train a tiny model on {seg_res['training_cts']} training CTs, segment the "
             f"{seg_res['validation_cts']} validation CTs, Dice; validation nodes predicted", t, c)
    table_path = out / "analysis_table.csv"
    table.to_csv(table_path, index=False)

    t, c = time.perf_counter(), _cpu_seconds()
    title = "rlnfast demo: lymph-node metastasis from CT elasticity radiomics (synthetic)"
    # the study's comparison: the DEM model is the headline, compared with conventional radiomics and node
    # size (original_size_ShortAxisDiameter: used as soon as the size class is extracted; skipped with a note
    # in the report while it is absent)
    res = stats.analyze(table, outcome="metastatic", cohort="cohort", patient="patient", model_set="DEM model",
                        n_bootstrap=args.bootstrap, seed=args.seed)
    extra = None
    if seg_res is not None:
        extra = _segment_check(res, drawn, table, seg_res, out, n_boot=args.bootstrap, seed=args.seed)
    write_report(res, out / "report", title=title, extra_sections=extra)
    step("rlnfast analyze (screening, selection, model, validation, report)", t, c)
    _print_summary(res, table, steps, time.perf_counter() - t0, _cpu_seconds() - c0, out, seg_res)
    return 0


def _training_min_volume(masks) -> float:
    """The smallest connected component (26-connected, mm^3) in the training masks: nnU-Net-style
    post-processing removes predicted components smaller than any node the model was trained on."""
    import numpy as np

    from rlnfast.io import read_volume
    from rlnfast.segmentation.nodes import split_nodes

    smallest = np.inf
    for m in masks:
        v = read_volume(m)
        _, t = split_nodes((v.array > 0).astype(np.uint8), v.spacing)
        if len(t):
            smallest = min(smallest, float(t["volume_mm3"].min()))
    return float(smallest) if np.isfinite(smallest) else 0.0


def _segment(out: Path, batch: Path, table, params: Path, args):
    """Train the tiny nnU-Net on training cases' masks, segment the validation CTs, remove components smaller
    than the smallest training node, score Dice and node detection, and replace the validation nodes by the
    predicted nodes (each labelled with the outcome of the true node it overlaps most; predicted nodes that
    overlap none are false positives and left out).

    Returns (new node table, dict of what was done and measured)."""
    import numpy as np
    import pandas as pd
    import SimpleITK as sitk

    from rlnfast import cohort, segmentation as seg

    b = pd.read_csv(batch)
    for col in ("Image", "Mask"):
        b[col] = [str(batch.parent / p) for p in b[col]]
    train, val = b[b.cohort == "training"], b[b.cohort == "validation"]
    train = train.iloc[:SEGMENT_TRAIN_CTS]
    raw = seg.nnunet_dataset(train[["ID", "Image", "Mask"]], dataset_id=501, name="RLNDemo",
                             out_raw_dir=out / "nnunet_raw", overwrite=True)
    t, c = time.perf_counter(), _cpu_seconds()
    model = seg.train_tiny_model(raw, out / "nnunet_work", seed=args.seed, **SEGMENT_TRAINING)
    train_wall, train_cpu = time.perf_counter() - t, _cpu_seconds() - c
    min_vol = _training_min_volume(train.Mask)
    # one torch thread: a model this small runs several times slower on 2 threads of a busy machine
    pred_batch, _ = seg.segment(model, val[["ID", "Image"]], out / "nnunet_pred", folds=(SEGMENT_TRAINING["fold"],),
                                min_volume_mm3=min_vol, threads=1)
    node_files = list(pred_batch.set_index("ID").loc[list(val.ID), "Mask"])
    ev = seg.seg_eval(node_files, list(val.Mask))
    ev.cases.insert(0, "ID", list(val.ID))
    ev.write(out / "seg_eval")
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
    cases = ev.cases
    tm, tg, tfp = int(cases["matched"].sum()), int(cases["gt_nodes"].sum()), int(cases["false_positive"].sum())
    dice = ev.summary.set_index("metric").loc["dice"]
    info = {"training_cts": len(train), "validation_cts": len(val), "train_wall_s": train_wall,
            "train_cpu_s": train_cpu, "min_volume_mm3": min_vol, "dice_mean": float(dice["mean"]),
            "dice_sd": float(dice["sd"]), "nodes_truth": tg, "nodes_matched": tm, "false_positive": tfp,
            "sensitivity": tm / tg if tg else float("nan"),
            "precision": tm / (tm + tfp) if tm + tfp else float("nan"),
            "predicted_nodes_used": len(predicted), "seg_eval": ev}
    return new_table, info


def _segment_check(res, drawn, table, info: dict, out: Path, n_boot: int = 500, seed: int = 0):
    """The frozen model's validation AUC on the drawn masks beside the one on the predicted nodes, with a
    patient-level bootstrap CI of their difference; writes ``segment_check.csv`` (everything the demo's
    --segment promises, one row) and returns the report sections."""
    import pandas as pd

    from rlnfast.stats.model import predict_risk
    from rlnfast.stats.roc import delong_auc

    val = drawn[drawn.cohort == "validation"]
    pred = table[table.cohort == "validation"]
    risk_drawn = predict_risk(res.model, val, res.features)
    auc_drawn = delong_auc(val.metastatic.to_numpy(int), risk_drawn).auc
    perf = res.performance
    row = perf[(perf.cohort == "validation") & (perf.measure == "AUC") & (perf.method == "DeLong")].iloc[0]
    lo, hi = _auc_gap_ci(pred.metastatic.to_numpy(int), predict_risk(res.model, pred, res.features),
                         pred.patient.to_numpy(), val.metastatic.to_numpy(int), risk_drawn, val.patient.to_numpy(),
                         n_boot=n_boot, seed=seed)
    info.update(auc_drawn=float(auc_drawn), auc_predicted=float(row.estimate),
                auc_gap=float(row.estimate - auc_drawn), auc_gap_ci_low=lo, auc_gap_ci_high=hi, nodes_drawn=len(val))
    keys = ["training_cts", "validation_cts", "train_wall_s", "train_cpu_s", "min_volume_mm3", "dice_mean", "dice_sd",
            "nodes_truth", "nodes_matched", "false_positive", "sensitivity", "precision", "nodes_drawn",
            "predicted_nodes_used", "auc_drawn", "auc_predicted", "auc_gap", "auc_gap_ci_low", "auc_gap_ci_high"]
    check = pd.DataFrame([{k: info[k] for k in keys}])
    check.to_csv(out / "segment_check.csv", index=False)
    ev = info["seg_eval"]
    note = (f"{_demo_disclaimer(info)} Predicted components smaller than the smallest training node "
            f"({info['min_volume_mm3']:.0f} mm^3) were removed. The validation AUC of the frozen model is "
            f"{info['auc_predicted']:.3f} on the predicted nodes and {info['auc_drawn']:.3f} on the drawn masks "
            f"(difference {info['auc_gap']:+.3f}, 95% CI {info['auc_gap_ci_low']:+.3f} to {info['auc_gap_ci_high']:+.3f}, "
            "bootstrap of the validation patients).")
    return [("Segmentation quality: tiny nnU-Net on the validation cases (Dice, HD95, node detection)",
             ev.cases, note + "\n" + ev.text),
            ("Segmentation summary (mean +- SD over validation cases)", ev.summary),
            ("Predicted nodes vs drawn masks: validation AUC of the same frozen model", check)]


def _auc_gap_ci(y_p, s_p, g_p, y_d, s_d, g_d, n_boot: int = 500, seed: int = 0, conf_level: float = 0.95):
    """Percentile CI of AUC(predicted nodes) - AUC(drawn masks) from one bootstrap of the validation patients:
    each replicate draws patients with replacement and takes both AUCs on those patients' nodes (paired by
    patient; replicates without both classes on either side are dropped). (NaN, NaN) when n_boot < 1."""
    import numpy as np
    from scipy.stats import rankdata

    def auc(y, s):
        n1 = int(y.sum())
        n0 = len(y) - n1
        if n1 == 0 or n0 == 0:
            return np.nan
        return (rankdata(s)[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)

    if n_boot < 1:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    pats = np.unique(np.concatenate([np.asarray(g_p), np.asarray(g_d)]))
    ip = {p: np.flatnonzero(g_p == p) for p in pats}
    idr = {p: np.flatnonzero(g_d == p) for p in pats}
    diffs = []
    for _ in range(int(n_boot)):
        draw = rng.choice(pats, len(pats))
        a = np.concatenate([ip[p] for p in draw])
        b = np.concatenate([idr[p] for p in draw])
        d = auc(y_p[a], s_p[a]) - auc(y_d[b], s_d[b])
        if np.isfinite(d):
            diffs.append(d)
    if not diffs:
        return float("nan"), float("nan")
    alpha = (1 - conf_level) / 2
    lo, hi = np.quantile(diffs, [alpha, 1 - alpha])
    return float(lo), float(hi)


def _demo_disclaimer(info: dict) -> str:
    return (f"The tiny nnU-Net is a demonstration of the pipeline, not a model for real CT: it was trained for "
            f"{info['train_wall_s']:.0f} s on {info['training_cts']} synthetic CTs whose nodes lie in fat.")


def _print_summary(res, table, steps, total, total_cpu, out, seg_res=None):
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
    if seg_res is not None:
        s = seg_res
        print()
        print(_demo_disclaimer(s))
        print(f"  segmentation of the {s['validation_cts']} validation CTs: Dice {s['dice_mean']:.3f} +- "
              f"{s['dice_sd']:.3f}; nodes {s['nodes_matched']} of {s['nodes_truth']} found (sensitivity "
              f"{s['sensitivity']:.3f}), {s['false_positive']} false positive (precision {s['precision']:.3f}), "
              f"after removing components under {s['min_volume_mm3']:.0f} mm^3 (the smallest training node)")
        print(f"  validation AUC of the same model: {s['auc_predicted']:.3f} on the {s['predicted_nodes_used']} "
              f"predicted nodes, {s['auc_drawn']:.3f} on the {s['nodes_drawn']} drawn masks "
              f"(difference {s['auc_gap']:+.3f}, 95% CI {s['auc_gap_ci_low']:+.3f} to {s['auc_gap_ci_high']:+.3f}, "
              "bootstrap of the validation patients)")
    print()
    print(f"  {'wall s':>7} {'CPU s':>7}")
    for name, secs, cpu in steps:
        print(f"  {secs:7.1f} {cpu:7.1f}  {name}")
    print(f"  {total:7.1f} {total_cpu:7.1f}  total")
    from rlnfast.cli.analyze import _print_comparison

    print("compared models:")
    _print_comparison(res)
    print(f"report: {res.files['report']}")
