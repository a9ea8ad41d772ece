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
    p.add_argument("--patient", default=None, help="patient id column (groups LASSO folds and bootstraps)")
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
    p.add_argument("--max-features", type=int, default=None, help="keep at most this many features (by AUC)")
    p.add_argument("--lasso", action="store_true", help="finish selection with cross-validated LASSO logistic regression")
    p.add_argument("--tie", choices=("sensitivity", "specificity"), default="sensitivity",
                   help="Youden tie rule: highest sensitivity (default) or specificity among tied optima")
    p.add_argument("--bootstrap", type=int, default=2000, metavar="N",
                   help="bootstrap replicates for the AUC CI and ROC band (default 2000; 0 = off)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--title", default="rlnfast analysis", help="report title")
    p.add_argument("--feature-set", action="append", default=[], metavar="NAME=GLOB[,GLOB...]",
                   help="a named feature set compared with the others (repeatable; '!GLOB' excludes; a name equal "
                        "to a default set replaces it). Defaults: 'DEM model=E_original_*,DEM_original_*,*_fractal_*', "
                        "'conventional radiomics=original_*,!*_fractal_*,!original_size_*', "
                        "'node size (short axis)=original_size_ShortAxisDiameter'; sets whose columns are absent are "
                        "skipped with a note")
    p.add_argument("--no-default-sets", action="store_true", help="compare only the sets given with --feature-set")
    p.add_argument("--model-set", default=None, metavar="NAME",
                   help="the feature set that is the headline model (e.g. 'DEM model'); default: a model on all "
                        "candidate features (--features), compared with the sets")
    p.add_argument("--size-rule", type=_float_or_none, default=10.0, metavar="MM",
                   help="compare with the rule 'short axis >= MM mm' (default 10, RECIST 1.1; 'none' = off)")
    p.add_argument("--outcome-label", default="lymph-node metastasis",
                   help="the outcome in words, for the report's summary (default: lymph-node metastasis)")


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
    sets = {} if args.no_default_sets else dict(stats.DEFAULT_FEATURE_SETS)
    for text in args.feature_set:
        name, pats = stats.parse_feature_set(text)
        sets[name] = pats
    res = stats.analyze(
        df, outcome=args.outcome, cohort=args.cohort, patient=args.patient, features=args.features,
        exclude=args.exclude, training_label=args.training_label, validation_label=args.validation_label,
        p_max=args.p_max, q_max=args.q_max, auc_min=args.auc_min, corr_max=args.corr_max, lasso=args.lasso,
        max_features=args.max_features, tie=args.tie, n_bootstrap=args.bootstrap, seed=args.seed,
        out_dir=args.output, title=args.title, feature_sets=sets, model_set=args.model_set,
        size_rule_mm=args.size_rule, outcome_label=args.outcome_label,
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
    _print_comparison(res)
    print(f"report: {res.files['report']}")
    return 0


def _print_comparison(res) -> None:
    """The compared models' validation AUCs (and the sets skipped), one line each."""
    lab = res.settings["cohort_labels"][1]
    for name, m in res.models.items():
        r = m.metrics[m.metrics.cohort == lab]
        if len(r) and "auc" in r.columns and r.auc.notna().iloc[0]:
            r = r.iloc[0]
            print(f"  {name} ({lab}): AUC {r.auc:.3f} ({r.auc_ci_low:.3f}-{r.auc_ci_high:.3f}, "
                  f"{'patient-clustered' if str(r.ci).startswith('patient') else 'node-level'}), "
                  f"sensitivity {r.sensitivity:.3f}, specificity {r.specificity:.3f}")
    for name, why in res.skipped_models:
        print(f"  {name}: {why}")
