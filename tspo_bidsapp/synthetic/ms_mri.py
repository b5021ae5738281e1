"""MS-like lesion appearance on T1w, FLAIR and T2w, for measuring lesion detection honestly.

Unlike :mod:`tspo_bidsapp.synthetic.mri` (one fixed, very bright FLAIR value per phenotype), every
lesion here draws its own contrast from the range reported for MS white-matter lesions at 3 T
relative to normal-appearing WM: FLAIR 1.25-1.65, T2w 1.3-2.2, T1w 0.6-0.97 (most lesions are
only mildly T1-hypointense; Bagnato et al. 2003, Brain 126:1782; Lesjak et al. 2018,
Neuroinformatics 16:51). Lesion borders are blurred (partial volume, so a 3 mm lesion barely
reaches its nominal contrast), FLAIR noise is a realistic 6 % of WM, GM is only 1.2x WM on FLAIR,
and two classic false-positive sources are drawn: a thin hyperintense ependymal band around the
ventricles (FLAIR 1.2x WM) and a FLAIR-bright choroid plexus. Intensities: WM about 1000.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from tspo_bidsapp.synthetic import anatomy as an
from tspo_bidsapp.synthetic.mri import LESION_EDGE_SIGMA_MM, bias_field, rician

#: Per-lesion contrast ranges (lesion / NAWM), drawn uniformly.
LESION_CONTRAST = {"t1w": (0.6, 0.97), "flair": (1.25, 1.65), "t2w": (1.3, 2.2)}
#: Tissue intensities relative to WM.
TISSUE = {
    "flair": {"csf": 0.12, "gm": 1.2, "wm": 1.0},
    "t2w": {"csf": 3.0, "gm": 1.35, "wm": 1.0},
}
NOISE = {"t1w": 0.03, "flair": 0.06, "t2w": 0.06}  #: Rician sigma / WM intensity
BIAS = {"t1w": 0.10, "flair": 0.15, "t2w": 0.12}  #: peak relative bias-field amplitude
EPENDYMAL_MM = 1.5  #: width of the periventricular FLAIR band (mm)
EPENDYMAL_FLAIR = 1.2  #: its FLAIR intensity relative to WM
CHOROID_FLAIR = 1.3  #: choroid plexus on FLAIR relative to WM
#: Lesion-load phantom: lesion volumes log-uniform in this range (mL), as in real MS where
#: small lesions dominate the count (about half the lesions are below 0.1 mL).
PHANTOM_VOLUME_ML = (0.008, 2.5)
PHANTOM_N_LESIONS = 24


def phantom_lesion_specs(rng: np.random.Generator, n: int = PHANTOM_N_LESIONS):
    """(phenotype, diameter mm) of ``n`` lesions with log-uniform volumes (PHANTOM_VOLUME_ML)."""
    lo, hi = np.log(PHANTOM_VOLUME_ML[0]), np.log(PHANTOM_VOLUME_ML[1])
    volume_mm3 = 1000.0 * np.exp(rng.uniform(lo, hi, size=n))
    diameters = np.cbrt(6.0 * volume_mm3 / np.pi)
    return [("inactive", float(np.round(d, 1))) for d in diameters]


def _contrast_map(lesion_ids: np.ndarray, ratios: np.ndarray, voxel_mm: float):
    """Soft lesion weight (partial volume) and the lesion/WM ratio it blends towards."""
    inside = (lesion_ids > 0).astype(np.float32)
    target = ratios[lesion_ids].astype(np.float32) * inside
    sigma = LESION_EDGE_SIGMA_MM / voxel_mm
    weight = ndimage.gaussian_filter(inside, sigma)
    value = ndimage.gaussian_filter(target, sigma) / np.maximum(weight, 1e-6)
    return weight, value


def _tissue_base(anatomy: an.Anatomy, levels: dict[str, float]) -> np.ndarray:
    return (
        levels["csf"] * anatomy.csf + levels["gm"] * anatomy.gm + levels["wm"] * anatomy.wm
    ).astype(np.float32)


def synth_ms_contrasts(
    anatomy: an.Anatomy,
    labels: np.ndarray,
    lesion_ids: np.ndarray,
    rng: np.random.Generator,
    noise: bool = True,
) -> dict[str, np.ndarray]:
    """T1w, FLAIR and T2w (float32, WM about 1000) with per-lesion contrasts (dict by contrast)."""
    n = int(lesion_ids.max())
    lesion_ids = lesion_ids.astype(np.int64)
    wm_level = float(np.median(anatomy.template[labels == an.NAWM]))
    bases = {
        "t1w": anatomy.template / np.float32(wm_level),
        "flair": _tissue_base(anatomy, TISSUE["flair"]),
        "t2w": _tissue_base(anatomy, TISSUE["t2w"]),
    }
    ventricles = ndimage.binary_opening(labels == an.CSF, iterations=2)
    near = ndimage.distance_transform_edt(~ventricles, sampling=anatomy.voxel_mm)
    band = (near > 0) & (near <= EPENDYMAL_MM) & (anatomy.wm > 0.5)
    flair = bases["flair"]
    flair[band] = np.maximum(flair[band], EPENDYMAL_FLAIR)
    flair[labels == an.CHOROID_PLEXUS] = CHOROID_FLAIR
    out = {}
    for name, base in bases.items():
        low, high = LESION_CONTRAST[name]
        ratios = np.concatenate([[0.0], rng.uniform(low, high, size=n)])
        weight, value = _contrast_map(lesion_ids, ratios, anatomy.voxel_mm)
        image = 1000.0 * (base * (1.0 - weight) + value * weight) * anatomy.brain
        image = image * bias_field(image.shape, BIAS[name], rng)
        if noise:
            image = rician(image, NOISE[name] * 1000.0, rng) * anatomy.brain
        out[name] = image.astype(np.float32)
    return out


def emulated_samseg(
    labels: np.ndarray, lesion_ids: np.ndarray, affine: np.ndarray, found_above_ml: float = 0.2
) -> tuple[np.ndarray, np.ndarray]:
    """(dseg, lesion posterior) as SAMSEG would give them if it found exactly the lesions larger
    than ``found_above_ml`` (posterior 0.9, label 99) and saw the others as WM."""
    from tspo_bidsapp.synthetic.derivatives import truth_to_freesurfer

    dseg = truth_to_freesurfer(labels, affine)
    voxel_ml = float(abs(np.linalg.det(affine[:3, :3]))) / 1000.0
    volume_ml = np.bincount(lesion_ids.ravel()) * voxel_ml
    found = (lesion_ids > 0) & (volume_ml[lesion_ids] > found_above_ml)
    x_mm = affine[0, 0] * np.arange(labels.shape[0]) + affine[0, 3]  # axis-aligned grid
    right = np.broadcast_to((x_mm >= 0)[:, None, None], labels.shape)
    missed = (lesion_ids > 0) & ~found
    dseg[missed & right] = 41  # right / left cerebral WM
    dseg[missed & ~right] = 2
    return dseg, np.where(found, 0.9, 0.0).astype(np.float32)
