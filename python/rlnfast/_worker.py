"""Imported once by the cohort runner's forkserver (rlnfast.cohort.process_context) so that every worker,
a fork of it, starts with rlnfast, its compiled kernels, the feature classes, NumPy, pandas and SimpleITK
already imported. Importing it runs no kernel and starts no thread (forking after OpenMP has run is unsafe)."""
from __future__ import annotations

import numpy  # noqa: F401
import pandas  # noqa: F401

from . import cohort, extract, io, nifti, regions  # noqa: F401
from . import _backends
from .features import feature_classes

feature_classes()   # imports every feature class module (the registry)
try:
    import SimpleITK  # noqa: F401
except ImportError:   # the fallback reader; not needed by rlnfast's own NIfTI reader
    pass
try:
    _backends.core()   # loads the extension (and the OpenMP runtime) without running a parallel region
except Exception:  # noqa: BLE001 - not built: the worker reports it when it computes
    pass
