"""The ``rlnfast`` command line: a thin layer over the Python API.

Each subcommand lives in ``rlnfast/cli/<name>.py`` and defines ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``; modules are imported only to build the parser (they import heavy libraries lazily).
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

# subcommand -> module under rlnfast.cli, in the order `rlnfast --help` lists them
COMMANDS = {
    "demo": "demo",
    "extract": "extract",
    "maps": "maps",
    "analyze": "analyze",
    "segment": "segment",
    "nnunet-dataset": "nnunet_dataset",
    "seg-eval": "seg_eval",
    "info": "info",
}


def build_parser() -> argparse.ArgumentParser:
    from rlnfast._version import __version__

    parser = argparse.ArgumentParser(
        prog="rlnfast",
        description="Fast CT radiomics of lymph nodes: elasticity maps, pyradiomics-exact first-order and "
        "fractal features, cohort runs, statistics and reports.",
    )
    parser.add_argument("--version", action="version", version=f"rlnfast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        if importlib.util.find_spec(f"rlnfast.cli.{module}") is None:
            continue
        mod = importlib.import_module(f"rlnfast.cli.{module}")
        p = sub.add_parser(name, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP))
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    from rlnfast._backends import BackendUnavailable
    from rlnfast.cohort import OutDirLocked

    # Expected failures are one line on stderr and an exit code (EXIT_CODES), never a traceback.
    try:
        return int(args._run(args) or 0)
    except (ValueError, FileNotFoundError, BackendUnavailable, ImportError) as exc:
        # bad input, a missing backend or optional extra: one clear line, no traceback
        print(f"rlnfast {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_CODES["input"]
    except OutDirLocked as exc:
        print(f"rlnfast {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_CODES["locked"]
    except OSError as exc:   # disk full, permission denied, a file vanished: the OS's words, one line
        print(f"rlnfast {args.command}: error: {exc.strerror or exc}"
              + (f": {exc.filename!r}" if getattr(exc, "filename", None) else ""), file=sys.stderr)
        return EXIT_CODES["io"]
    except KeyboardInterrupt:  # pragma: no cover
        return 130


# Exit codes of every command: 0 done, 1 done with failed cases (extract: errors.csv), then these.
EXIT_CODES = {"input": 2, "locked": 3, "io": 4}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
