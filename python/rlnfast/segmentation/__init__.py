"""Segmentation front end: nnU-Net v2 predictions in, one region per node, nnU-Net training sets out, Dice QC.

nnU-Net is used through its own Python API (package ``nnunetv2``), never re-implemented; torch and
nnunetv2 are an optional extra (``pip install "rlnfast[seg]"``, or ``pip install torch nnunetv2``)
needed only by :func:`segment` and :func:`train_tiny_model`, and imported only when they run. Everything
else needs NumPy, SciPy, pandas and SimpleITK only.

One module per concern:

``nodes``
    :func:`split_nodes`: a label map -> a node map with labels 1..K (one per node: a label value, or each
    connected component of a chosen label) and a table of the nodes (voxels, volume, centroid in index and
    physical space). :func:`import_predictions`: a folder of nnU-Net predictions (``<case>.nii.gz``) paired
    with the CT folder (``<case>_0000.nii.gz``), or a cohort CSV -> node maps on disk and the batch table
    (``ID, Image, Mask``, pyradiomics' batch convention) that ``rlnfast extract`` runs.
``features``
    :func:`extract_nodes`: the features of every node of such a batch.
``files``
    image headers and grid checks (:func:`check_same_geometry`), discovery of CT and prediction files,
    case IDs, batch tables.
``inference``
    :func:`segment`: run a trained nnU-Net model folder on CT files (``nnUNetPredictor``), then the
    predictions' nodes as :func:`import_predictions`.
``dataset``
    :func:`nnunet_dataset`: CT + node masks -> an nnU-Net raw dataset (``DatasetXXX_Name/imagesTr``,
    ``labelsTr``, ``dataset.json``) that ``nnUNetv2_plan_and_preprocess`` and ``nnUNetv2_train`` take unchanged.
``training``
    :func:`train_tiny_model`: plan, preprocess and train a deliberately tiny nnU-Net on the CPU in about a
    minute (tests, demo).
``evaluation``
    :func:`seg_eval`: per case Dice, HD95 (mm), volume difference and per-node detection; cohort mean +- SD.
``synthetic``
    seeded synthetic CTs: :func:`make_ct`, the demo's cohort :func:`make_cohort`, and the small cases of
    the tiny nnU-Net :func:`synthetic_node_cases`.
"""
from __future__ import annotations

from .dataset import nnunet_dataset
from .evaluation import (SUMMARY_METRICS, SegEval, dice, evaluate_case, hd95, node_detection, seg_eval,
                         surface_distances)
from .features import extract_nodes
from .files import check_same_geometry
from .inference import INSTALL_HINT, check_model_folder, segment
from .nodes import NODE_TABLE_COLUMNS, import_predictions, split_nodes
from .synthetic import SyntheticCT, make_cohort, make_ct, synthetic_node_cases
from .training import TINY_PLAN, _shrink_plans, train_tiny_model  # noqa: F401  (_shrink_plans: tests)

__all__ = [
    "INSTALL_HINT", "NODE_TABLE_COLUMNS", "SUMMARY_METRICS", "TINY_PLAN", "SegEval", "SyntheticCT",
    "check_model_folder", "check_same_geometry", "dice", "evaluate_case", "extract_nodes", "hd95",
    "import_predictions", "make_cohort", "make_ct", "node_detection", "nnunet_dataset", "seg_eval", "segment",
    "split_nodes", "surface_distances", "synthetic_node_cases", "train_tiny_model",
]
