"""nnU-Net v2 inference: a trained model folder run on CT files through ``nnUNetPredictor``, the predictions
put on the CT's exact grid and split into nodes. torch and nnunetv2 are imported only when a model runs."""
from __future__ import annotations

import json
from pathlib import Path

from ..io import IMAGE_SUFFIXES, write_volume
from .files import _check_case_id, _header, _image_files, _read_table, _strip_suffix, check_same_geometry
from .nodes import _build_batch, _label_names

INSTALL_HINT = 'pip install "rlnfast[seg]"  (or: pip install torch nnunetv2)'


def _require_nnunet():
    try:
        import torch  # noqa: F401
        import nnunetv2  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"nnU-Net inference and training need torch and nnunetv2, which are not installed "
                          f"({exc}); install them with: {INSTALL_HINT}") from exc


def check_model_folder(model_folder, folds=(0,), checkpoint: str = "checkpoint_final.pth") -> Path:
    """Check an nnU-Net trained model folder (``.../nnUNetTrainer__nnUNetPlans__3d_fullres``): it must hold
    ``dataset.json``, ``plans.json`` and ``fold_<f>/<checkpoint>`` for every fold. Raises
    FileNotFoundError naming what is missing and what is there."""
    mf = Path(model_folder)
    if not mf.is_dir():
        raise FileNotFoundError(f"model folder {str(mf)!r} does not exist")
    for f in ("dataset.json", "plans.json"):
        if not (mf / f).is_file():
            raise FileNotFoundError(f"model folder {str(mf)!r} has no {f}: expected an nnU-Net trained model "
                                    "folder such as nnUNet_results/DatasetXXX_Name/nnUNetTrainer__nnUNetPlans__3d_fullres")
    for fold in folds:
        ck = mf / f"fold_{fold}" / checkpoint
        if not ck.is_file():
            found = sorted(str(p.relative_to(mf)) for p in mf.glob("fold_*/*.pth"))
            raise FileNotFoundError(f"model folder {str(mf)!r} has no checkpoint {str(ck.relative_to(mf))!r} "
                                    f"(checkpoints found: {', '.join(found) or 'none'})")
    return mf


def _segment_inputs(inputs) -> list[tuple[str, Path]]:
    """(case, CT file) pairs from a CT folder (``<case>_0000.nii.gz``), a CSV (ID, Image) or a list of files."""
    import pandas as pd

    if isinstance(inputs, (list, tuple)):
        out = []
        for p in inputs:
            p = Path(p)
            if not p.is_file():
                raise FileNotFoundError(f"CT file {str(p)!r} does not exist")
            s = _strip_suffix(p.name)
            if s is None:
                raise ValueError(f"CT file {str(p)!r}: expected an image file ({', '.join(IMAGE_SUFFIXES)})")
            case = s[0][:-5] if s[0].endswith("_0000") else s[0]
            out.append((_check_case_id(case, f"CT file {str(p)!r}"), p))
        return out
    if isinstance(inputs, pd.DataFrame) or Path(str(inputs)).suffix.lower() == ".csv":
        df, src = _read_table(inputs, "input CSV", required=("ID", "Image"))
        out = []
        for r in df.itertuples():
            p = Path(r.Image)
            if not p.is_file():
                raise FileNotFoundError(f"{src}: CT file {str(p)!r} of case {r.ID!r} does not exist")
            out.append((_check_case_id(r.ID, src), p))
        return out
    folder = Path(inputs)
    if not folder.is_dir():
        raise FileNotFoundError(f"CT input {str(folder)!r} does not exist (expected a folder of "
                                "<case>_0000.nii.gz or a CSV with columns ID, Image)")
    out = []
    for case, p in _image_files(folder).items():
        if case.endswith("_0000"):
            out.append((case[:-5], p))
    if not out:
        raise ValueError(f"CT folder {str(folder)!r} holds no <case>_0000.nii.gz files (nnU-Net's naming of "
                         "channel 0)")
    return out


