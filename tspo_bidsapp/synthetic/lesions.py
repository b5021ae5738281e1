"""White-matter lesions with a known TSPO phenotype, planted in the tissue map.

A lesion is a ball (or, when confluent, a chain of three overlapping balls) lying wholly in
normal-appearing white matter. Sizes follow real MS lesion loads, dominated by small lesions:
nominal diameters are log-normal with a median of 5.5 mm (most lesions 3-8 mm, i.e. below
0.3 mL; Thompson AJ et al. 2018 and the lesion-size distributions of the MICCAI 2016 and
open_ms_data expert masks: median lesion volume ~0.05-0.1 mL), clipped to 3-12 mm, plus one or
two confluent lesions of 12-22 mm. The phenotype is drawn independently of the size, so
rim-active lesions occur at every size. Lesions smaller than two voxels of the grid cannot be
drawn and are raised to that size. The lesion (its *core*) is what FLAIR shows; its *rim* is the 2 mm shell of white
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
MAX_DIAMETER_MM = 22.0  # confluent lesions; single balls stay <= MAX_FOCAL_DIAMETER_MM
MAX_FOCAL_DIAMETER_MM = 12.0
MEDIAN_DIAMETER_MM = 5.5
LOG_SD = 0.35  # log-normal spread of focal diameters (about 3-9 mm for the central 90 %)
CONFLUENT_DIAMETER_MM = (12.0, 22.0)  # overall extent of a confluent lesion
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
    size_mm: float = 0.0  # equivalent-sphere diameter of the measured volume (mm)
    confluent: bool = False  # a chain of three overlapping balls along ``axis``
    axis: tuple[float, float, float] = (1.0, 0.0, 0.0)
    core_bpnd: float = float("nan")
    rim_bpnd: float = float("nan")


def draw_lesion_specs(group: str, rng: np.random.Generator) -> list[tuple[str, float]]:
    """Phenotype and nominal diameter (mm) of the lesions of one participant (none for HC).

    10-15 lesions: one or two confluent (diameter >= 12 mm), the rest focal, log-normal around
    :data:`MEDIAN_DIAMETER_MM`. Phenotypes are shuffled over the sizes.
    """
    if group not in PHENOTYPE_SHARE:
        return []
    n = int(rng.integers(10, 16))
    share = np.asarray(PHENOTYPE_SHARE[group])
    counts = np.maximum(1, np.round(share * n).astype(int))
    counts[2] = max(1, n - counts[0] - counts[1])
    phenotypes = np.repeat(PHENOTYPES, counts)
    rng.shuffle(phenotypes)
    n_confluent = int(rng.integers(1, 3))
    focal = np.exp(rng.normal(np.log(MEDIAN_DIAMETER_MM), LOG_SD, size=phenotypes.size))
    focal = np.clip(focal, MIN_DIAMETER_MM, MAX_FOCAL_DIAMETER_MM)
    focal[:n_confluent] = rng.uniform(*CONFLUENT_DIAMETER_MM, size=n_confluent)
    return [(str(p), float(np.round(d, 1))) for p, d in zip(phenotypes, focal, strict=True)]


def plant_lesions(
    anatomy: Anatomy, specs: list[tuple[str, float]], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, list[Lesion]]:
    """Place the lesions in NAWM, largest first, without overlap of lesion + perilesional shells.

    Returns the tissue labels with lesions, an integer lesion-id map (T1w grid) and the
    lesion table. A lesion that finds no room is dropped (never happens for the standard
    counts on the MNI template). Diameters below two voxels are raised to two voxels (the
    smallest ball the grid draws with a centre and its six neighbours).
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
        diameter = max(float(diameter), 2.0 * vox)
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
        axis = rng.standard_normal(3)
        lesion = Lesion(
            len(lesions) + 1, phenotype, diameter, tuple(float(c) for c in centre),
            confluent=diameter > MAX_FOCAL_DIAMETER_MM,
            axis=tuple(float(a) for a in axis / np.linalg.norm(axis)),
        )  # fmt: skip
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
        lesion.size_mm = float(np.cbrt(6.0 * lesion.volume_ml * 1000.0 / np.pi))
    return labels, ids, sorted(lesions, key=lambda les: les.id)


def _paint(labels, ids, affine, inv, lesion: Lesion) -> None:
    """Write one lesion (core class and id) and its outer 2 mm rim (in NAWM) into the maps.

    A confluent lesion of extent D is the union of three balls of diameter D/2 centred at
    -D/4, 0 and +D/4 along ``lesion.axis``; ``signed`` is the distance outside its surface.
    """
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
    centre = np.asarray(lesion.centre_mm, np.float32)
    if lesion.confluent:
        offsets = np.outer([-0.5 * radius, 0.0, 0.5 * radius], lesion.axis)
        lobe = radius / 2.0
    else:
        offsets, lobe = np.zeros((1, 3)), radius
    signed = np.min(
        [
            np.sqrt(((xyz - (centre + o).astype(np.float32).reshape(3, 1, 1, 1)) ** 2).sum(0))
            for o in offsets
        ],
        axis=0,
    ) - np.float32(lobe)
    nawm = labels[box] == NAWM
    inside = (signed <= 0) & nawm
    rim = (signed > 0) & (signed <= RIM_MM) & nawm
    core_label = CORE_LABEL[lesion.phenotype]
    labels[box][inside] = core_label
    labels[box][rim] = core_label + 1
    ids[box][inside] = lesion.id
