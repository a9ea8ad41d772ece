"""Regions: every positive label of a label map (or every connected component of chosen labels) is one
region, found for all labels in one pass; their voxel values are gathered into one ragged batch
(values + offsets) that a single kernel call processes, for one volume or a packed cohort chunk.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _backends

# Label values are any int64 > 0: region tables are compact (one row per label present), so no value is too
# large and memory follows the labels present, not the largest label value.
_LABEL_CAP = np.iinfo(np.int64).max


@dataclass
class Regions:
    """The regions of one label map.

    ``label_map`` is the int array the regions index (the input, or the component map in
    connected-component mode); region i is ``label_map == label[i]``. ``source_label`` is the input label
    a component came from (equal to ``label`` otherwise). ``bbox`` rows are (z0, y0, x0, z1, y1, x1),
    inclusive; an empty region has count 0 and bbox -1.
    """

    label: np.ndarray
    source_label: np.ndarray
    count: np.ndarray
    bbox: np.ndarray
    label_map: np.ndarray
    component: np.ndarray | None = None

    def __len__(self):
        return len(self.label)

    def bbox_slices(self, i: int, halo=(0, 0, 0)):
        """Slices (z, y, x) of region i's bounding box grown by ``halo`` voxels, clipped to the volume."""
        z0, y0, x0, z1, y1, x1 = (int(v) for v in self.bbox[i])
        shp = self.label_map.shape
        lo = (z0, y0, x0)
        hi = (z1, y1, x1)
        return tuple(slice(max(lo[a] - halo[a], 0), min(hi[a] + halo[a] + 1, shp[a])) for a in range(3))


def _check_label_map(label_map: np.ndarray, name="label map") -> np.ndarray:
    label_map = np.asarray(label_map)
    if label_map.dtype == bool:
        label_map = label_map.view(np.uint8)
    if label_map.dtype == np.uint64:
        from .io import kernel_array

        label_map = kernel_array(label_map, name)   # int64 when its values fit, else refused by name
    if not np.issubdtype(label_map.dtype, np.integer):
        if np.issubdtype(label_map.dtype, np.floating) and np.all(np.isfinite(label_map)) \
                and np.all(label_map == np.round(label_map)):
            raise ValueError(f"{name}: expected an integer label map, got dtype {label_map.dtype} "
                             "(its values are whole numbers: cast it, e.g. sitk.Cast(mask, sitk.sitkUInt16))")
        raise ValueError(f"{name}: expected an integer label map, got dtype {label_map.dtype}")
    if label_map.ndim != 3:
        raise ValueError(f"{name}: expected a 3-D label map, got shape {label_map.shape}")
    return np.ascontiguousarray(label_map)


def label_stats(label_map: np.ndarray):
    """(labels, counts, bbox) of every positive label present in the map, ascending, in one pass (C++):
    compact, one row per label present (memory follows the labels present, not the largest label value).
    ``bbox`` rows are (z0, y0, x0, z1, y1, x1) inclusive."""
    lm = _check_label_map(label_map)
    if lm.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 6), np.int64)
    labels, counts, bbox, _ = _backends.core().cpu.region_stats(lm, _LABEL_CAP)
    return labels, counts, bbox


def find_regions(label_map, labels=None, *, connected_components: bool = False, connectivity: int = 26,
                 min_voxels: int = 1, name: str = "label map", copy: bool = True) -> Regions:
    """The regions of a label map.

    Parameters
    ----------
    labels
        None: every positive label present. An int or a list: those labels, each must be present
        (a missing one raises ValueError naming it and the labels found).
    connected_components
        Split each selected label into its connected components (``connectivity`` 26 or 6), one region
        each, numbered 1..K in scipy.ndimage.label order per label, labels in ascending order.
    min_voxels
        Components smaller than this are dropped (connected-component mode only).
    copy
        True (default): the Regions hold their own read-only copy of the label map, so editing the caller's
        array afterwards changes nothing (gather gives the regions as they were found). False: they hold the
        caller's array itself (no copy; for callers that own it and leave it alone). Editing it then is
        never unsafe: gather writes only within each region's counted slice and raises ValueError when a
        region's voxel count in its box changed; an edit that keeps every count (a voxel moved inside its
        box) gives the values of the edited map, and voxels added outside a region's box are not seen.
    """
    lm = _check_label_map(label_map, name)
    owned = not np.may_share_memory(lm, np.asarray(label_map))
    if copy and not owned:
        lm, owned = lm.copy(), True   # the Regions own their label map: later edits of the caller's array change nothing
    if owned:
        lm.flags.writeable = False
    present, counts, bbox = label_stats(lm)
    if labels is None:
        pos = np.arange(len(present))
        if len(pos) == 0:
            raise ValueError(f"{name} is empty: no voxel has a positive label")
    else:
        sel = np.atleast_1d(np.asarray(labels, dtype=np.int64))
        pos = np.searchsorted(present, sel)
        found_ = (pos < len(present)) & (present[np.minimum(pos, max(len(present) - 1, 0))] == sel) \
            if len(present) else np.zeros(len(sel), bool)
        missing = [int(v) for v, ok in zip(sel, found_) if not ok or v <= 0]
        if missing:
            found = ", ".join(str(int(v)) for v in present[:20]) + (" ..." if len(present) > 20 else "")
            raise ValueError(f"{name}: label(s) {missing} not present (labels found: {found or 'none'})")
    if not connected_components:
        sel = present[pos].astype(np.int64)
        return Regions(label=sel, source_label=sel.copy(), count=counts[pos].astype(np.int64),
                       bbox=bbox[pos].astype(np.int64), label_map=lm)
    return _components(lm, present[pos], connectivity, min_voxels, {int(present[i]): bbox[i] for i in pos})