def segment(model_folder, inputs, out_dir, folds=(0,), device: str = "cpu",
            checkpoint: str = "checkpoint_final.pth", *, use_mirroring: bool = True, step_size: float = 0.5,
            num_processes: int | None = None, label=None, mode: str = "components", connectivity: int = 26,
            min_volume_mm3: float = 0.0, verbose: bool = False, threads: int | None = None):
    """Run a trained nnU-Net v2 model on CT files, then split the predictions into nodes.

    Wraps ``nnunetv2.inference.predict_from_raw_data.nnUNetPredictor``:
    ``initialize_from_trained_model_folder(model_folder, folds, checkpoint)`` then ``predict_from_files``
    with explicit file lists (a folder would make nnU-Net start a pool of its default 8-12 processes), or
    ``predict_from_files_sequential`` when ``num_processes=0`` (no worker processes at all).

    Parameters
    ----------
    model_folder
        nnU-Net trained model folder (``dataset.json``, ``plans.json``, ``fold_<f>/<checkpoint>``). The
        checkpoint is a pickle (torch ``weights_only=False``): load only models you trust.
    inputs
        A folder of ``<case>_0000.nii.gz`` CT files, a CSV (or DataFrame) with columns ``ID, Image``, or a
        list of CT files. The model must take one input channel (CT).
    out_dir
        Predictions are written as ``<out_dir>/<case>.nii.gz`` on the CT's exact grid (size, spacing,
        origin, direction copied from the CT), plus nnU-Net's dataset.json/plans.json, then the node maps,
        ``batch.csv`` and ``nodes.csv`` of :func:`import_predictions`.
    device
        'cpu' or 'cuda' (needs a CUDA build of torch and a GPU).
    use_mirroring
        nnU-Net's test-time mirroring (its default; off is up to 8 times faster). A model trained without
        mirroring (:func:`train_tiny_model`) is never mirrored.
    num_processes
        0: ``predict_from_files_sequential``, everything in this process (on 2 CPU cores about 7 times
        faster than starting workers for a few cases). n >= 1: ``predict_from_files`` with n spawned
        preprocessing and export workers (a script calling this then needs an ``if __name__ ==
        "__main__":`` guard, as for any spawned multiprocessing). None: 0 on 'cpu', 3 on 'cuda'.
    threads
        torch's intra-op CPU threads during the call (restored afterwards); None: torch's default (one per
        core). A small model on a busy machine runs several times faster on 1 thread than on 2 (threads
        that wait for each other on shared cores).

    Returns ``(batch, nodes)`` as :func:`import_predictions`.
    """
    folds = tuple(folds) if folds is not None else (0,)
    folds = tuple(f if str(f) == "all" else int(f) for f in folds)
    mf = check_model_folder(model_folder, folds, checkpoint)
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device={device!r}: expected 'cpu' or 'cuda'")
    ds = json.loads((mf / "dataset.json").read_text())
    channels = ds.get("channel_names", ds.get("modality", {}))
    if len(channels) != 1:
        raise ValueError(f"model folder {str(mf)!r} expects {len(channels)} input channels ({channels}); "
                         "rlnfast segment feeds one CT channel")
    cases = _segment_inputs(inputs)
    _require_nnunet()
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device='cuda' but torch {torch.__version__} sees no CUDA device; use device='cpu'")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ending = ds.get("file_ending", ".nii.gz")
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        _predict(nnUNetPredictor, torch, mf, folds, checkpoint, cases, out, device, step_size, use_mirroring,
                 num_processes, verbose)
    finally:
        torch.set_num_threads(old_threads)
    pairs = []
    for case, ct_path in cases:
        pred_path = out / f"{case}{ending}"
        if not pred_path.is_file():
            raise RuntimeError(f"nnU-Net wrote no prediction {str(pred_path)!r} for CT {str(ct_path)!r}")
        _copy_geometry(pred_path, ct_path, tolerance=1e-4)
        pairs.append((case, ct_path, pred_path))
    return _build_batch(pairs, out, _label_names(mf), label=label, mode=mode, connectivity=connectivity,
                        min_volume_mm3=min_volume_mm3, geometry_tolerance=None)


def _predict(nnUNetPredictor, torch, mf, folds, checkpoint, cases, out, device, step_size, use_mirroring,
             num_processes, verbose):
    predictor = nnUNetPredictor(tile_step_size=step_size, use_gaussian=True, use_mirroring=use_mirroring,
                                perform_everything_on_device=(device == "cuda"), device=torch.device(device),
                                verbose=verbose, verbose_preprocessing=verbose, allow_tqdm=verbose)
    predictor.initialize_from_trained_model_folder(str(mf), use_folds=folds, checkpoint_name=checkpoint)
    files = [[str(p)] for _, p in cases]
    targets = [str(out / case) for case, _ in cases]
    if num_processes is None:
        num_processes = 3 if device == "cuda" else 0
    if num_processes > 0:
        predictor.predict_from_files(files, targets, save_probabilities=False, overwrite=True,
                                     num_processes_preprocessing=int(num_processes),
                                     num_processes_segmentation_export=int(num_processes))
    else:
        predictor.predict_from_files_sequential(files, targets, save_probabilities=False, overwrite=True)


def _copy_geometry(pred_path: Path, ct_path: Path, tolerance: float) -> None:
    """Give a prediction its CT's exact geometry (nnU-Net round-trips it through float32 properties)."""
    import SimpleITK as sitk

    g_ct, g_pred = _header(ct_path), _header(pred_path)
    if g_ct == g_pred:
        return
    check_same_geometry(g_pred, f"prediction {str(pred_path)!r}", g_ct, f"CT {str(ct_path)!r}", tolerance)
    img = sitk.ReadImage(str(pred_path))
    img.SetSpacing(g_ct["spacing"])
    img.SetOrigin(g_ct["origin"])
    img.SetDirection(g_ct["direction"])
    write_volume(img, pred_path)
