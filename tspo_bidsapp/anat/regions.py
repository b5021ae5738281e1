"""TSPO-MS region set from a whole-brain segmentation and a lesion mask (plain numpy/scipy).

Lesions are connected components (26-connectivity by default); perilesional shells are distance
bands in millimetres from the nearest lesion voxel (exact Euclidean distance transform, voxel
sizes as sampling) restricted to cerebral WM; NAWM is what is left of cerebral WM. The cerebellar
GM reference candidate is lesion-free cerebellar cortex eroded by a millimetre margin to limit
spill-in from the tentorium, venous sinuses and cerebellar WM (cf. Lyoo et al., J Nucl Med
56:701-706, 2015, on cerebellar TSPO reference regions).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from tspo_bidsapp.anat import labels as L

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegionParams:
    """Parameters of the TSPO-MS region set (recorded in the outputs' provenance)."""

    min_lesion_volume_mm3: float = 10.0  #: smaller components are discarded (mm^3)
    connectivity: int = 26  #: 6, 18 or 26 neighbours for lesion components
    shell_edges_mm: tuple[float, ...] = (0.0, 3.0, 6.0)  #: perilesional band edges (mm)
    cerebellum_erosion_mm: float = 2.0  #: erosion of the cerebellar GM reference (mm)

    def as_dict(self) -> dict:
        return asdict(self)


DEFAULT_REGION_PARAMS = RegionParams()


def _structure(connectivity: int) -> np.ndarray:
    ranks = {6: 1, 18: 2, 26: 3}
    if connectivity not in ranks:
        raise ValueError(f"connectivity must be 6, 18 or 26, got {connectivity}")
    return ndimage.generate_binary_structure(3, ranks[connectivity])


def label_lesions(
    mask: np.ndarray,
    zooms: tuple[float, float, float],
    *,
    min_volume_mm3: float = 10.0,
    connectivity: int = 26,
) -> np.ndarray:
    """Connected lesion components with ids 1..N (largest first); components < ``min_volume_mm3`` dropped."""
    comp, n = ndimage.label(np.asarray(mask, bool), structure=_structure(connectivity))
    if n == 0:
        return np.zeros(mask.shape, np.int32)
    sizes = np.bincount(comp.ravel())[1:] * float(np.prod(zooms))
    keep = np.flatnonzero(sizes >= min_volume_mm3)
    order = keep[np.argsort(-sizes[keep], kind="stable")]
    relabel = np.zeros(n + 1, np.int32)
    relabel[order + 1] = np.arange(1, order.size + 1, dtype=np.int32)
    return relabel[comp]


def lesion_distance_mm(lesion: np.ndarray, zooms: tuple[float, float, float]) -> np.ndarray:
    """Euclidean distance (mm) from every voxel to the nearest lesion voxel (0 inside lesions)."""
    lesion = np.asarray(lesion, bool)
    if not lesion.any():
        return np.full(lesion.shape, np.inf)
    return ndimage.distance_transform_edt(~lesion, sampling=zooms)


def perilesional_shells(
    lesion: np.ndarray,
    wm: np.ndarray,
    zooms: tuple[float, float, float],
    edges_mm: tuple[float, ...] = (0.0, 3.0, 6.0),
) -> list[np.ndarray]:
    """Shells ``edges[k] < d <= edges[k+1]`` (mm) within ``wm`` and outside lesions, one per band."""
    lesion = np.asarray(lesion, bool)
    wm = np.asarray(wm, bool) & ~lesion
    dist = lesion_distance_mm(lesion, zooms)
    return [
        wm & (dist > lo) & (dist <= hi) for lo, hi in zip(edges_mm[:-1], edges_mm[1:], strict=True)
    ]


def erode_mm(mask: np.ndarray, zooms: tuple[float, float, float], margin_mm: float) -> np.ndarray:
    """Keep voxels of ``mask`` farther than ``margin_mm`` (mm) from any voxel outside it."""
    mask = np.asarray(mask, bool)
    if margin_mm <= 0:
        return mask.copy()
    padded = np.pad(mask, 1)  # the image border counts as outside
    dist = ndimage.distance_transform_edt(padded, sampling=zooms)[1:-1, 1:-1, 1:-1]
    return mask & (dist > margin_mm)


def build_tspoms(
    dseg: np.ndarray,
    lesion_mask: np.ndarray,
    zooms: tuple[float, float, float],
    params: RegionParams = DEFAULT_REGION_PARAMS,
) -> tuple[np.ndarray, np.ndarray]:
    """TSPO-MS label map (indices of :data:`labels.TSPOMS_LABELS`) and the lesion-id map.

    ``dseg`` holds FreeSurfer labels (SAMSEG or aseg); ``lesion_mask`` is the lesion mask that wins
    over any lesion label in ``dseg``. SAMSEG lesion voxels (99) outside the final mask count as
    cerebral WM; FreeSurfer WM-hypointensities (77) join the lesions (a warning is logged).
    Lesions are taken wherever they lie in the brain.
    """
    dseg = np.asarray(dseg)
    if dseg.shape != lesion_mask.shape:
        raise ValueError(f"dseg shape {dseg.shape} != lesion mask shape {lesion_mask.shape}")
    brain = ~L.in_labels(dseg, L.NON_BRAIN)
    lesion_mask, message = L.wm_hypointensity_lesions(dseg, lesion_mask, np.prod(zooms) / 1e3)
    if message:
        LOGGER.warning(message)
    lesion_ids = label_lesions(
        np.asarray(lesion_mask, bool) & brain,
        zooms,
        min_volume_mm3=params.min_lesion_volume_mm3,
        connectivity=params.connectivity,
    )
    lesion = lesion_ids > 0
    cerebral_wm = (L.in_labels(dseg, L.CEREBRAL_WM) | L.in_labels(dseg, L.LESION)) & ~lesion
    shells = perilesional_shells(lesion, cerebral_wm, zooms, params.shell_edges_mm)
    if len(shells) != 2:
        raise ValueError(f"shell_edges_mm must give two bands, got {params.shell_edges_mm}")
    cereb_gm = L.in_labels(dseg, L.CEREBELLUM_CORTEX) & ~lesion
    reference = erode_mm(cereb_gm, zooms, params.cerebellum_erosion_mm)

    out = np.zeros(dseg.shape, np.uint8)
    simple = [
        ("cortical-GM", L.CORTEX),
        ("thalamus", L.THALAMUS),
        ("caudate", L.CAUDATE),
        ("putamen", L.PUTAMEN),
        ("pallidum", L.PALLIDUM),
        ("hippocampus", L.HIPPOCAMPUS),
        ("amygdala", L.AMYGDALA),
        ("cerebellar-WM", L.CEREBELLUM_WM),
        ("brainstem", L.BRAINSTEM),
        ("choroid-plexus", L.CHOROID_PLEXUS),
        ("ventricles", L.VENTRICLES),
        ("CSF-extracerebral", L.EXTRACEREBRAL_CSF),
        ("other-subcortical", L.OTHER_SUBCORTICAL),
    ]
    for name, group in simple:
        out[L.in_labels(dseg, group)] = L.TSPOMS_INDEX[name]
    out[cerebral_wm] = L.TSPOMS_INDEX["NAWM"]
    out[shells[1]] = L.TSPOMS_INDEX["perilesional-WM-3-6mm"]
    out[shells[0]] = L.TSPOMS_INDEX["perilesional-WM-0-3mm"]
    out[cereb_gm] = L.TSPOMS_INDEX["cerebellar-GM-excluded"]
    out[reference] = L.TSPOMS_INDEX["cerebellar-GM-reference"]
    out[lesion] = L.TSPOMS_INDEX["WM-lesions"]
    return out, lesion_ids


def region_volumes_ml(
    labelmap: np.ndarray, zooms: tuple[float, float, float], table: dict[int, str]
) -> dict[str, float]:
    """Volume (mL) of every region of ``table`` in ``labelmap`` (0 for absent regions)."""
    counts = np.bincount(np.asarray(labelmap, np.int64).ravel(), minlength=max(table) + 1)
    voxel_ml = float(np.prod(zooms)) / 1000.0
    return {name: float(counts[idx]) * voxel_ml for idx, name in sorted(table.items())}


def lesion_table(lesion_ids: np.ndarray, zooms: tuple[float, float, float], affine: np.ndarray):
    """Per-lesion rows: id, volume (mL) and centre of mass (RAS mm)."""
    n = int(lesion_ids.max()) if lesion_ids.size else 0
    if n == 0:
        return []
    idx = np.arange(1, n + 1)
    counts = ndimage.sum_labels(np.ones(lesion_ids.shape), lesion_ids, idx)
    centres = np.asarray(ndimage.center_of_mass(np.ones(lesion_ids.shape), lesion_ids, idx))
    ras = centres @ affine[:3, :3].T + affine[:3, 3]
    voxel_ml = float(np.prod(zooms)) / 1000.0
    return [
        {"lesion_id": int(i), "volume_ml": float(c) * voxel_ml, "x": x, "y": y, "z": z}
        for i, c, (x, y, z) in zip(idx, counts, ras, strict=True)
    ]
