"""Agreement of a lesion segmentation with a reference mask: voxel Dice, lesion-wise detection.

Lesion-wise: a reference lesion is detected when any of its voxels is in the prediction; a predicted
lesion is a true positive when any of its voxels is in the reference (the "any overlap" criterion
of Commowick et al., Sci Rep 8:13650, 2018).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Voxel Dice coefficient of two masks (1.0 when both are empty)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    denom = a.sum() + b.sum()
    return 1.0 if denom == 0 else float(2.0 * np.logical_and(a, b).sum() / denom)


@dataclass(frozen=True)
class LesionAgreement:
    dice: float
    sensitivity: float  #: fraction of reference lesions detected
    precision: float  #: fraction of predicted lesions that overlap a reference lesion
    n_reference: int
    n_predicted: int
    n_false_positive: int
    volume_reference_ml: float
    volume_predicted_ml: float
    volume_error_ml: float  #: predicted - reference (mL)
    volume_error_rel: float  #: (predicted - reference) / reference

    def as_dict(self) -> dict:
        return asdict(self)


def _components(mask: np.ndarray, connectivity: int) -> tuple[np.ndarray, int]:
    rank = {6: 1, 18: 2, 26: 3}[connectivity]
    return ndimage.label(mask, structure=ndimage.generate_binary_structure(3, rank))


def lesion_agreement(
    pred: np.ndarray,
    ref: np.ndarray,
    zooms: tuple[float, float, float],
    *,
    connectivity: int = 26,
) -> LesionAgreement:
    """Voxel and lesion-wise agreement of ``pred`` with ``ref`` (binary masks, same grid)."""
    pred, ref = np.asarray(pred, bool), np.asarray(ref, bool)
    ref_lab, n_ref = _components(ref, connectivity)
    pred_lab, n_pred = _components(pred, connectivity)
    hit_ref = np.unique(ref_lab[pred & (ref_lab > 0)])
    hit_pred = np.unique(pred_lab[ref & (pred_lab > 0)])
    voxel_ml = float(np.prod(zooms)) / 1000.0
    v_ref, v_pred = ref.sum() * voxel_ml, pred.sum() * voxel_ml
    return LesionAgreement(
        dice=dice(pred, ref),
        sensitivity=float(hit_ref.size / n_ref) if n_ref else 1.0,
        precision=float(hit_pred.size / n_pred) if n_pred else 1.0,
        n_reference=int(n_ref),
        n_predicted=int(n_pred),
        n_false_positive=int(n_pred - hit_pred.size),
        volume_reference_ml=float(v_ref),
        volume_predicted_ml=float(v_pred),
        volume_error_ml=float(v_pred - v_ref),
        volume_error_rel=float((v_pred - v_ref) / v_ref) if v_ref else float("nan"),
    )


def detected_lesions(
    pred: np.ndarray, ref_ids: np.ndarray, zooms: tuple[float, float, float], min_diameter_mm: float
) -> tuple[list[int], list[int]]:
    """Ids of reference lesions with equivalent-sphere diameter >= ``min_diameter_mm``: (detected, missed)."""
    ids = np.unique(ref_ids[ref_ids > 0])
    if ids.size == 0:
        return [], []
    counts = ndimage.sum_labels(np.ones(ref_ids.shape), ref_ids, ids)
    diam = 2.0 * np.cbrt(3.0 * counts * float(np.prod(zooms)) / (4.0 * np.pi))
    hit = set(np.unique(ref_ids[np.asarray(pred, bool) & (ref_ids > 0)]).tolist())
    big = ids[diam >= min_diameter_mm]
    return [int(i) for i in big if i in hit], [int(i) for i in big if i not in hit]


#: Lesion-size bins (mL) of the lesion-wise detection rate: < 0.05, 0.05-0.2, > 0.2 mL.
SIZE_BINS_ML = (0.05, 0.2)


def size_bin_names(edges_ml: tuple[float, ...] = SIZE_BINS_ML) -> list[str]:
    """Names of the bins ``< e0``, ``e0-e1``, ..., ``> eN`` (mL)."""
    names = [f"<{edges_ml[0]:g}mL"]
    names += [f"{a:g}-{b:g}mL" for a, b in zip(edges_ml[:-1], edges_ml[1:], strict=True)]
    return names + [f">{edges_ml[-1]:g}mL"]


def detection_by_size(
    pred: np.ndarray,
    ref: np.ndarray,
    zooms: tuple[float, float, float],
    *,
    edges_ml: tuple[float, ...] = SIZE_BINS_ML,
    connectivity: int = 26,
) -> dict[str, dict[str, float]]:
    """Lesion-wise true-positive rate of reference lesions per volume bin (any-overlap criterion).

    Returns ``{bin: {"n_reference", "n_detected", "tpr"}}`` plus a ``">=e0"`` entry pooling every
    lesion of at least the first edge (the clinically countable lesions); ``tpr`` is NaN for an
    empty bin.
    """
    pred = np.asarray(pred, bool)
    ref_lab, n_ref = _components(np.asarray(ref, bool), connectivity)
    voxel_ml = float(np.prod(zooms)) / 1000.0
    volume = np.bincount(ref_lab.ravel(), minlength=n_ref + 1)[1:] * voxel_ml
    hit = np.zeros(n_ref + 1, bool)
    hit[np.unique(ref_lab[pred & (ref_lab > 0)])] = True
    hit = hit[1:]
    which = np.digitize(volume, edges_ml)  # 0: < e0, ..., len(edges): > e_last
    groups = {name: which == k for k, name in enumerate(size_bin_names(edges_ml))}
    groups[f">={edges_ml[0]:g}mL"] = volume >= edges_ml[0]
    out = {}
    for name, members in groups.items():
        n, d = int(members.sum()), int(hit[members].sum())
        out[name] = {"n_reference": n, "n_detected": d, "tpr": d / n if n else float("nan")}
    return out


def lesion_report(
    pred: np.ndarray, ref: np.ndarray, zooms: tuple[float, float, float], *, connectivity: int = 26
) -> dict:
    """Dice, lesion-wise sensitivity/precision, false-positive lesions, volume error and the
    per-size-bin detection rate of ``pred`` against ``ref`` (one flat-ish dict)."""
    report = lesion_agreement(pred, ref, zooms, connectivity=connectivity).as_dict()
    report["by_size"] = detection_by_size(pred, ref, zooms, connectivity=connectivity)
    return report