def _components(lm, sel, connectivity, min_voxels, bbox) -> Regions:
    cc = connected_components(lm, sel, merge_labels=False, connectivity=connectivity, min_voxels=min_voxels,
                              bbox=bbox)
    present, counts, bb = label_stats(cc.label_map)
    ids = np.arange(1, len(cc) + 1, dtype=np.int64)
    if not np.array_equal(present, ids):  # pragma: no cover - connected_components numbers 1..K
        raise AssertionError("component numbering")
    cc.label_map.flags.writeable = False
    return Regions(label=ids, source_label=cc.source_label, count=counts.astype(np.int64),
                   bbox=bb.astype(np.int64), label_map=cc.label_map, component=cc.component)


def connectivity_structure(connectivity: int):
    """The ``scipy.ndimage`` structuring element of a 3-D connectivity: 6 (faces) or 26 (faces, edges and
    corners)."""
    from scipy import ndimage

    if connectivity not in (6, 26):
        raise ValueError(f"connectivity={connectivity!r}: expected 6 (faces) or 26 (faces, edges and corners)")
    return ndimage.generate_binary_structure(3, 1 if connectivity == 6 else 3)


@dataclass
class Components:
    """Connected components of a label map (:func:`connected_components`), K of them after dropping small ones.

    ``label_map``: int32, 0 background, 1..K. Per component (length K): ``source_label`` (the input label
    value it came from), ``component`` (its number within its group, 1..n after dropping small ones),
    ``scipy_number`` (``scipy.ndimage.label``'s number within its group, before dropping) and ``count``
    (voxels). A group is one label (``merge_labels=False``) or the merged foreground (``merge_labels=True``).
    """

    label_map: np.ndarray
    source_label: np.ndarray
    component: np.ndarray
    scipy_number: np.ndarray
    count: np.ndarray

    def __len__(self):
        return len(self.count)


