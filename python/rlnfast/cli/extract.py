"""``rlnfast extract``: a pyradiomics-style batch (CSV) or one case (IMAGE MASK)."""
from __future__ import annotations

import sys
from pathlib import Path

HELP = "extract features: a batch CSV (Image, Mask[, Label], ID...) or one IMAGE MASK pair"
USAGE = """rlnfast extract BATCH.csv [-p PARAMS] [-o OUTPUT] [--out-dir DIR] [--jobs N] [--dask local|ADDRESS] [...]
       rlnfast extract IMAGE MASK [-p PARAMS] [-o OUTPUT] [--backend BACKEND]"""
DESCRIPTION = """Extract features, in one of two forms:

  rlnfast extract BATCH.csv -p params.yaml -o features.csv    a cohort: one batch CSV (pyradiomics convention)
  rlnfast extract IMAGE MASK [-p params.yaml]                  one case: features printed (or -o file)

BATCH.csv has columns Image and Mask (paths; relative ones from the CSV's folder), optional Label (that label
only; empty or absent: every positive label, one row each, where pyradiomics takes label 1); every other column
(ID, ...) is copied to the output first, then Image, Mask (and Label). A batch run writes every finished case
under --out-dir and resumes where it stopped when run again; failing cases go to errors.csv and the run goes
on (a case past --case-timeout too). One run at a time per --out-dir: a second one is refused (or waits,
--wait-lock).

Exit codes: 0 all cases done, 1 some cases failed (errors.csv), 2 bad input or arguments, 3 the out-dir is
locked by another run, 4 an I/O error (disk full, permission denied)."""


def add_arguments(p):
    p.usage = USAGE
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="one batch CSV (BATCH.csv), or two files: IMAGE MASK")
    p.add_argument("-p", "--params", default=None, metavar="PARAMS",
                   help="pyradiomics-style parameter file (YAML or JSON); default: Original image, firstorder, "
                        "binWidth 25, every positive label")
    p.add_argument("-o", "--output", default=None, metavar="OUTPUT",
                   help="output table (.csv or .parquet); default: BATCH_features.csv beside BATCH.csv, or "
                        "printed for IMAGE MASK")
    p.add_argument("--out-dir", default=None, metavar="DIR",
                   help="folder for per-case results (resume) and errors.csv; default: OUTPUT's name + _cases")
    p.add_argument("--jobs", "-j", type=int, default=1, help="worker processes (1: in-process)")
    p.add_argument("--backend", default="auto", choices=["auto", "cuda", "cupy", "cpu", "numpy"],
                   help="compute backend (auto: cuda > cupy > cpu; numpy: the reference)")
    p.add_argument("--dask", default=None, metavar="local|ADDRESS",
                   help="run on Dask: 'local' (LocalCluster on 127.0.0.1 with --jobs workers) or a scheduler "
                        "address; default: no Dask")
    p.add_argument("--chunk-size", type=int, default=8, metavar="N", help="cases per task for process pools and Dask")
    p.add_argument("--prefetch", type=int, default=2, metavar="N", help="cases read ahead while computing")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.add_argument("--case-timeout", type=float, default=None, metavar="SECONDS",
                   help="seconds one case may take before it is stopped and listed in errors.csv "
                        "(default 3600; 0: no limit; holds under --jobs and --dask too)")
    p.add_argument("--content-hash", action="store_true",
                   help="resume on the inputs' content (SHA-256), not their size and modification time")
    p.add_argument("--wait-lock", type=float, default=0.0, metavar="SECONDS",
                   help="wait this long for another run on the same --out-dir to finish (default: refuse at once)")


def run(args) -> int:
    from rlnfast import _forkserver

    if len(args.inputs) == 1 and args.jobs > 1 and not args.dask and args.backend not in ("cuda", "cupy"):
        _forkserver.start()   # the workers' server imports rlnfast while this process imports the rest
    try:
        return _run(args)
    finally:
        _forkserver.stop()


def _run(args) -> int:
    from rlnfast import cohort

    if len(args.inputs) == 2:
        return _single(args)
    if len(args.inputs) != 1:
        raise ValueError(f"expected one batch CSV (BATCH.csv) or two files (IMAGE MASK), got {len(args.inputs)} "
                         f"arguments: {' '.join(args.inputs)}")
    batch = Path(args.inputs[0])
    output = Path(args.output) if args.output else batch.with_name(batch.stem + "_features.csv")
    out_dir = Path(args.out_dir) if args.out_dir else output.with_name(output.name.split(".")[0] + "_cases")
    executor, client, cluster = None, None, None
    try:
        if args.dask:
            gpu = args.backend in ("cuda", "cupy")
            executor, client, cluster = cohort.dask_executor(args.dask, n_workers=max(1, args.jobs), gpu=gpu)
        elif args.jobs > 1:
            executor = cohort.local_executor(args.jobs, args.backend)
        timeout = cohort.DEFAULT_CASE_TIMEOUT if args.case_timeout is None else args.case_timeout
        res = cohort.run(batch, args.params, out_dir, executor=executor, backend=args.backend, output=output,
                         chunk_size=args.chunk_size, prefetch=args.prefetch, progress=not args.quiet,
                         case_timeout=timeout, content_hash=args.content_hash, lock_wait=args.wait_lock)
    finally:
        if executor is not None and hasattr(executor, "shutdown"):
            executor.shutdown()
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    n_cases = res.computed + res.skipped
    print(f"{len(res.table)} regions from {n_cases} case(s) ({res.computed} computed, {res.skipped} already done), "
          f"{len(res.errors)} failed -> {res.output}")
    if len(res.errors):
        print(f"failures listed in {res.out_dir / 'errors.csv'}", file=sys.stderr)
    return 0 if len(res.errors) == 0 else 1


def _single(args) -> int:
    import pandas as pd

    import rlnfast

    image, mask = args.inputs
    df = rlnfast.extract(image, mask, args.params, backend=args.backend)
    if args.output:
        from rlnfast.cohort import write_table

        write_table(df, args.output)
        print(f"{len(df)} region(s) -> {args.output}")
        return 0
    feats = [c for c in df.columns if not c.startswith("diagnostics_")]
    with pd.option_context("display.max_rows", None, "display.width", 200, "display.float_format", "{:.6g}".format):
        print(df[feats].set_index("label").T.to_string())
    return 0
