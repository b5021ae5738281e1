"""Reference region for TSPO PET: the eroded, lesion-free cerebellar GM (or a pseudo-reference,
or a user-named TSPO-MS region), and its sanity checks.

The checks return plain-language warnings (a list of strings) that the workflow logs and the
report shows; they never stop a run. Limits are configurable (:class:`ReferenceChecks`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np

from tspo_bidsapp.anat.labels import TSPOMS_LABELS
from tspo_bidsapp.io.timing import FrameTiming
from tspo_bidsapp.quant.tacs import mask_mean_tac

# "wholebrain": a pseudo-reference for tracers or scans without a reference region (e.g. static
# PET of a tracer without a cerebellar reference): the brain mask minus lesions. TSPO binding is
# widespread, so ratios to it are relative measures only (SUVR-like, not BPND).
REF_REGIONS = ("cerebellum", "svca", "wholebrain")
# A user-named reference: any TSPO-MS region (``seg-tspoms_dseg.tsv`` name, e.g. "NAWM",
# "cortical-GM") minus lesions; the lesion label itself cannot be a reference.
NAMED_REF_REGIONS = tuple(name for name in TSPOMS_LABELS.values() if name != "WM-lesions")


def parse_ref_region(value: str) -> str:
    """The canonical ``--ref-region`` (case-insensitive); ``ValueError`` listing the choices."""
    choices = {name.lower(): name for name in (*REF_REGIONS, *NAMED_REF_REGIONS)}
    try:
        return choices[str(value).strip().lower()]
    except KeyError:
        raise ValueError(
            f"--ref-region must be one of {', '.join(REF_REGIONS)} or a TSPO-MS region "
            f"({', '.join(NAMED_REF_REGIONS)}), got {value!r}"
        ) from None


def ref_entity(ref_region: str) -> str:
    """The BIDS ``ref-`` label of a reference (alphanumeric): "cortical-GM" -> "corticalGM"."""
    return re.sub(r"[^A-Za-z0-9]", "", ref_region)


@dataclass(frozen=True)
class ReferenceChecks:
    """Limits of a plausible TSPO reference region.

    ``min_volume_ml``: a cerebellar GM reference of a few mL already averages ~100 PET voxels
    (2 mm); below 5 mL the TAC is noisy and spill-over dominated. ``max_peak_min``: a reference
    without specific binding peaks within minutes of injection (TSPO ligands: 1-10 min in
    cerebellum); a peak after 20 min points to a wrong region, bad timing or motion.
    ``max_cerebellar_lesion_ml``: cerebellar lesion volume that is worth a warning.
    """

    min_volume_ml: float = 5.0
    max_peak_min: float = 20.0
    max_cerebellar_lesion_ml: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def cerebellum_reference(
    data: np.ndarray, candidate: np.ndarray, lesion_mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Reference mask (candidate minus lesions) and its mean TAC (n_frames,) in the PET's units."""
    mask = np.asarray(candidate, bool).copy()
    if lesion_mask is not None:
        mask &= ~np.asarray(lesion_mask, bool)
    return mask, mask_mean_tac(data, mask)


def _frames(n: int) -> str:
    """``"1 frame"``, ``"3 frames"``."""
    return f"{n} frame" if n == 1 else f"{n} frames"


def region_reference(
    data: np.ndarray,
    dseg: np.ndarray,
    index: int,
    lesion_mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Reference mask (voxels of label ``index`` in ``dseg`` minus lesions) and its mean TAC."""
    return cerebellum_reference(data, np.asarray(dseg) == index, lesion_mask)


def check_reference(
    tac: np.ndarray,
    timing: FrameTiming,
    volume_ml: float,
    *,
    cerebellar_lesion_ml: float = 0.0,
    ref_region: str = "cerebellum",
    limits: ReferenceChecks = ReferenceChecks(),
) -> list[str]:
    """Warnings about a reference TAC (frame averages, any activity unit) and region.

    Flags: volume below ``limits.min_volume_ml``; non-finite or negative frames; a peak later
    than ``limits.max_peak_min`` (frame mid-time, minutes); a peak that is not positive;
    cerebellar lesions (mL) when the cerebellum is the reference.
    """
    tac = np.asarray(tac, float).reshape(-1)
    name = f"reference region ({ref_region})"
    out: list[str] = []
    if not volume_ml >= limits.min_volume_ml:
        out.append(
            f"{name}: volume {volume_ml:.2f} mL is below {limits.min_volume_ml:g} mL; "
            "its TAC will be noisy"
        )
    if tac.size != timing.n_frames:
        raise ValueError(f"reference TAC has {tac.size} values for {timing.n_frames} frames")
    bad = ~np.isfinite(tac)
    if bad.any():
        out.append(f"{name}: TAC is not finite in {_frames(int(bad.sum()))}")
    negative = np.flatnonzero(np.nan_to_num(tac, nan=0.0) < 0)
    if negative.size:
        out.append(
            f"{name}: TAC is negative in {_frames(negative.size)} (first at "
            f"{timing.mid_min[negative[0]]:.1f} min)"
        )
    if np.any(np.isfinite(tac)):
        peak = int(np.nanargmax(tac))
        if not tac[peak] > 0:
            out.append(f"{name}: TAC has no positive value")
        elif timing.n_frames > 1 and timing.mid_min[peak] > limits.max_peak_min:
            out.append(
                f"{name}: TAC peaks at {timing.mid_min[peak]:.1f} min, later than "
                f"{limits.max_peak_min:g} min; implausible for a TSPO reference region "
                "(check frame timing, motion and the region)"
            )
    if ref_region == "cerebellum" and cerebellar_lesion_ml > limits.max_cerebellar_lesion_ml:
        out.append(
            f"{name}: {cerebellar_lesion_ml:.2f} mL of lesion in cerebellar grey matter; "
            "the lesions were removed from the reference, but inflammation nearby may bias it"
        )
    return out