def connected_components(label_map, labels=None, *, merge_labels: bool, connectivity: int = 26,
                         min_voxels: int = 1, bbox=None) -> Components:
    """Connected components of the chosen labels of an integer label map (z, y, x): ``scipy.ndimage.label``
    with ``connectivity`` 26 or 6, components of fewer than ``min_voxels`` voxels dropped, the rest
    numbered 1..K.

    labels
        None: every positive label. Or a list of label values (they need not be present).
    merge_labels
        True: the chosen labels form one foreground (``label_map > 0`` for None), labelled at once; the
        components keep scipy's order (raster order of each component's first voxel), and a component's
        ``source_label`` is the label value of one of its voxels (the chosen label when there is only one).
        False: each label is labelled apart, in the order given (ascending for None), its components in
        scipy's order within it; ``bbox`` (a mapping label value -> row z0, y0, x0, z1, y1, x1 inclusive, as
        :func:`label_stats`) crops each label's labelling to its bounding box (same result, faster).
    """
    from scipy import ndimage

    structure = connectivity_structure(connectivity)
    lm = np.asarray(label_map)
    if merge_labels:
        if labels is None:
            fg = lm > 0
        else:
            sel = np.atleast_1d(np.asarray(labels, dtype=np.int64))
            fg = (lm == int(sel[0])) if len(sel) == 1 else np.isin(lm, sel)
        comp, n = ndimage.label(fg, structure=structure, output=np.int32)
        source = np.zeros(n + 1, dtype=np.int64)
        if n:
            source[comp.ravel()] = lm.ravel()  # the label value of one voxel of each component
            if labels is not None and len(sel) == 1:
                source[1:] = int(sel[0])
        counts = np.bincount(comp.ravel(), minlength=n + 1)[1:].astype(np.int64)
        keep = counts >= min_voxels
        k = int(keep.sum())
        if not np.all(keep):
            lut = np.zeros(n + 1, dtype=np.int32)
            lut[1:][keep] = np.arange(1, k + 1, dtype=np.int32)
            comp = lut[comp]
        scipy_number = np.arange(1, n + 1, dtype=np.int64)[keep]
        return Components(label_map=np.ascontiguousarray(comp, dtype=np.int32), source_label=source[1:][keep],
                          component=np.arange(1, k + 1, dtype=np.int64), scipy_number=scipy_number,
                          count=counts[keep])

    if labels is None:
        sel = np.unique(lm)
        sel = sel[sel > 0]
    else:
        sel = np.atleast_1d(np.asarray(labels, dtype=np.int64))
    out = np.zeros(lm.shape, dtype=np.int32)
    src, comp, raw, cnt = [], [], [], []
    next_id = 1
    for lab in sel:
        if bbox is None:
            sl = (slice(None),) * lm.ndim
        else:
            sl = tuple(slice(int(bbox[lab][a]), int(bbox[lab][a + 3]) + 1) for a in range(3))
        cc, n = ndimage.label(lm[sl] == lab, structure=structure)
        if n == 0:
            continue
        sizes = np.bincount(cc.ravel(), minlength=n + 1)
        keep = np.nonzero(sizes[1:] >= min_voxels)[0] + 1
        remap = np.zeros(n + 1, dtype=np.int32)
        remap[keep] = np.arange(next_id, next_id + len(keep), dtype=np.int32)
        view = out[sl]
        m = cc > 0
        view[m] = remap[cc[m]]
        src += [int(lab)] * len(keep)
        comp += list(range(1, len(keep) + 1))
        raw += keep.tolist()
        cnt += sizes[keep].tolist()
        next_id += len(keep)
    return Components(label_map=out, source_label=np.asarray(src, np.int64), component=np.asarray(comp, np.int64),
                      scipy_number=np.asarray(raw, np.int64), count=np.asarray(cnt, np.int64))


def gather(image: np.ndarray, regions: Regions, *, non_finite: str = "error", name: str = "image", volume=None):
    """(values, offsets): region i's voxel values (float64, C order as ``image[mask]``) in one pass.

    ``non_finite`` = 'error' raises ValueError naming the region and the first bad voxel (its index in the
    volume and, given ``volume`` (rlnfast.io.Volume), its physical position); 'drop' leaves NaN/inf voxels
    out of the region.
    """
    from .io import kernel_array

    image = np.ascontiguousarray(kernel_array(np.asarray(image), name))   # the one dtype rule
    lm = regions.label_map
    if image.shape != lm.shape:
        raise ValueError(f"{name}: shape {image.shape} differs from label map shape {lm.shape}")
    label, count, bbox = _checked_regions(regions, lm.shape)
    region_of = np.full(1, -1, dtype=np.int32)   # unused when boxes are given (each region scans its box)
    offsets = np.zeros(len(label) + 1, dtype=np.int64)
    np.cumsum(count, out=offsets[1:])
    if len(label) == 0:
        return np.zeros(0), offsets
    values, bad = _backends.core().cpu.gather(image, lm, region_of, offsets, label, bbox)
    if image.dtype.itemsize == 8 and image.dtype.kind in "iu" and len(values):
        big = float(np.max(np.abs(values)))
        if big > 2.0 ** 53:
            raise ValueError(f"{name}: an int64 value of magnitude {big:.6g} inside a region is beyond 2^53, where "
                             "float64 (in which features are computed) cannot hold every integer exactly; rescale "
                             "or clip the image")
    if np.any(bad == _COUNT_MISMATCH):
        r = int(np.nonzero(bad == _COUNT_MISMATCH)[0][0])
        raise ValueError(f"{name}: region label {int(label[r])} no longer has {int(count[r])} voxel(s) inside its "
                         "bounding box: the label map changed after find_regions (call find_regions again)")
    if np.any(bad >= 0):
        if non_finite == "drop":
            keep = np.isfinite(values)
            rid = np.repeat(np.arange(len(regions)), np.diff(offsets))
            values = values[keep]
            offsets = np.zeros_like(offsets)
            np.cumsum(np.bincount(rid[keep], minlength=len(regions)), out=offsets[1:])
        elif non_finite == "error":
            r = int(np.nonzero(bad >= 0)[0][0])
            idx = np.unravel_index(int(bad[r]), lm.shape)
            nbad = int(np.count_nonzero(~np.isfinite(values[offsets[r]:offsets[r + 1]])))
            from .io import voxel_text

            raise ValueError(f"{name}: {nbad} NaN/inf voxel(s) inside region label {int(regions.label[r])} "
                             f"(first at {voxel_text(idx, volume)}); expected finite intensities "
                             "(setting nonFinite: drop leaves them out)")
        else:
            raise ValueError(f"nonFinite={non_finite!r}: expected 'error' or 'drop'")
    return values, offsets


