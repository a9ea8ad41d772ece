"""``rlnfast analyze``: the study's statistics on a feature table, written as tables, figures and an HTML report."""
from __future__ import annotations

HELP = "screen and select features, fit and validate a classifier, write tables, plots and an HTML report"
DESCRIPTION = (
    "Runs rlnfast.stats.analyze on a feature table (CSV, TSV or Parquet; one row per node): univariate "
    "screening, feature selection, a classifier fitted on the training cohort, the Youden threshold frozen "
    "for validation, AUC with DeLong CI, sensitivity/specificity/PPV/NPV, calibration and decision curves. "
    "Writes tables/*.csv, figures/*.png and report.html to the output folder."
)


def _float_or_none(text: str):
    return None if text.lower() in ("none", "off", "") else float(text)


def add_arguments(p):
    p.add_argument("table", help="feature table: .csv, .tsv or .parquet, one row per node")
    p.add_argument("--outcome", required=True, help="outcome column (0/1; 1 = metastatic)")
    p.add_argument("--cohort", required=True, help="cohort column (training/validation labels)")
    p.add_argument("--patient", default=None, help="patient id column (groups LASSO folds and bootstraps; default: none, each row its own group)")
    p.add_argument("--features", nargs="+", default=None, metavar="COL",
                   help="feature columns to consider (default: every other column except diagnostics_* and the "
                        "node/case identifiers ID, label, source_label, component, Image, Mask, Label)")
    p.add_argument("--exclude", nargs="+", default=(), metavar="COL",
                   help="columns that are not features (ids, labels), when --features is not given")
    p.add_argument("--training-label", default="training", help="cohort value of the training rows (default: training)")
    p.add_argument("--validation-label", default="validation",
                   help="cohort value of the validation rows (default: validation)")
    p.add_argument("-o", "--output", required=True, metavar="REPORT_DIR", help="output folder")
    p.add_argument("--p-max", type=_float_or_none, default=0.05, help="max Mann-Whitney p (default 0.05; 'none' = off)")
    p.add_argument("--q-max", type=_float_or_none, default=None, help="max Benjamini-Hochberg q (default off)")
    p.add_argument("--auc-min", type=_float_or_none, default=0.6, help="min univariate AUC (default 0.6; 'none' = off)")
    p.add_argument("--corr-max", type=_float_or_none, default=0.8,
                   help="max |Spearman r| between kept features (default 0.8; 'none' = off)")
    p.add_argument("--max-features", type=int, default=None, help="keep at most this many features (by AUC; default: no limit)")
    p.add_argument("--lasso", action="store_true", help="finish selection with cross-validated LASSO logistic regression")
    p.add_argument("--tie", choices=("sensitivity", "specificity"), default="sensitivity",
                   help="Youden tie rule: highest sensitivity (default) or specificity among tied optima")
    p.add_argument("--bootstrap", type=int, default=2000, metavar="N",
                   help="bootstrap replicates for the AUC CI and ROC band (default 2000; 0 = off)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--title", default="rlnfast analysis", help="report title")


def _read_table(path: str):
    from pathlib import Path

    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"feature table {path!r} not found")
    suffix = p.suffix.lower()
    if suffix == ".parquet":
        return pd.read_parquet(p)
    if suffix in (".tsv", ".tab"):
        return pd.read_csv(p, sep="\t")
    return pd.read_csv(p)


def run(args) -> int:
    from rlnfast import stats

    df = _read_table(args.table)
    res = stats.analyze(
        df, outcome=args.outcome, cohort=args.cohort, patient=args.patient, features=args.features,
        exclude=args.exclude, training_label=args.training_label, validation_label=args.validation_label,
        p_max=args.p_max, q_max=args.q_max, auc_min=args.auc_min, corr_max=args.corr_max, lasso=args.lasso,
        max_features=args.max_features, tie=args.tie, n_bootstrap=args.bootstrap, seed=args.seed,
        out_dir=args.output, title=args.title,
    )
    perf = res.performance
    print(f"features in the model: {', '.join(map(str, res.features))}")
    print(f"threshold (Youden on {args.training_label}): {res.threshold.threshold:.4g}")
    for lab in res.settings["cohort_labels"]:
        auc = perf[(perf.cohort == lab) & (perf.measure == "AUC") & (perf.method == "DeLong")].iloc[0]
        sens = perf[(perf.cohort == lab) & (perf.measure == "sensitivity")].iloc[0]
        spec = perf[(perf.cohort == lab) & (perf.measure == "specificity")].iloc[0]
        print(f"{lab}: AUC {auc.estimate:.3f} ({auc.ci_low:.3f}-{auc.ci_high:.3f}), "
              f"sensitivity {sens.estimate:.3f}, specificity {spec.estimate:.3f}")
    print(f"report: {res.files['report']}")
    return 0
