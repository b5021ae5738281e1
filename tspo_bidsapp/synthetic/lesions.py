"""White-matter lesions with a known TSPO phenotype, planted in the tissue map.

A lesion is a ball of nominal diameter 3-15 mm lying wholly in normal-appearing white
matter. The lesion (its *core*) is what FLAIR shows; its *rim* is the 2 mm shell of white
matter just outside the lesion edge, where activated microglia sit at the border of chronic
active lesions; white matter 2-5 mm outside the edge becomes *perilesional WM*. Phenotypes follow the TSPO-PET lesion classification of MS (Kaunzner
et al. 2019, Brain 142:133-145; Nylund et al. 2022, Ann Clin Transl Neurol 9:1357):
rim-active (low core, high rim), overall-active (high throughout) and inactive.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from tspo_bidsapp.synthetic.anatomy import (
    INACTIVE_CORE,
    NAWM,
    OVERALL_ACTIVE_CORE,
    PERILESIONAL_WM,
    RIM_ACTIVE_CORE,
    Anatomy,
    voxel_world_coords,
)

RIM_MM = 2.0
PERILESIONAL_MM = 3.0
MIN_DIAMETER_MM = 3.0
MAX_DIAMETER_MM = 15.0
MIN_RIM_ACTIVE_DIAMETER_MM = 8.0
PHENOTYPES = ("rim-active", "overall-active", "inactive")
CORE_LABEL = {
    "rim-active": RIM_ACTIVE_CORE,
    "overall-active": OVERALL_ACTIVE_CORE,
    "inactive": INACTIVE_CORE,
}
# Share of lesions per phenotype (rim-active, overall-active, inactive): SPMS carries more
# smouldering rim-active lesions than RRMS (Absinta et al. 2019, JAMA Neurol 76:1474).
PHENOTYPE_SHARE = {"RRMS": (0.2, 0.35, 0.45), "SPMS": (0.35, 0.15, 0.5)}


@dataclass
class Lesion:
    id: int
    phenotype: str
    diameter_mm: float  # nominal (ball) diameter
    centre_mm: tuple[float, float, float]  # RAS mm on the T1w grid
    volume_ml: float = 0.0  # measured on the T1w grid
    core_bpnd: float = float("nan")
    rim_bpnd: float = float("nan")


def draw_lesion_specs(group: str, rng: np.random.Generator) -> list[tuple[str, float]]:
    """Phenotype and nominal diameter (mm) of the lesions of one participant (none for HC)."""
    if group not in PHENOTYPE_SHARE:
        return []
    n = int(rng.integers(8, 13))
    share = np.asarray(PHENOTYPE_SHARE[group])
    counts = np.maximum(1, np.round(share * n).astype(int))
    counts[2] = max(1, n - counts[0] - counts[1])
    specs = []
    for phenotype, count in zip(PHENOTYPES, counts, strict=True):
        low = MIN_RIM_ACTIVE_DIAMETER_MM if phenotype == "rim-active" else MIN_DIAMETER_MM
        diameters = np.exp(rng.uniform(np.log(low), np.log(MAX_DIAMETER_MM), size=count))
        specs += [(phenotype, float(np.round(d, 1))) for d in diameters]
    return specs


def plant_lesions(
    anatomy: Anatomy, specs: list[tuple[str, float]], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, list[Lesion]]:
    """Place the lesions in NAWM, largest first, without overlap of lesion + perilesional shells.

    Returns the tissue labels with lesions, an integer lesion-id map (T1w grid) and the
    lesion table. A lesion that finds no room is dropped (never happens for the standard
    counts on the MNI template).
    """
    labels = anatomy.labels.copy()
    ids = np.zeros(labels.shape, np.uint16)
    vox = anatomy.voxel_mm
    wm = labels == NAWM
    depth = ndimage.distance_transform_edt(wm, sampling=vox)
    lesions: list[Lesion] = []
    order = sorted(range(len(specs)), key=lambda i: -specs[i][1])
    inv = np.linalg.inv(anatomy.affine)
    for i in order:
        phenotype, diameter = specs[i]
        radius = diameter / 2.0
        candidates = np.argwhere(depth >= radius + 0.5 * vox)
        centre = None
        for _ in range(200):
            if candidates.size == 0:
                break
            ijk = candidates[rng.integers(len(candidates))]
            xyz = anatomy.affine[:3, :3] @ ijk + anatomy.affine[:3, 3]
            gap = [
                np.linalg.norm(xyz - np.asarray(o.centre_mm))
                - (radius + o.diameter_mm / 2 + 2 * (RIM_MM + PERILESIONAL_MM))
                for o in lesions
            ]
            if min(gap, default=1.0) > 0:
                centre = xyz
                break
        if centre is None:
            continue
        lesion = Lesion(len(lesions) + 1, phenotype, diameter, tuple(float(c) for c in centre))
        lesions.append(lesion)
        _paint(labels, ids, anatomy.affine, inv, lesion)
    # Perilesional white matter: NAWM within PERILESIONAL_MM beyond the rims.
    if lesions:
        outside = ndimage.distance_transform_edt(ids == 0, sampling=vox)
        shell = (labels == NAWM) & (outside <= RIM_MM + PERILESIONAL_MM)
        labels[shell] = PERILESIONAL_WM
    voxel_ml = vox**3 / 1000.0
    counts = np.bincount(ids.ravel(), minlength=len(lesions) + 1)
    for lesion in lesions:
        lesion.volume_ml = float(counts[lesion.id] * voxel_ml)
    return labels, ids, sorted(lesions, key=lambda les: les.id)


def _paint(labels, ids, affine, inv, lesion: Lesion) -> None:
    """Write one lesion (core class and id) and its outer 2 mm rim (in NAWM) into the maps."""
    radius = lesion.diameter_mm / 2.0
    vox = abs(affine[0, 0])
    centre_ijk = inv[:3, :3] @ np.asarray(lesion.centre_mm) + inv[:3, 3]
    half = int(np.ceil((radius + RIM_MM) / vox)) + 1
    lo = np.maximum(np.round(centre_ijk).astype(int) - half, 0)
    hi = np.minimum(np.round(centre_ijk).astype(int) + half + 1, labels.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    box_affine = affine.copy()
    box_affine[:3, 3] = affine[:3, :3] @ lo + affine[:3, 3]
    xyz = voxel_world_coords(box_affine, tuple(hi - lo))
    dist = np.sqrt(
        ((xyz - np.asarray(lesion.centre_mm, np.float32).reshape(3, 1, 1, 1)) ** 2).sum(0)
    )
    nawm = labels[box] == NAWM
    inside = (dist <= radius) & nawm
    rim = (dist > radius) & (dist <= radius + RIM_MM) & nawm
    core_label = CORE_LABEL[lesion.phenotype]
    labels[box][inside] = core_label
    labels[box][rim] = core_label + 1
    ids[box][inside] = lesion.id