_COUNT_MISMATCH = -2   # csrc/common/ops.h kCountMismatch


def _checked_regions(regions: Regions, shape):
    """(label, count, bbox) of ``regions`` as int64 arrays, checked against the volume's shape: the compiled
    gather indexes with them, so nothing here is trusted (a Regions can be built or edited by hand)."""
    label = np.ascontiguousarray(np.asarray(regions.label).reshape(-1), dtype=np.int64)
    count = np.ascontiguousarray(np.asarray(regions.count).reshape(-1), dtype=np.int64)
    bbox = np.ascontiguousarray(np.asarray(regions.bbox), dtype=np.int64)
    n = len(label)
    if len(count) != n or bbox.shape != (n, 6):
        raise ValueError(f"regions: {n} labels, {len(count)} counts and bbox of shape {bbox.shape}; expected "
                         f"one count and one (z0, y0, x0, z1, y1, x1) row per label")
    if n and label.min() <= 0:
        raise ValueError(f"regions: label {int(label.min())} is not a region (labels <= 0 are background)")
    if len(np.unique(label)) != n:
        raise ValueError("regions: a label appears twice")
    total = int(np.prod(shape, dtype=np.int64))
    if n and (count.min() < 0 or count.sum() > total):
        raise ValueError(f"regions: voxel counts must be >= 0 and at most the volume's {total} voxels in all")
    if n:
        lo, hi = bbox[:, :3], bbox[:, 3:]
        empty = np.any(hi < lo, axis=1)
        inside = np.all((lo >= 0) & (hi < np.asarray(shape, np.int64)[None, :]), axis=1)
        bad = np.nonzero(~empty & ~inside)[0]
        if len(bad):
            raise ValueError(f"regions: bounding box {bbox[bad[0]].tolist()} of label {int(label[bad[0]])} lies "
                             f"outside the volume of shape {tuple(shape)}")
        bad = np.nonzero(empty & (count > 0))[0]
        if len(bad):
            raise ValueError(f"regions: label {int(label[bad[0]])} has {int(count[bad[0]])} voxel(s) but an empty box")
    return label, count, bbox


@dataclass
class RaggedBatch:
    """Regions of one or several volumes packed together: one kernel call covers all of them."""

    values: np.ndarray
    offsets: np.ndarray
    case: np.ndarray     # index of the volume each region came from
    label: np.ndarray    # region label within its volume

    def __len__(self):
        return len(self.offsets) - 1


def pack(batches) -> RaggedBatch:
    """Concatenate ragged batches [(values, offsets, labels), ...] from several volumes into one."""
    vals, offs, case, labels = [], [np.zeros(1, np.int64)], [], []
    base = 0
    for i, (v, o, lab) in enumerate(batches):
        o = np.asarray(o, np.int64)
        vals.append(np.asarray(v, np.float64))
        offs.append(o[1:] + base)
        base += int(o[-1])
        case.append(np.full(len(o) - 1, i, np.int64))
        labels.append(np.asarray(lab, np.int64))
    if not vals:
        return RaggedBatch(np.zeros(0), np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))
    return RaggedBatch(np.concatenate(vals), np.concatenate(offs), np.concatenate(case), np.concatenate(labels))


def device_batch(image, label_map, labels=None):
    """The ragged batch of a label map and image that live on a GPU (CuPy arrays, torch CUDA tensors), built
    on the device: ``(values, offsets, region_labels, counts, bbox)``. ``values``/``offsets`` stay on the
    device and go straight into the GPU ops, e.g. an nnU-Net prediction::

        vals, offs, labels, counts, bbox = rlnfast.regions.device_batch(ct_tensor, prediction_tensor)
        feats = rlnfast.ops.firstorder.firstorder(vals, offs, backend="cuda")

    Same regions, order and values as :func:`find_regions` + :func:`gather` on the host. Needs CuPy.
    """
    from ._cupy.regions import device_batch as _device_batch

    return _device_batch(image, label_map, labels)
