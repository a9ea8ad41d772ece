"""Node features: every node of every case of a batch of node maps through ``rlnfast`` feature extraction."""
from __future__ import annotations

import numpy as np

from ..io import read_volume
from .files import _isnan, _read_table


def extract_nodes(batch, params=None, backend: str = "auto", *, nodes=None, out_dir=None):
    """Features of every node of every case of a batch: ``(features, skipped)``.

    ``batch`` is the table of :func:`import_predictions` / :func:`segment` (or its CSV): each row's Mask is
    a node map with labels 1..K, one per node, so feature extraction gives one row per node (``label`` =
    node id). With ``out_dir`` the cases run through the resumable cohort runner ``rlnfast.cohort.run``
    (per-case results and ``errors.csv`` under ``out_dir``); without it, ``rlnfast.extract.extract`` runs
    case by case in memory. Returns one DataFrame with columns ``ID, Image, Mask`` then the feature
    columns, joined with the node table's volume and centroid columns when ``nodes`` is given, and
    ``skipped``: {case: reason} for cases without features (zero nodes: an empty prediction; or the
    cohort runner's error for that case).
    """
    import importlib.util

    import pandas as pd

    if not isinstance(batch, pd.DataFrame):
        batch, _ = _read_table(batch, "batch CSV")
    batch = batch.assign(ID=batch["ID"].astype(str))
    skipped: dict[str, str] = {}
    todo = []
    for r in batch.itertuples():
        n = getattr(r, "n_nodes", None)
        if n is None or _isnan(n):
            n = int(np.count_nonzero(read_volume(r.Mask).array))
        if int(n) == 0:
            skipped[r.ID] = "zero nodes (empty prediction)"
        else:
            todo.append(r.Index)
    run_batch = batch.loc[todo, ["ID", "Image", "Mask"]]
    if not len(run_batch):
        feats = pd.DataFrame(columns=["ID", "Image", "Mask", "label"])
    elif out_dir is not None and importlib.util.find_spec("rlnfast.cohort") is not None:
        from .. import cohort

        res = cohort.run(run_batch.reset_index(drop=True), params, out_dir=out_dir, backend=backend, progress=False)
        for e in res.errors.itertuples():
            skipped[str(e.ID)] = str(e.error)
        # the cohort table carries Image/Mask (resolved); keep this batch's own spelling of them
        feats = _numeric_features(res.table).drop(columns=["Image", "Mask"], errors="ignore")
        feats = feats.merge(run_batch, on="ID", how="left")
        feats = feats[["ID", "Image", "Mask"] + [c for c in feats.columns if c not in ("ID", "Image", "Mask")]]
    else:
        from ..extract import extract

        frames = []
        for r in run_batch.itertuples():
            f = extract(r.Image, r.Mask, params, backend)
            f.insert(0, "Mask", r.Mask)
            f.insert(0, "Image", r.Image)
            f.insert(0, "ID", r.ID)
            frames.append(f)
        feats = pd.concat(frames, ignore_index=True)
    if nodes is not None and len(feats):
        cols = ["ID", "node", "volume_mm3", "centroid_x_mm", "centroid_y_mm", "centroid_z_mm"]
        nt = nodes[cols].rename(columns={"node": "label"}).assign(ID=nodes["ID"].astype(str))
        feats = feats.assign(label=feats["label"].astype(np.int64)).merge(nt, on=["ID", "label"], how="left")
    return feats, skipped


def _numeric_features(table):
    """Feature columns back to numbers: a per-case CSV round trip can leave a NaN feature as '' (object)."""
    import pandas as pd

    table = table.copy()
    for c in table.columns:
        if c in ("ID", "Image", "Mask") or c.startswith("diagnostics_") or table[c].dtype != object:
            continue
        vals = table[c].replace("", np.nan)
        try:
            table[c] = pd.to_numeric(vals)
        except (ValueError, TypeError):
            pass
    return table
