"""The process context of the cohort runner's local workers (light: imports nothing heavy).

forkserver where the platform has it: a clean server process imports rlnfast, NumPy, pandas and SimpleITK
once (the module ``rlnfast._worker``), and each worker is a fork of it, so no worker pays those imports
again, and nothing is forked from a process that has run OpenMP or holds threads. spawn elsewhere.
``start()`` launches the server early (the CLI calls it before its own heavy imports), so the server's
imports overlap with the parent's.
"""
from __future__ import annotations

import multiprocessing as mp

WORKER_PRELOAD = "rlnfast._worker"


def process_context():
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload([WORKER_PRELOAD])
        return ctx
    return mp.get_context("spawn")


def start() -> None:
    """Start the forkserver now (no-op where there is none, or when it already runs)."""
    ctx = process_context()
    if ctx.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


def stop() -> None:
    """Stop the forkserver and wait for it (so it is reaped, and its CPU time is accounted to this process).
    The CLI calls it when its run ends; a library user's server simply ends with their process."""
    try:
        from multiprocessing import forkserver

        stop_server = getattr(forkserver._forkserver, "_stop", None)   # CPython's own (private) stop
        if stop_server is not None:
            stop_server()
    except Exception:  # noqa: BLE001 - best effort: the server also ends by itself when this process ends
        pass
