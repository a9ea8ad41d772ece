"""The read-only floor of bench_cohort.py, run as its own interpreter:

    python bench/_floor.py READER BATCH.csv JOBS        (READER: sitk or rlnfast)

Starts JOBS spawned worker processes, waits until every one has imported its reader (SimpleITK, or rlnfast.io),
then times reading every case's image and mask once (SimpleITK.ReadImage + GetArrayFromImage, or
rlnfast.io.read_volume) and prints ``seconds: S`` (wall), ``cpu_seconds: C`` (the workers' CPU time spent
reading: a figure a loaded machine does not inflate) and, for rlnfast, the set of readers used. Start-up and imports
are not in the floor (rlnfast's own run pays its start-up: the floor is the reading alone).
"""
from __future__ import annotations

import csv
import multiprocessing as mp
import sys
import time
from pathlib import Path

_READER = None


def _init(reader, ready):
    global _READER
    if reader == "sitk":
        import SimpleITK  # noqa: F401
    else:
        import rlnfast.io  # noqa: F401
    _READER = reader
    ready.put(1)


def read_case(paths):
    c = time.process_time()
    if _READER == "sitk":
        import SimpleITK as sitk

        out = [str(sitk.GetArrayFromImage(sitk.ReadImage(p)).shape) for p in paths]
    else:
        from rlnfast.io import read_volume

        out = [read_volume(p).reader for p in paths]
    return out, time.process_time() - c


def main(reader: str, batch: str, jobs: int) -> None:
    base = Path(batch).parent
    with open(batch, newline="") as fh:
        tasks = [(str(base / r["Image"]), str(base / r["Mask"])) for r in csv.DictReader(fh)]
    ctx = mp.get_context("spawn")
    ready = ctx.Queue()
    with ctx.Pool(jobs, initializer=_init, initargs=(reader, ready)) as pool:
        for _ in range(jobs):
            ready.get()
        t = time.perf_counter()
        out = pool.map(read_case, tasks, chunksize=1)
        dt = time.perf_counter() - t
    print(f"seconds: {dt}")
    print(f"cpu_seconds: {sum(c for _, c in out)}")
    if reader == "rlnfast":
        print("readers:", sorted({r for pair, _ in out for r in pair}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
