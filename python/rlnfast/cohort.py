"""Cohort runs: many cases in the pyradiomics batch convention, resumable, local or distributed.

    rlnfast.cohort.run(batch, params, out_dir, executor=None, backend="auto")

A batch is a CSV (or DataFrame) with columns ``Image`` and ``Mask``, optional ``Label``; every other
column (``ID``, ...) is copied to the output first. Relative paths resolve from the CSV's folder.

How a run never loses work: each finished case is written atomically under ``out_dir/cases`` (temporary
file, then rename) with a sidecar holding the hash of the parameters and the identity (path, size,
modification time) of its input files. A rerun skips cases whose sidecar matches, recomputes those whose
parameters or inputs changed, and retries failed ones. A failing case (missing or corrupt file, geometry
mismatch, ...) is recorded in ``errors.csv`` with the reason and the run goes on. The merged table is
always assembled from the per-case files, in batch order, and written atomically, so an interrupted and
resumed run produces the same bytes as an uninterrupted one.

Throughput: a chunk of cases is one task; inside it a bounded thread pool reads and decodes the next
files (gzip NIfTI decoding is the slow part) while the current case computes, and the first-order kernel
runs once for the regions of all cases of a chunk. Memory is bounded by the chunk size and prefetch depth.
Tasks go to any ``concurrent.futures.Executor``-like object: serial (default), a local process pool
(``jobs``; one process per GPU with its own ``CUDA_VISIBLE_DEVICES`` on GPU backends) or Dask distributed
(``client.get_executor()``).
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ._forkserver import WORKER_PRELOAD, process_context  # noqa: F401  (the workers' process context)
from ._version import __version__
from .io import as_if_opened
from .params import Params, load_params

CASE_DIR = "cases"
DEFAULT_CASE_TIMEOUT = 3600.0   # seconds one case may take by default (run(case_timeout=...), --case-timeout)
THROTTLE_ENV = "RLNFAST_THROTTLE_S"   # testing aid: sleep this long after each case
STALL_ENV = "RLNFAST_STALL_ID"         # testing aid: the case with this ID stalls (the per-case time limit fires)


# ---------------------------------------------------------------------------------------------- batch
def read_batch(batch, base_dir=None) -> pd.DataFrame:
    """The batch table with absolute ``Image``/``Mask`` paths (relative ones resolve from the CSV's folder)."""
    if isinstance(batch, (str, os.PathLike)):
        path = Path(batch)
        if not path.exists():
            raise FileNotFoundError(f"batch file {str(path)!r} does not exist")
        try:
            df = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (ValueError, UnicodeDecodeError) as exc:   # pandas' ParserError / EmptyDataError are ValueErrors
            raise ValueError(f"batch file {str(path)!r} is not a readable CSV: {str(exc).strip()}") from None
        base_dir = path.resolve().parent if base_dir is None else Path(base_dir)
        where = f"batch file {str(path)!r}"
    elif isinstance(batch, pd.DataFrame):
        df = batch.copy()
        base_dir = Path(base_dir) if base_dir is not None else Path.cwd()
        where = "batch table"
    else:
        raise ValueError(f"batch: expected a CSV path or a pandas DataFrame, got {type(batch).__name__}")
    missing = [c for c in ("Image", "Mask") if c not in df.columns]
    if missing:
        from .params import did_you_mean

        hints = "".join(did_you_mean(m, [c for c in df.columns if c not in ("Image", "Mask")]) for m in missing)
        raise ValueError(f"{where}: missing column(s) {missing}{hints} (pyradiomics batch convention: Image, Mask, "
                         f"optional Label); found {list(df.columns)}")
    if len(df) == 0:
        raise ValueError(f"{where}: no cases")
    df = df.reset_index(drop=True)

    def row_name(i) -> str:
        # a CSV's line number (header on line 1), and the row's ID where there is one
        name = f"line {i + 2}" if isinstance(batch, (str, os.PathLike)) else f"row {i}"
        if "ID" in df.columns and str(df.at[i, "ID"]).strip():
            name += f" (ID {str(df.at[i, 'ID']).strip()!r})"
        return name

    for col, what in (("Image", "the image file (NIfTI, NRRD, DICOM folder, ...)"), ("Mask", "the label map file")):
        for i, v in enumerate(df[col]):
            if v is None or (isinstance(v, float) and np.isnan(v)) or not str(v).strip():
                raise ValueError(f"{where}, {row_name(i)}, column {col!r}: empty; expected a path to {what}")
    for col in ("Image", "Mask"):
        df[col] = [str(p) if os.path.isabs(str(p)) else str((base_dir / str(p)).resolve()) for p in df[col]]
    if "Label" in df.columns:
        for i, v in enumerate(df["Label"]):
            v = str(v).strip()
            if v and not v.lstrip("-").isdigit():
                raise ValueError(f"{where}, {row_name(i)}, column 'Label': {v!r} is not an integer; expected a label "
                                 "value, or an empty cell for every positive label")
    return df.reset_index(drop=True)


def _file_identity(path: str, content: bool = False) -> list:
    """[path, size, mtime] of an input, or with ``content`` [path, sha256 of its bytes] (a DICOM folder: of
    its files' names and bytes), for file systems where the modification time does not follow a change."""
    try:
        if not content:
            st = os.stat(path)
            return [path, st.st_size, st.st_mtime_ns]
        h = hashlib.sha256()
        files = sorted(Path(path).rglob("*")) if os.path.isdir(path) else [Path(path)]
        for f in files:
            if f.is_file():
                h.update(str(f.relative_to(path) if os.path.isdir(path) else f.name).encode() + b"\0")
                with open(f, "rb") as fh:
                    for block in iter(lambda: fh.read(1 << 22), b""):
                        h.update(block)
        return [path, "sha256", h.hexdigest()]
    except OSError:
        return [path, None, None]


def case_key(row: dict, params_hash: str, content_hash: bool = False) -> str:
    """Hash of the parameters, rlnfast's version and the identity of the case's input files (size and
    modification time, or their content with ``content_hash``). The batch row's other columns (ID, cohort,
    outcome, ...) change no feature: the merged table always takes them from the current batch."""
    ident = {"params": params_hash, "version": __version__, "image": _file_identity(row["Image"], content_hash),
             "mask": _file_identity(row["Mask"], content_hash), "label": str(row.get("Label", "")).strip()}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()


def params_hash(p: Params) -> str:
    from .extract import _jsonable

    return hashlib.sha256(json.dumps(_jsonable(p.to_dict()), sort_keys=True, default=str).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------- files
def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` atomically (temporary file, fsync, rename), with the mode a new file gets (umask)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        as_if_opened(tmp)   # mkstemp's 0600 -> 0666 less the umask, as open() would
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_table(df: pd.DataFrame, path, na_rep: str = "") -> Path:
    """Write a table atomically: CSV (missing values as ``na_rep``), or Parquet when the path ends in .parquet."""
    path = Path(path)
    if path.suffix == ".parquet":
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
        os.close(fd)
        try:
            df.to_parquet(tmp, index=False)
            as_if_opened(tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    else:
        atomic_write_text(path, df.to_csv(index=False, lineterminator="\n", na_rep=na_rep))
    return path


def _case_paths(out_dir: Path, index: int) -> tuple[Path, Path, Path]:
    d = out_dir / CASE_DIR
    return d / f"{index:06d}.csv", d / f"{index:06d}.done.json", d / f"{index:06d}.error.json"


def _is_done(out_dir: Path, index: int, key: str) -> bool:
    table, done, _ = _case_paths(out_dir, index)
    if not (table.exists() and done.exists()):
        return False
    try:
        return json.loads(done.read_text()).get("key") == key
    except (OSError, ValueError):
        return False


# ---------------------------------------------------------------------------------------------- work
@dataclass
class CaseTask:
    index: int
    row: dict
    key: str


def _load_case(task: CaseTask, p: Params):
    """Read one case and find its regions (runs in the prefetch threads)."""
    from .extract import load_inputs
    from .regions import find_regions

    row = task.row
    img, lab = load_inputs(row["Image"], row["Mask"], geometry_tolerance=p.settings.get("geometryTolerance"),
                           correct_mask=bool(p.settings.get("correctMask")), settings=p.settings)
    label = str(row.get("Label", "")).strip()
    labels = int(label) if label else p.settings.get("label")
    regions = find_regions(lab.array, labels, connected_components=bool(p.settings.get("connectedComponents")),
                           connectivity=int(p.settings.get("connectivity", 26)),
                           min_voxels=int(p.settings.get("minimumComponentVoxels", 1)), name=lab.name,
                           copy=False)   # read from a file here: nothing else holds it
    return img, regions


def _case_table(task: CaseTask, features: pd.DataFrame, id_columns) -> pd.DataFrame:
    front = pd.DataFrame({c: [task.row[c]] * len(features) for c in id_columns})
    return pd.concat([front, features.reset_index(drop=True)], axis=1)


def run_chunk(tasks: list, params: dict, out_dir: str, backend: str = "auto", prefetch: int = 2,
              id_columns=None, pack_size: int = 4, on_case=None, case_timeout: float = 0.0,
              on_group=None, isolate: bool = False, threads: int | None = None) -> list[dict]:
    """Compute and write a chunk of cases (one executor task). Returns one status dict per case.

    A bounded thread pool reads and decodes up to ``prefetch`` cases ahead while the current group of
    ``pack_size`` cases computes (their regions go through the first-order kernel together). At most
    ``prefetch + pack_size`` cases are in memory at once, whatever the chunk's length.

    ``case_timeout`` > 0: the chunk runs in a child process watched from here; a case that takes longer
    (or whose process dies) is recorded in errors.csv and a new child goes on with the rest (see
    :func:`_supervised_chunk`). ``isolate``: compute in such a child even without a time limit (the local
    pool's workers). ``threads``: OpenMP threads of the CPU kernels in the process that computes.
    """
    if (case_timeout and case_timeout > 0) or isolate:
        return _supervised_chunk(tasks, params, out_dir, backend, prefetch, id_columns, pack_size, on_case,
                                 float(case_timeout or 0.0), threads)
    from collections import deque

    from . import _backends

    p = load_params(params)
    backend = _backends.resolve(backend)
    if threads:
        set_worker_threads(threads)
    out = Path(out_dir)
    statuses: list[dict] = []

    def report(st):
        statuses.append(st)
        if on_case is not None:
            on_case(st)

    with ThreadPoolExecutor(max_workers=max(1, prefetch)) as pool:
        it = iter(tasks)
        window: deque = deque()

        def refill():
            while len(window) < prefetch + pack_size:
                t = next(it, None)
                if t is None:
                    return
                window.append((t, pool.submit(_load_case, t, p)))

        refill()
        while window:
            if on_group is not None:
                on_group([t.index for t, _ in list(window)[:pack_size]])
            group = []
            while window and len(group) < pack_size:
                task, fut = window.popleft()
                try:
                    group.append((task, fut.result()))
                except Exception as exc:  # a failing case never stops the run
                    report(_record_error(out, task, exc))
            refill()   # the next reads run while this group computes
            for st in _compute_group(group, p, backend, out, id_columns or []):
                report(st)
    return statuses


def _die_with_parent(parent_pid: int) -> None:
    """In a supervised child: end when the supervisor's process ends (SIGKILLed included), never outlive it.

    A spawned child's parent is the supervisor; a forkserver child's parent is the forkserver, which itself
    exits when the supervisor's process ends. Either way the child dies with its parent (PR_SET_PDEATHSIG),
    and a watcher thread also ends it when its parent changes or the supervisor's process is gone."""
    first_parent = os.getppid()
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))   # PR_SET_PDEATHSIG (Linux)
    except Exception:   # noqa: BLE001 - not Linux: the watcher thread below does it
        pass
    import threading

    def gone() -> bool:
        if os.getppid() != first_parent:
            return True
        try:
            os.kill(parent_pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:   # alive (another user's pid would not be our supervisor, but do not guess)
            pass
        return False

    def watch():
        while True:
            if gone():
                os._exit(1)
            time.sleep(0.2)

    if gone():
        os._exit(1)
    threading.Thread(target=watch, daemon=True).start()


def _chunk_work(args: tuple, conn) -> None:
    """The body of a supervised child: ``args`` as _supervised_chunk packs them, messages to ``conn``."""
    tasks, params, out_dir, backend, prefetch, id_columns, pack_size, parent_pid, threads = args
    _die_with_parent(parent_pid)
    run_chunk(tasks, params, out_dir, backend, prefetch, id_columns, pack_size,
              on_case=lambda st: conn.send(("status", st)), on_group=lambda idx: conn.send(("start", idx)),
              threads=threads)
    conn.send(("end", None))
    conn.close()


def _chunk_main(fd: int) -> None:
    """Entry point of a subprocess child (``python -c``): its arguments come pickled on stdin, its messages
    go back through the pipe ``fd`` (a multiprocessing Connection)."""
    import pickle
    from multiprocessing.connection import Connection

    _chunk_work(pickle.load(sys.stdin.buffer), Connection(fd, readable=False))


class _ForkedChild:
    """A multiprocessing child with the Popen interface the supervisor uses (poll, kill, wait, returncode)."""

    def __init__(self, proc):
        self.proc = proc

    def poll(self):
        return None if self.proc.is_alive() else self.proc.exitcode

    def kill(self):
        self.proc.kill()

    def wait(self):
        self.proc.join()

    @property
    def returncode(self):
        return self.proc.exitcode


def _start_child(args: tuple):
    """A supervised child; returns (process, reading Connection).

    Where this process may start multiprocessing children: a fork of the workers' forkserver
    (:func:`process_context`: rlnfast already imported, so it starts in milliseconds). In a daemonic process
    (a Dask worker), which may not: a fresh interpreter started with subprocess (it imports rlnfast itself)."""
    import multiprocessing as mp
    import pickle
    import subprocess

    if not mp.current_process().daemon:
        ctx = process_context()
        r, w = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_chunk_work, args=(args, w), daemon=True)
        proc.start()
        w.close()
        return _ForkedChild(proc), r
    r, w = mp.Pipe(duplex=False)
    pkg_root = str(Path(__file__).resolve().parent.parent)   # the rlnfast this process runs, first on the path
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [pkg_root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from rlnfast.cohort import _chunk_main; "
                             "_chunk_main(int(sys.argv[1]))", str(w.fileno())],
                            stdin=subprocess.PIPE, pass_fds=(w.fileno(),), env=env)
    w.close()
    try:
        proc.stdin.write(pickle.dumps(args))
        proc.stdin.close()
    except BrokenPipeError:   # the child died at once: seen below as an end without result
        pass
    return proc, r


def set_worker_threads(n: int) -> None:
    """OpenMP threads of the C++ kernels in this process (a cohort worker: its share of the cores, so
    workers do not oversubscribe them; idle OpenMP threads also spin and take CPU from the others)."""
    from . import _backends

    try:
        _backends.core().cpu.set_num_threads(int(n))
    except Exception:   # noqa: BLE001 - no compiled core (numpy backend) or an older build: nothing to limit
        pass


def worker_threads(jobs: int) -> int:
    """Each of ``jobs`` local workers' share of the CPUs this process may use."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, cpus // max(1, int(jobs)))


class CaseTimeout(TimeoutError):
    """A case ran longer than the cohort run's per-case time limit (``case_timeout``)."""


class WorkerDied(RuntimeError):
    """The process computing a case ended without a result (a crash in compiled code, out of memory)."""


def _supervised_chunk(tasks, params, out_dir, backend, prefetch, id_columns, pack_size, on_case, timeout,
                      threads=None):
    """run_chunk in a child process with a per-case time limit. The child says which cases it starts (a
    group of up to ``pack_size``) and reports each finished one. When a group runs past ``timeout`` seconds
    per case, or the child dies, the child is killed: a group of several cases is retried one case at a
    time in a new child (only the culprit fails); a single case is recorded in errors.csv as
    CaseTimeout/WorkerDied, and a new child goes on with the rest. A compiled kernel holding the GIL or
    ignoring signals cannot stall the run. ``timeout`` 0: no time limit (the child still isolates a crash).
    The child is a fork of the workers' forkserver, or in a daemonic process (a Dask worker, which may not
    start multiprocessing children) a fresh interpreter started with subprocess: the limit holds under every
    executor."""
    timeout = float(timeout) if timeout and timeout > 0 else float("inf")
    out = Path(out_dir)
    statuses: list[dict] = []

    def report(st):
        statuses.append(st)
        if on_case is not None:
            on_case(st)

    segments = [(list(tasks), pack_size)]   # (tasks, pack size) still to run, in order
    while segments:
        seg, pack = segments.pop(0)
        if not seg:
            continue
        proc, conn = _start_child((seg, params, str(out_dir), backend, prefetch, id_columns, pack, os.getpid(),
                                   threads))
        finished: set = set()
        current, started, ended, fault, gone = None, 0.0, False, None, False
        while True:
            kind, payload = None, None
            if not gone and conn.poll(0.1):
                try:
                    kind, payload = conn.recv()
                except (EOFError, OSError):   # the child closed its end: it ended or died
                    gone = True
            elif gone:
                time.sleep(0.05)
            if kind == "start":
                current, started = list(payload), time.monotonic()
            elif kind == "status":
                finished.add(payload["index"])
                report(payload)
            elif kind == "end":
                ended = True
                break
            if current and time.monotonic() - started > timeout * max(1, len([i for i in current
                                                                                if i not in finished])):
                fault = CaseTimeout(f"case took longer than the per-case time limit of {timeout:g} s "
                                    "(caseTimeout); its worker process was stopped")
                break
            if kind is None and proc.poll() is not None:
                try:   # anything it sent just before ending
                    while not gone and conn.poll(0):
                        k, pl = conn.recv()
                        if k == "status":
                            finished.add(pl["index"])
                            report(pl)
                        elif k == "end":
                            ended = True
                except (EOFError, OSError):
                    pass
                if not ended:
                    fault = WorkerDied(f"the worker process ended without a result (exit code {proc.returncode}; "
                                       "a crash or out of memory) while computing this case")
                break
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        conn.close()
        if ended or fault is None:
            continue
        rest = [t for t in seg if t.index not in finished]
        suspects = [t for t in rest if current and t.index in current]
        if not suspects:   # died before starting any case: nothing to blame, do not loop
            for t in rest:
                report(_record_error(out, t, fault))
            continue
        others = [t for t in rest if t not in suspects]
        if len(suspects) > 1:   # which case of the group? each alone
            segments[:0] = [(suspects, 1), (others, pack)]
        else:
            report(_record_error(out, suspects[0], fault))
            segments[:0] = [(others, pack)]
    return statuses


def _compute_group(group, p: Params, backend: str, out: Path, id_columns) -> list[dict]:
    from .extract import extract_many

    if not group:
        return []
    stall = os.environ.get(STALL_ENV)
    if stall and any(str(t.row.get("ID", "")) == stall for t, _ in group):
        time.sleep(1e6)
    try:
        tables = extract_many([item for _, item in group], p, backend)
    except Exception:
        tables = None
    statuses = []
    throttle = float(os.environ.get(THROTTLE_ENV, "0") or 0)
    for k, (task, item) in enumerate(group):
        try:
            # one bad case must not sink the others: on a group failure each case runs alone
            table = tables[k] if tables is not None else extract_many([item], p, backend)[0]
        except Exception as exc:
            statuses.append(_record_error(out, task, exc))
            continue
        statuses.append(_write_case(out, task, _case_table(task, table, id_columns), len(item[1])))
        if throttle:
            time.sleep(throttle)
    return statuses


def _write_case(out: Path, task: CaseTask, table: pd.DataFrame, n_regions: int) -> dict:
    table_path, done_path, err_path = _case_paths(out, task.index)
    write_table(table, table_path, na_rep="NaN")   # explicit NaN: ID columns are read with no NA guessing
    meta = {"key": task.key, "index": task.index, "regions": n_regions, "pid": os.getpid(),
            "columns": [c for c in task.row if c not in ("Image", "Mask", "Label")],
            "run": os.environ.get("RLNFAST_RUN_ID", ""), "finished": time.time()}
    atomic_write_text(done_path, json.dumps(meta))   # the commit marker, written last
    if err_path.exists():
        err_path.unlink()
    return {"index": task.index, "ok": True, "regions": n_regions}


def _record_error(out: Path, task: CaseTask, exc: Exception) -> dict:
    _, done_path, err_path = _case_paths(out, task.index)
    if done_path.exists():
        done_path.unlink()
    reason = f"{type(exc).__name__}: {exc}"
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=5))
    atomic_write_text(err_path, json.dumps({"index": task.index, "key": task.key, "error": reason,
                                            "traceback": tb}))
    return {"index": task.index, "ok": False, "error": reason}


# ---------------------------------------------------------------------------------------------- executors
class SerialExecutor:
    """Runs tasks in the calling process (the default engine)."""

    def submit(self, fn, *args, **kwargs) -> Future:
        f: Future = Future()
        try:
            f.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - the future carries it
            f.set_exception(exc)
        return f

    def shutdown(self, wait=True):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()


def _visible_devices(env=None):
    """The parent's CUDA_VISIBLE_DEVICES as a list of entries (indices or GPU UUIDs), or None when unset.
    CUDA stops at the first invalid entry; an empty value hides every GPU."""
    vis = (os.environ if env is None else env).get("CUDA_VISIBLE_DEVICES")
    if vis is None:
        return None
    return [v.strip() for v in vis.split(",") if v.strip()]


def _worker_gpu(index: int, visible) -> str:
    """CUDA_VISIBLE_DEVICES for the worker of pool index ``index``: the index-th GPU the parent sees, so a
    parent limited to ``2,3`` (SLURM) or to UUIDs hands its own GPUs out, never physical GPUs 0 and 1."""
    if visible is None:
        return str(index)
    return visible[index % len(visible)]


def _gpu_initializer(counter, n_gpus, visible=None):
    with counter.get_lock():
        gpu = counter.value % n_gpus
        counter.value += 1
    os.environ["CUDA_VISIBLE_DEVICES"] = _worker_gpu(gpu, visible)


class LocalPool:
    """``jobs`` local worker processes for a cohort run (``rlnfast extract --jobs N``).

    Each chunk of cases runs in a worker process forked from the forkserver (:func:`process_context`), and
    N threads of the calling process supervise them (the per-case time limit, a crashed worker): one layer
    of processes, which start in milliseconds instead of importing rlnfast, pandas and SimpleITK again.
    Each worker's C++ kernels use its share of the cores (:func:`worker_threads`)."""

    def __init__(self, jobs: int):
        self._max_workers = max(1, int(jobs))
        self.threads = worker_threads(self._max_workers)
        self._pool = ThreadPoolExecutor(max_workers=self._max_workers, thread_name_prefix="rlnfast-supervisor")

    def submit(self, fn, *args, **kwargs) -> Future:
        if fn is run_chunk:
            kwargs = {**kwargs, "isolate": True, "threads": self.threads}
        return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True):
        self._pool.shutdown(wait=wait)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()


def local_executor(jobs: int, backend: str = "auto"):
    """``jobs`` local workers: a :class:`LocalPool` (supervised forkserver workers); on a GPU backend a
    process pool of one worker per GPU, each pinned to its GPU through CUDA_VISIBLE_DEVICES (set before the
    worker touches CUDA)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    if backend in ("cuda", "cupy"):
        n_gpus = _count_gpus()
        if n_gpus > 0:
            ctx = mp.get_context("spawn")
            counter = ctx.Value("i", 0)
            return ProcessPoolExecutor(max_workers=min(jobs, n_gpus) if jobs else n_gpus, mp_context=ctx,
                                       initializer=_gpu_initializer,
                                       initargs=(counter, n_gpus, _visible_devices()))
    return LocalPool(jobs)


def _count_gpus() -> int:
    vis = _visible_devices()
    if vis is not None:
        return len(vis)
    try:
        import subprocess

        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
        return len([l for l in out.stdout.splitlines() if l.startswith("GPU")])
    except Exception:
        return 0


def dask_executor(address: str = "local", n_workers: int = 2, gpu: bool = False):
    """A Dask distributed executor: ``address`` 'local' starts a LocalCluster on 127.0.0.1 only (processes),
    otherwise connects to a scheduler. GPU tasks ask for resource GPU=1 so a worker declared with
    ``--resources GPU=1`` runs one at a time. Returns (executor, client, cluster_or_None)."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:
        raise ImportError("Dask scale-out needs dask.distributed: pip install 'rlnfast[dask]'") from exc
    cluster = None
    if address == "local":
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None, resources={"GPU": 1} if gpu else None)
        client = Client(cluster)
    else:
        client = Client(address)
    ex = client.get_executor(resources={"GPU": 1}) if gpu else client.get_executor()
    return ex, client, cluster


# ---------------------------------------------------------------------------------------------- run
@dataclass
class RunResult:
    table: pd.DataFrame
    errors: pd.DataFrame
    computed: int
    skipped: int
    failed: int
    output: Path | None
    out_dir: Path


def run(batch, params=None, out_dir=None, executor=None, backend: str = "auto", *, output=None,
        chunk_size: int = 8, prefetch: int = 2, pack_size: int = 4, max_in_flight: int | None = None,
        progress: bool = True, base_dir=None, case_timeout: float = DEFAULT_CASE_TIMEOUT,
        content_hash: bool = False, lock_wait: float = 0.0) -> RunResult:
    """Run a batch: compute what is not done yet, then merge every case into one table.

    Parameters
    ----------
    batch
        CSV path or DataFrame (pyradiomics batch convention).
    params
        Parameter file, dict or Params (as :func:`rlnfast.extract`).
    out_dir
        Where per-case results, ``errors.csv`` and (by default) ``features.csv`` go.
    executor
        None (serial), any object with ``submit(fn, *args)`` returning futures
        (``concurrent.futures`` pools, ``dask.distributed.Client.get_executor()``).
    output
        Path of the merged table (.csv or .parquet); default ``out_dir/features.csv``.
    case_timeout
        Seconds one case may take (0: no limit). Cases then compute in a watched child process (one per
        chunk); a case past the limit, or whose process dies, goes to errors.csv with ``CaseTimeout`` /
        ``WorkerDied`` and the run goes on. The child is started with subprocess, so the limit holds under
        every executor, Dask workers (daemonic processes) included.
    content_hash
        Resume on the inputs' content (SHA-256) instead of their size and modification time.
    lock_wait
        One run per out-dir at a time: seconds to wait for another run's lock before OutDirLocked.
    """
    if case_timeout is None or not (float(case_timeout) >= 0) or not np.isfinite(float(case_timeout)):
        raise ValueError(f"case_timeout={case_timeout!r}: expected seconds >= 0 (0: no limit)")
    if out_dir is None:
        raise ValueError("out_dir: a folder for per-case results is required")
    with out_dir_lock(out_dir, lock_wait):
        return _run(batch, params, out_dir, executor, backend, output, chunk_size, prefetch, pack_size,
                    max_in_flight, progress, base_dir, case_timeout, content_hash)


class OutDirLocked(RuntimeError):
    """Another run holds the out-dir (its ``.lock``)."""


class out_dir_lock:
    """An exclusive lock on ``out_dir/.lock`` (fcntl.flock: released by the OS when the holder dies, so a
    SIGKILLed run never leaves a stale lock). Busy: wait up to ``wait`` seconds, then OutDirLocked."""

    def __init__(self, out_dir, wait: float = 0.0):
        self.path = Path(out_dir) / ".lock"
        self.wait = float(wait or 0.0)
        self.fd = None

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            import fcntl
        except ImportError:   # not POSIX: no lock
            self.fd = fd
            return self
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    holder = ""
                    try:
                        holder = self.path.read_text().strip()
                    except OSError:
                        pass
                    raise OutDirLocked(f"out-dir {str(self.path.parent)!r} is in use by another run"
                                       + (f" ({holder})" if holder else "")
                                       + "; wait for it to finish (--wait-lock SECONDS) or use another out-dir") from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}".encode())
        self.fd = fd
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)   # releases the flock
            self.fd = None


def _run(batch, params, out_dir, executor, backend, output, chunk_size, prefetch, pack_size, max_in_flight,
         progress, base_dir, case_timeout, content_hash) -> RunResult:
    p = load_params(params)
    df = read_batch(batch, base_dir)
    out = Path(out_dir)
    (out / CASE_DIR).mkdir(parents=True, exist_ok=True)
    ph = params_hash(p)
    id_columns = [c for c in df.columns if c not in ("Image", "Mask", "Label")]
    # like pyradiomics' batch output: the row's columns (ID, ...), then Image, Mask (and Label where given)
    front = id_columns + ["Image", "Mask"] + (["Label"] if "Label" in df.columns else [])
    rows = df.to_dict("records")
    tasks = [CaseTask(i, r, case_key(r, ph, content_hash)) for i, r in enumerate(rows)]
    todo = [t for t in tasks if not _is_done(out, t.index, t.key)]
    skipped = len(tasks) - len(todo)
    serial = executor is None or isinstance(executor, SerialExecutor)
    executor = executor or SerialExecutor()
    in_flight_cap = max_in_flight or max(2, 2 * int(getattr(executor, "_max_workers", 1) or 1))
    # Serial: one chunk, so reading overlaps computing across the whole batch; pools: chunks per worker.
    chunks = [todo] if serial and todo else [todo[i:i + chunk_size] for i in range(0, len(todo), chunk_size)]
    counts = {"failed": 0, "computed": 0, "regions": 0}
    bar = _progress(len(tasks), skipped, progress)

    def count(st):
        counts["computed" if st["ok"] else "failed"] += 1
        counts["regions"] += st.get("regions", 0)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(regions=counts["regions"], failed=counts["failed"])

    try:
        params_dict = p.to_dict()
        queue = list(chunks)
        in_flight: list[Future] = []
        while queue or in_flight:
            while queue and len(in_flight) < in_flight_cap:
                kwargs = {"on_case": count} if serial else {}
                kwargs["case_timeout"] = float(case_timeout)
                in_flight.append(executor.submit(run_chunk, queue.pop(0), params_dict, str(out), backend,
                                                 prefetch, id_columns, pack_size, **kwargs))
            statuses = in_flight.pop(0).result()
            if not serial:
                for st in statuses:
                    count(st)
    finally:
        if bar is not None:
            bar.close()
    computed, failed = counts["computed"], counts["failed"]
    table, errors = merge(out, tasks, id_columns, front)
    write_table(errors, out / "errors.csv")
    output = Path(output) if output else out / "features.csv"
    write_table(table, output)
    return RunResult(table, errors, computed, skipped, failed, output, out)


def _progress(total, initial, enabled):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="case", desc="rlnfast extract", dynamic_ncols=True)


def merge(out: Path, tasks: list, id_columns, front=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The merged feature table (batch order) and the error table, from the per-case files. ``front``: the
    batch columns each row of the merged table starts with, from the current batch (default ``id_columns``)."""
    front = list(id_columns) if front is None else list(front)
    frames, errors = [], []
    for t in tasks:
        table_path, done_path, err_path = _case_paths(out, t.index)
        if _is_done(out, t.index, t.key):
            try:
                stored = json.loads(done_path.read_text()).get("columns")
            except (OSError, ValueError):
                stored = None
            stored = list(id_columns) if stored is None else list(stored)
            f = pd.read_csv(table_path, dtype={c: str for c in set(id_columns) | set(stored)}, keep_default_na=False,
                            float_precision="round_trip", na_values=["nan", "NaN"])
            # the batch columns come from the current batch row (a corrected ID, an added outcome column),
            # then Image, Mask (and Label) as in pyradiomics' batch output
            f = f.drop(columns=[c for c in stored if c in f.columns])
            frames.append(_case_table(t, f, front))
        else:
            reason = "not computed"
            if err_path.exists():
                try:
                    reason = json.loads(err_path.read_text())["error"]
                except (OSError, ValueError, KeyError):
                    pass
            errors.append({"index": t.index, **{c: t.row[c] for c in id_columns}, "Image": t.row["Image"],
                           "Mask": t.row["Mask"], "error": reason})
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=front)
    err = pd.DataFrame(errors, columns=["index", *id_columns, "Image", "Mask", "error"])
    return table, err
