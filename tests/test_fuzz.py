"""Property-based checks (Hypothesis) over the public ops and extract, on the backends that run here (cpu and
the NumPy reference): every call returns or raises a named error (ValueError) within a time limit, in a
child process, and where both backends return they agree (the one tolerance table).

The bounded version runs in the normal suite (about a minute). The long one:
``RLNFAST_FUZZ_EXAMPLES=2000 python -m pytest tests/test_fuzz.py`` (examples per property).
"""
from __future__ import annotations

import multiprocessing as mp
import os
import traceback

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from conftest import TOLERANCE  # noqa: E402

EXAMPLES = int(os.environ.get("RLNFAST_FUZZ_EXAMPLES", "25"))
CALL_LIMIT_S = float(os.environ.get("RLNFAST_FUZZ_CALL_LIMIT_S", "60"))
NAMED_ERRORS = ("ValueError", "BackendUnavailable")
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=os.environ.get("CI") == "true",
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ---- a child process that runs the calls; a call that hangs or crashes it fails the property -------------

def _serve(conn):
    import importlib

    while True:
        msg = conn.recv()
        if msg is None:
            return
        fn_path, kwargs = msg
        mod, name = fn_path.rsplit(".", 1)
        try:
            conn.send(("ok", getattr(importlib.import_module(mod), name)(**kwargs)))
        except Exception as exc:  # noqa: BLE001 - the parent judges the type
            conn.send(("error", type(exc).__name__, f"{exc}\n{traceback.format_exc(limit=3)}"))


class Worker:
    def __init__(self):
        self.ctx = mp.get_context("spawn")
        self.proc = None

    def start(self):
        self.conn, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_serve, args=(child,), daemon=True)
        self.proc.start()

    def call(self, fn_path, **kwargs):
        if self.proc is None or not self.proc.is_alive():
            self.start()
        self.conn.send((fn_path, kwargs))
        if not self.conn.poll(CALL_LIMIT_S):
            self.proc.kill()
            self.proc.join()
            self.proc = None
            pytest.fail(f"{fn_path} gave no answer within {CALL_LIMIT_S} s (hang): {kwargs!r}"[:3000])
        try:
            return self.conn.recv()
        except EOFError:
            code = self.proc.exitcode if self.proc.join(5) is None else None
            self.proc = None
            pytest.fail(f"{fn_path} crashed its process (exit code {code}): {kwargs!r}"[:3000])

    def stop(self):
        if self.proc is not None and self.proc.is_alive():
            self.conn.send(None)
            self.proc.join(10)
            if self.proc.is_alive():
                self.proc.kill()


@pytest.fixture(scope="module")
def worker():
    w = Worker()
    yield w
    w.stop()


def _both(worker, fn_path, **kwargs):
    """The call on cpu and numpy: each returns or raises a named error; (cpu, numpy) answers."""
    answers = []
    for b in ("cpu", "numpy"):
        a = worker.call(fn_path, backend=b, **kwargs)
        if a[0] == "error":
            assert a[1] in NAMED_ERRORS, f"{fn_path} on {b} raised {a[1]} (not a named error): {a[2]}"
        answers.append(a)
    return answers


def _close(a, b, what):
    rtol, atol = TOLERANCE["cpu"]
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = np.nanmax(np.abs(b)) if b.size and np.any(np.isfinite(b)) else 1.0
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol * max(scale, 1.0), equal_nan=True, err_msg=what)


# ---- strategies -------------------------------------------------------------------------------------------

_MAGNITUDES = st.sampled_from([1.0, 1e3, 1e6, 2.0 ** 23, 2.0 ** 24, 1e9, 1e15, 1e18, 1e21])
_FINITE = st.floats(allow_nan=False, allow_infinity=False, width=64)


