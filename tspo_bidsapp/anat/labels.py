"""Label tables: SAMSEG/FreeSurfer whole-brain labels and the TSPO-MS region set (``seg-tspoms``).

Whole-brain indices follow FreeSurfer's ``FreeSurferColorLUT.txt`` (the table SAMSEG writes);
99 is SAMSEG's lesion class.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

#: Whole-brain labels that SAMSEG (lesion atlas) can write, index -> FreeSurfer name.
FREESURFER_LABELS: dict[int, str] = {
    0: "Unknown",
    2: "Left-Cerebral-White-Matter",
    3: "Left-Cerebral-Cortex",
    4: "Left-Lateral-Ventricle",
    5: "Left-Inf-Lat-Vent",
    7: "Left-Cerebellum-White-Matter",
    8: "Left-Cerebellum-Cortex",
    10: "Left-Thalamus",
    11: "Left-Caudate",
    12: "Left-Putamen",
    13: "Left-Pallidum",
    14: "3rd-Ventricle",
    15: "4th-Ventricle",
    16: "Brain-Stem",
    17: "Left-Hippocampus",
    18: "Left-Amygdala",
    24: "CSF",
    26: "Left-Accumbens-area",
    28: "Left-VentralDC",
    30: "Left-vessel",
    31: "Left-choroid-plexus",
    41: "Right-Cerebral-White-Matter",
    42: "Right-Cerebral-Cortex",
    43: "Right-Lateral-Ventricle",
    44: "Right-Inf-Lat-Vent",
    46: "Right-Cerebellum-White-Matter",
    47: "Right-Cerebellum-Cortex",
    49: "Right-Thalamus",
    50: "Right-Caudate",
    51: "Right-Putamen",
    52: "Right-Pallidum",
    53: "Right-Hippocampus",
    54: "Right-Amygdala",
    58: "Right-Accumbens-area",
    60: "Right-VentralDC",
    62: "Right-vessel",
    63: "Right-choroid-plexus",
    72: "5th-Ventricle",
    77: "WM-hypointensities",
    80: "non-WM-hypointensities",
    85: "Optic-Chiasm",
    99: "Lesions",
    165: "Skull",
    258: "Soft_Nonbrain_Tissue",
    259: "Fluid_Inside_Eyes",
}

#: FreeSurfer indices that are not brain (excluded from the brain mask).
NON_BRAIN = (0, 165, 258, 259)

#: FreeSurfer index groups used to build the TSPO-MS regions.
CEREBRAL_WM = (2, 41, 85)
LESION = (99,)
#: FreeSurfer's WM hypointensities: where aseg puts MS lesions; lesion, never NAWM.
WM_HYPOINTENSITIES = (77,)
CORTEX = (3, 42)
THALAMUS = (10, 49)
CAUDATE = (11, 50)
PUTAMEN = (12, 51)
PALLIDUM = (13, 52)
HIPPOCAMPUS = (17, 53)
AMYGDALA = (18, 54)
CEREBELLUM_CORTEX = (8, 47)
CEREBELLUM_WM = (7, 46)
BRAINSTEM = (16,)
CHOROID_PLEXUS = (31, 63)
VENTRICLES = (4, 5, 14, 15, 43, 44, 72)
EXTRACEREBRAL_CSF = (24,)  #: sulcal/cisternal CSF (SAMSEG 'CSF')
OTHER_SUBCORTICAL = (26, 28, 30, 58, 60, 62, 80)  #: 80: non-WM hypointensities, not cortex

#: TSPO-MS region set: index -> name (written as ``seg-tspoms_dseg.tsv``).
TSPOMS_LABELS: dict[int, str] = {
    1: "WM-lesions",
    2: "perilesional-WM-0-3mm",
    3: "perilesional-WM-3-6mm",
    4: "NAWM",
    5: "cortical-GM",
    6: "thalamus",
    7: "caudate",
    8: "putamen",
    9: "pallidum",
    10: "hippocampus",
    11: "amygdala",
    12: "cerebellar-GM-reference",
    13: "cerebellar-GM-excluded",
    14: "cerebellar-WM",
    15: "brainstem",
    16: "choroid-plexus",
    17: "ventricles",
    18: "other-subcortical",
    19: "CSF-extracerebral",
}
TSPOMS_INDEX: dict[str, int] = {name: idx for idx, name in TSPOMS_LABELS.items()}


def in_labels(dseg: np.ndarray, labels: tuple[int, ...]) -> np.ndarray:
    """Boolean mask of voxels whose label is one of ``labels``."""
    return np.isin(dseg, np.asarray(labels, dtype=dseg.dtype))


def wm_hypointensity_lesions(
    dseg: np.ndarray, lesion_mask: np.ndarray, voxel_ml: float
) -> tuple[np.ndarray, str | None]:
    """Lesion mask extended by FreeSurfer's WM hypointensities (77), and a warning if it grew.

    A FreeSurfer segmentation labels MS lesions 77; counted as white matter they would raise
    the NAWM signal, so they join the lesions (and leave NAWM).
    """
    extra = in_labels(np.asarray(dseg), WM_HYPOINTENSITIES) & ~np.asarray(lesion_mask, bool)
    if not extra.any():
        return np.asarray(lesion_mask, bool), None
    message = (
        f"{float(extra.sum()) * voxel_ml:.2f} mL of FreeSurfer WM-hypointensities (label 77) "
        "outside the lesion mask were added to the lesions (excluded from NAWM)"
    )
    return np.asarray(lesion_mask, bool) | extra, message


def write_dseg_tsv(path: str | Path, labels: Mapping[int, str]) -> Path:
    """Write a BIDS ``dseg.tsv`` (columns ``index``, ``name``), background omitted."""
    path = Path(path)
    rows = ["index\tname"] + [f"{idx}\t{name}" for idx, name in sorted(labels.items()) if idx != 0]
    path.write_text("\n".join(rows) + "\n")
    return path


def read_dseg_tsv(path: str | Path) -> dict[int, str]:
    """Read a BIDS ``dseg.tsv``; raise a ``ValueError`` naming the file and the missing column."""
    path = Path(path)
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    if not lines:
        raise ValueError(f"{path}: empty dseg.tsv")
    header = lines[0].split("\t")
    for column in ("index", "name"):
        if column not in header:
            raise ValueError(f"{path}: dseg.tsv has no '{column}' column (header: {header})")
    i_idx, i_name = header.index("index"), header.index("name")
    table: dict[int, str] = {}
    for lineno, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        try:
            table[int(fields[i_idx])] = fields[i_name]
        except (ValueError, IndexError) as err:
            raise ValueError(f"{path}: line {lineno}: bad 'index'/'name' entry {line!r}") from err
    return table


def check_freesurfer_table(table: Mapping[int, str], source: str | Path) -> None:
    """Check that a supplied ``dseg.tsv`` uses FreeSurfer aseg indices for the structures we need.

    Names are compared case-insensitively, ignoring ``-Proper`` (older FreeSurfer thalamus name).
    """
    needed = CEREBRAL_WM[:2] + CORTEX[:2] + CEREBELLUM_CORTEX
    missing = [idx for idx in needed if idx not in table]
    if missing:
        raise ValueError(
            f"{source}: segmentation table lacks FreeSurfer aseg indices {missing} "
            "(cerebral WM/cortex, cerebellar cortex); supply an aseg-labelled dseg"
        )
    for idx, name in table.items():
        expected = FREESURFER_LABELS.get(idx)
        if expected is None:
            continue
        norm = name.lower().replace("-proper", "").replace("_", "-")
        if norm != expected.lower().replace("_", "-") and idx in needed:
            raise ValueError(
                f"{source}: index {idx} is named {name!r}, expected FreeSurfer {expected!r}"
            )
