"""A deliberately tiny nnU-Net v2, planned, preprocessed and trained on the CPU in about a minute (tests,
``rlnfast demo --segment``), through nnunetv2's Python API in a child process."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from .inference import _require_nnunet, check_model_folder


TINY_PLAN = {"patch_size": [16, 32, 32], "batch_size": 2, "features_per_stage": [8, 16, 32]}


def train_tiny_model(raw_dataset_dir, work_dir, epochs: int = 5, *, iterations_per_epoch: int = 50,
                     val_iterations_per_epoch: int = 2, fold=0, seed: int = 0, patch_size=(16, 32, 32),
                     batch_size: int = 2, features_per_stage=(8, 16, 32), timeout: float | None = 900,
                     log=None, augmentation: bool = True) -> Path:
    """Plan, preprocess and train a tiny nnU-Net v2 (3d_fullres, base ``nnUNetTrainer``) on the CPU.

    For tests and demos only: about a minute on 2 CPU cores for a few small cases. Everything runs through
    nnunetv2's Python API in a child Python process whose environment points ``nnUNet_raw`` at the folder
    holding ``raw_dataset_dir`` (a ``DatasetXXX_Name`` folder from :func:`nnunet_dataset`) and
    ``nnUNet_preprocessed`` / ``nnUNet_results`` into ``work_dir``, with ``nnUNet_def_n_proc=1`` and
    ``nnUNet_compile=false`` set before nnunetv2 is imported (the caller's environment is untouched).

    The recipe: nnU-Net's own fingerprint and 3d_fullres plan, shrunk before preprocessing to
    ``patch_size``, ``batch_size``, ``len(features_per_stage)`` stages with those features and one
    convolution per stage (encoder and decoder); the trainer runs ``epochs`` epochs of
    ``iterations_per_epoch`` iterations (``val_iterations_per_epoch`` validation batches) with one torch
    thread, data augmentation in-process (``nnUNet_n_proc_DA=0``, set only after planning), seeds set and
    no mirroring (neither augmentation nor test-time). nnU-Net's final validation is skipped.
    ``augmentation=False`` trains without data augmentation, as nnU-Net's ``nnUNetTrainerNoDA`` variant
    (its validation transforms for training, patches sampled at the patch size); the model folder keeps the
    base trainer's name, so inference needs nothing else. On clean synthetic CTs it learns sharp node
    outlines in fewer iterations. ``fold``: nnU-Net's fold (0-4: its 5-fold split keeps a fifth of the cases
    for its own validation) or ``"all"`` (every case trains; the model folder then holds ``fold_all``, and
    :func:`segment` needs ``folds=("all",)``).

    Returns the trained model folder (``<work_dir>/results/DatasetXXX_Name/nnUNetTrainer__nnUNetPlans__3d_fullres``)
    for :func:`segment`. Raises RuntimeError with the end of the log (``<work_dir>/train_tiny.log``) if the
    child fails, ImportError if torch/nnunetv2 are missing.
    """
    _require_nnunet()
    raw = Path(raw_dataset_dir).resolve()
    m = re.match(r"^Dataset(\d{3})_(.+)$", raw.name)
    if not raw.is_dir() or m is None:
        raise ValueError(f"raw dataset {str(raw)!r}: expected an existing DatasetXXX_Name folder")
    if not (raw / "dataset.json").is_file():
        raise FileNotFoundError(f"raw dataset {str(raw)!r} has no dataset.json")
    work = Path(work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update({"nnUNet_raw": str(raw.parent), "nnUNet_preprocessed": str(work / "preprocessed"),
                "nnUNet_results": str(work / "results"), "nnUNet_def_n_proc": "1", "nnUNet_compile": "false",
                "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": str(seed)})
    env.pop("nnUNet_n_proc_DA", None)
    pkg_parent = str(Path(__file__).resolve().parents[2])  # the folder holding rlnfast/
    env["PYTHONPATH"] = pkg_parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cfg = {"dataset_id": int(m.group(1)), "epochs": int(epochs), "iterations": int(iterations_per_epoch),
           "val_iterations": int(val_iterations_per_epoch), "fold": fold, "seed": int(seed),
           "patch_size": [int(v) for v in patch_size], "batch_size": int(batch_size),
           "features": [int(v) for v in features_per_stage], "augmentation": bool(augmentation)}
    log_path = work / "train_tiny.log"
    with open(log_path, "w") as fh:
        try:
            proc = subprocess.run([sys.executable, "-c", "import sys; from rlnfast.segmentation.training "
                                   "import _train_tiny_child; _train_tiny_child(sys.argv[1])", json.dumps(cfg)],
                                  env=env, stdout=fh, stderr=subprocess.STDOUT, timeout=timeout, cwd=str(work))
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"tiny nnU-Net training timed out after {timeout} s (log: {log_path})") from exc
    text = log_path.read_text(errors="replace")
    if log is not None:
        log.write(text)
    if proc.returncode != 0:
        raise RuntimeError(f"tiny nnU-Net training failed (exit {proc.returncode}); end of {log_path}:\n"
                           + "\n".join(text.splitlines()[-30:]))
    model = work / "results" / raw.name / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    check_model_folder(model, (fold,))
    return model


def _shrink_plans(plans: dict, cfg: dict) -> dict:
    """nnU-Net's generated plan -> the tiny 3d_fullres-only plan of :func:`train_tiny_model`."""
    conf = plans["configurations"]["3d_fullres"]
    for k in list(plans["configurations"]):
        if k != "3d_fullres":
            del plans["configurations"][k]
    n = len(cfg["features"])
    conf["patch_size"] = list(cfg["patch_size"])
    conf["batch_size"] = int(cfg["batch_size"])
    arch = conf["architecture"]["arch_kwargs"]
    arch["n_stages"] = n
    arch["features_per_stage"] = list(cfg["features"])
    arch["kernel_sizes"] = [[3, 3, 3]] * n
    strides = [[1, 1, 1]]
    for i in range(1, n):
        # halve every axis still at least 8 voxels long at this depth
        prev = [int(p // np.prod([s[a] for s in strides])) for a, p in enumerate(cfg["patch_size"])]
        strides.append([2 if v >= 8 else 1 for v in prev])
    arch["strides"] = strides
    arch["n_conv_per_stage"] = [1] * n
    arch["n_conv_per_stage_decoder"] = [1] * (n - 1)
    return plans


def _train_tiny_child(cfg_json: str) -> None:  # pragma: no cover - runs in the child process
    cfg = json.loads(cfg_json)
    import random

    import torch

    torch.set_num_threads(1)
    random.seed(cfg["seed"])
    np.random.seed(cfg["seed"])
    torch.manual_seed(cfg["seed"])
    from nnunetv2.experiment_planning.plan_and_preprocess_api import (
        extract_fingerprint_dataset, plan_experiment_dataset, preprocess_dataset)
    from nnunetv2.utilities.dataset_name_id_conversion import convert_id_to_dataset_name

    did = cfg["dataset_id"]
    name = convert_id_to_dataset_name(did)
    extract_fingerprint_dataset(did, num_processes=1, check_dataset_integrity=True, clean=True, verbose=False,
                                show_progress_bar=False)
    _, plans_id = plan_experiment_dataset(did)
    plans_file = Path(os.environ["nnUNet_preprocessed"]) / name / f"{plans_id}.json"
    plans = _shrink_plans(json.loads(plans_file.read_text()), cfg)
    plans_file.write_text(json.dumps(plans, indent=2))
    preprocess_dataset(did, plans_id, configurations=("3d_fullres",), num_processes=(1,), verbose=False,
                       show_progress_bar=False)

    os.environ["nnUNet_n_proc_DA"] = "0"  # in-process augmentation; set only now (it breaks planning)
    from nnunetv2.run.run_training import get_trainer_from_args

    trainer = get_trainer_from_args(str(did), "3d_fullres", cfg["fold"], "nnUNetTrainer", plans_id,
                                    device=torch.device("cpu"))
    trainer.num_epochs = cfg["epochs"]
    trainer.num_iterations_per_epoch = cfg["iterations"]
    trainer.num_val_iterations_per_epoch = cfg["val_iterations"]
    base = trainer.configure_rotation_dummyDA_mirroring_and_inital_patch_size

    augment = cfg.get("augmentation", True)

    def no_mirroring():
        rot, dummy2d, init_patch, _ = base()
        trainer.inference_allowed_mirroring_axes = None
        if not augment:  # as nnUNetTrainerNoDA: no enlarged patch for rotations
            init_patch = trainer.configuration_manager.patch_size
        return rot, dummy2d, init_patch, None

    trainer.configure_rotation_dummyDA_mirroring_and_inital_patch_size = no_mirroring
    if not augment:
        # nnUNetTrainerNoDA's transforms, on the base trainer (finding a variant class by name imports every
        # trainer module of nnunetv2, some of which need timm/torchvision)
        def no_augmentation(patch_size, rotation_for_DA, deep_supervision_scales, mirror_axes, do_dummy_2d_data_aug,
                            use_mask_for_norm=None, is_cascaded=False, foreground_labels=None, regions=None,
                            ignore_label=None):
            return trainer.get_validation_transforms(deep_supervision_scales, is_cascaded, foreground_labels,
                                                     regions, ignore_label)

        trainer.get_training_transforms = no_augmentation
    torch.manual_seed(cfg["seed"])
    trainer.run_training()
    print("RLNFAST_TINY_MODEL_DONE", trainer.output_folder_base, flush=True)