@st.composite
def regions_values(draw):
    """A ragged batch: HU-like integers, small floats, huge or tiny magnitudes, flat regions, NaN rarely."""
    n = draw(st.integers(1, 4))
    vals, offs = [], [0]
    for _ in range(n):
        k = draw(st.integers(0, 40))
        kind = draw(st.sampled_from(["hu", "float", "huge", "flat", "mixed"]))
        if kind == "hu":
            v = draw(st.lists(st.integers(-1024, 3071), min_size=k, max_size=k))
        elif kind == "float":
            v = draw(st.lists(st.floats(-5, 5, allow_nan=False), min_size=k, max_size=k))
        elif kind == "huge":
            m = draw(_MAGNITUDES)
            v = [x * m for x in draw(st.lists(st.floats(-1, 1, allow_nan=False), min_size=k, max_size=k))]
        elif kind == "flat":
            v = [draw(_FINITE)] * k
        else:
            v = draw(st.lists(_FINITE, min_size=k, max_size=k))
        vals += [float(x) for x in v]
        offs.append(len(vals))
    if draw(st.integers(0, 30)) == 0 and vals:
        vals[draw(st.integers(0, len(vals) - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return np.array(vals, np.float64), np.array(offs, np.int64)


_BINNING = st.one_of(
    st.fixed_dictionaries({"bin_width": st.sampled_from([0.1, 0.3, 1.0, 25.0, 1e-3, 7.77])}),
    st.fixed_dictionaries({"bin_width": st.floats(1e-6, 1e6)}),
    st.fixed_dictionaries({"bin_count": st.integers(1, 64), "bin_width": st.none()}),
)


# ---- properties -------------------------------------------------------------------------------------------

@FUZZ
@given(data=regions_values(), binning=_BINNING, f32=st.booleans(), shift=st.sampled_from([0.0, 1000.0]))
def test_firstorder_returns_or_raises_and_matches_reference(worker, data, binning, f32, shift):
    values, offsets = data
    if f32:
        values = values.astype(np.float32).astype(np.float64)
    kw = dict(values=values, offsets=offsets, voxel_array_shift=shift, value_dtype=np.float32 if f32 else None,
              **binning)
    cpu, ref = _both(worker, "rlnfast.ops.firstorder.firstorder", **kw)
    if cpu[0] == "ok" and ref[0] == "ok":
        _close(cpu[1], ref[1], "firstorder cpu vs numpy")
    else:
        # where the reference can bin a region and cpu cannot (or back), that is a disagreement too
        assert cpu[0] == ref[0], f"cpu {cpu[:2]} vs numpy {ref[:2]}"


@st.composite
def volumes(draw):
    shape = tuple(draw(st.integers(1, 6)) for _ in range(3))
    n = int(np.prod(shape))
    kind = draw(st.sampled_from(["int16", "float32", "float64", "uint8", "int64"]))
    if kind == "int64":
        img = np.array(draw(st.lists(st.sampled_from([np.iinfo(np.int64).min, -1, 0, 1, 2 ** 40, 40]),
                                     min_size=n, max_size=n)), np.int64)
    elif kind in ("int16", "uint8"):
        info = np.iinfo(kind)
        img = np.array(draw(st.lists(st.integers(int(info.min), int(info.max)), min_size=n, max_size=n)), kind)
    else:
        m = draw(_MAGNITUDES)
        img = (np.array(draw(st.lists(st.floats(-1, 1, allow_nan=False), min_size=n, max_size=n))) * m).astype(kind)
    labels = np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), np.uint8)
    if not labels.any():
        labels[draw(st.integers(0, n - 1))] = 1
    spacing = draw(st.tuples(*[st.sampled_from([0.5, 0.8, 1.0, 2.5]) for _ in range(3)]))
    return img.reshape(shape), labels.reshape(shape), spacing


def _extract(image, labels, spacing, backend, settings):
    import rlnfast

    df = rlnfast.extract(image, labels, {"setting": settings, "imageType": {"Original": {}},
                                         "featureClass": {"firstorder": None, "fractal": None}},
                         backend=backend, spacing=spacing)
    cols = [c for c in df.columns if c.startswith("original_")]
    return df[cols].to_numpy(np.float64)


@FUZZ
@given(vol=volumes(), binning=st.one_of(st.fixed_dictionaries({"binWidth": st.sampled_from([0.1, 25.0, 1.0])}),
                                        st.fixed_dictionaries({"binCount": st.integers(1, 32)})))
def test_extract_returns_or_raises_and_matches_reference(worker, vol, binning):
    image, labels, spacing = vol
    cpu, ref = _both(worker, "test_fuzz._extract", image=image, labels=labels, spacing=spacing, settings=binning)
    if cpu[0] == "ok" and ref[0] == "ok":
        _close(cpu[1], ref[1], "extract cpu vs numpy")
    else:
        assert cpu[0] == ref[0], f"cpu {cpu[:2]} vs numpy {ref[:2]}"


def _fractal(masks, spacing, min_box_size, backend):
    from rlnfast.ops.fractal import region_features
    from rlnfast.spec.fractal import crops_from_masks

    res = region_features(crops_from_masks(masks, spacing), min_box_size=min_box_size, backend=backend)
    return {k: np.asarray(v, np.float64) for k, v in res.features.items()}


@FUZZ
@given(shape=st.tuples(*[st.integers(1, 7)] * 3), seed=st.integers(0, 2 ** 16),
       spacing=st.tuples(*[st.sampled_from([0.5, 1.0, 2.0])] * 3),
       mbs=st.one_of(st.none(), st.sampled_from([0.0, -1.0, 1e-9, 0.5, 1.0, 3.0, float("nan")])))
def test_fractal_returns_or_raises_and_matches_reference(worker, shape, seed, spacing, mbs):
    mask = np.random.default_rng(seed).random(shape) < 0.6
    cpu, ref = _both(worker, "test_fuzz._fractal", masks=[mask], spacing=spacing, min_box_size=mbs)
    if cpu[0] == "ok" and ref[0] == "ok":
        assert cpu[1].keys() == ref[1].keys()
        for k in cpu[1]:
            _close(cpu[1][k], ref[1][k], f"fractal {k}")
    else:
        assert cpu[0] == ref[0], f"cpu {cpu[:2]} vs numpy {ref[:2]}"
