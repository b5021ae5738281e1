"""Dynamic TSPO PET from a tissue-class map: SRTM kinetics, partial volume, motion, noise.

The noise-free image is ``blur(sum_c f_c(x) TAC_c(t))`` where ``f_c`` is the fraction of
PET voxel ``x`` covered by tissue class ``c`` (label map on the T1w grid seen through the
PET->T1w transform, 2x2x2 sub-voxel sampling) and ``TAC_c`` the frame-averaged SRTM curve
of the class (:mod:`tspo_bidsapp.kinetics.simulate`). Activity in kBq/mL, decay-corrected
to injection; frame times in seconds converted through :class:`FrameTiming`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from tspo_bidsapp.io import decay
from tspo_bidsapp.io.timing import FrameTiming
from tspo_bidsapp.kinetics.simulate import (
    exp_conv,
    fine_grid,
    frame_average,
    reference_tac,
    srtm_tissue,
)

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
SUBSAMPLE = 2  # sub-voxels per PET voxel edge for the partial-volume fractions
PET_MARGIN_MM = 10.0
NOISE_SMOOTH_VOXELS = 0.8  # spatial correlation of reconstruction noise (Gaussian sigma)
# SD = NOISE_SCALE * noise_level * sqrt((C + NOISE_FLOOR * mean_head(C)) / (dur_min * decay)):
# about 10 % voxel noise in a late 10-min frame of grey matter for [11C] tracers.
NOISE_SCALE = 0.35
NOISE_FLOOR = 0.05


@dataclass(frozen=True)
class PetGeometry:
    """PET image grid in PET world space and its relation to the T1w world."""

    affine: np.ndarray  # 4x4 PET voxel -> PET world (RAS mm)
    shape: tuple[int, int, int]  # simulated grid (before the FOV cut)
    n_cut: int  # top slices removed by the axial field of view
    pet_to_t1w: np.ndarray  # 4x4, PET world -> T1w world
    fwhm_mm: float

    @property
    def voxel_mm(self) -> float:
        return float(abs(self.affine[0, 0]))

    @property
    def out_shape(self) -> tuple[int, int, int]:
        return (self.shape[0], self.shape[1], self.shape[2] - self.n_cut)


def pet_geometry(
    brain: np.ndarray,
    t1w_affine: np.ndarray,
    pet_to_t1w: np.ndarray,
    voxel_mm: float = 2.0,
    fwhm_mm: float = 4.5,
    fov_cut_mm: float = 0.0,
) -> PetGeometry:
    """Axis-aligned PET grid around the brain (PET world), cut ``fov_cut_mm`` below its top."""
    ijk = np.argwhere(brain)
    corners = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)])
    lo, hi = ijk.min(0), ijk.max(0)
    box = lo + corners * (hi - lo)
    world_t1 = t1w_affine[:3, :3] @ box.T + t1w_affine[:3, 3:4]
    t1_to_pet = np.linalg.inv(pet_to_t1w)
    world_pet = t1_to_pet[:3, :3] @ world_t1 + t1_to_pet[:3, 3:4]
    # Brain top in PET space from every brain voxel (the box corners overestimate it).
    pts = t1w_affine[:3, :3] @ ijk[:: max(1, len(ijk) // 20000)].T + t1w_affine[:3, 3:4]
    top = (t1_to_pet[2, :3] @ pts + t1_to_pet[2, 3]).max()
    start = world_pet.min(1) - PET_MARGIN_MM
    stop = world_pet.max(1) + PET_MARGIN_MM
    shape = tuple(int(n) for n in np.ceil((stop - start) / voxel_mm).astype(int))
    affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    affine[:3, 3] = start
    n_cut = 0
    if fov_cut_mm > 0:
        keep_top = top - fov_cut_mm
        n_keep = int(np.floor((keep_top - start[2]) / voxel_mm)) + 1
        n_cut = max(0, shape[2] - n_keep)
    return PetGeometry(affine, shape, n_cut, np.asarray(pet_to_t1w, float), float(fwhm_mm))


def class_tacs(
    timing: FrameTiming, parameters: dict[int, tuple[float, float, float]], ref_scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Frame-averaged reference TAC (n_frames,) and class TACs (max_label + 1, n_frames), kBq/mL.

    ``parameters[label] = (R1, k2 [1/min], BPND)``; labels absent from it (background) get 0.
    """
    t = fine_grid(float(timing.end_min[-1]))
    cref = reference_tac(t, scale=ref_scale)
    ref = frame_average(t, cref, timing.start_min, timing.end_min)
    labels = sorted(parameters)
    r1, k2, bp = (np.array([parameters[lab][i] for lab in labels]) for i in range(3))
    curves = srtm_tissue(t, cref, r1, k2, bp)
    out = np.zeros((max(labels) + 1, timing.n_frames))
    out[labels] = frame_average(t, curves, timing.start_min, timing.end_min)
    return ref, out


def compartment_tissue(
    t_min: np.ndarray, cp: np.ndarray, cb: np.ndarray, p: dict[str, float]
) -> np.ndarray:
    """1TCM/2TCM tissue curve plus blood volume, ``(1 - vB)(C1 + C2) + vB Cb``, uniform grid.

    2TCM impulse response of C1 + C2: ``K1 [(k3 + k4 - a1) e^{-a1 t} + (a2 - k3 - k4)
    e^{-a2 t}] / (a2 - a1)`` (Phelps et al. 1979); ``k3 = 0`` gives the 1TCM ``K1 e^{-k2 t}``.
    """
    step = float(t_min[1] - t_min[0])
    k1, k2, k3, k4 = p["K1"], p["k2"], p["k3"], p["k4"]
    if k3 == 0.0:
        tissue = k1 * exp_conv(cp, step, k2)
    else:
        s, root = k2 + k3 + k4, np.sqrt((k2 + k3 + k4) ** 2 - 4.0 * k2 * k4)
        a1, a2 = 0.5 * (s - root), 0.5 * (s + root)
        tissue = k1 * ((k3 + k4 - a1) * exp_conv(cp, step, a1)
                       + (a2 - k3 - k4) * exp_conv(cp, step, a2))  # fmt: skip
        tissue /= a2 - a1
    return (1.0 - p["vB"]) * tissue + p["vB"] * cb


def plasma_class_tacs(
    timing: FrameTiming, parameters: dict[int, dict[str, float]], blood
) -> np.ndarray:
    """Class TACs (max_label + 1, n_frames), kBq/mL, for arterial-input kinetics.

    ``parameters[label]`` holds K1-k4 and vB
    (:func:`~tspo_bidsapp.synthetic.parameters.plasma_parameters`); ``blood`` is a
    :class:`~tspo_bidsapp.synthetic.blood.BloodTruth` (AIF and whole blood, kBq/mL).
    """
    t = fine_grid(float(timing.end_min[-1]))
    cp, cb = blood.aif(t), blood.whole_blood(t)
    out = np.zeros((max(parameters) + 1, timing.n_frames))
    for label, p in parameters.items():
        out[label] = frame_average(t, compartment_tissue(t, cp, cb, p), timing.start_min,
                                   timing.end_min)  # fmt: skip
    return out


def class_fractions(
    labels: np.ndarray, t1w_affine: np.ndarray, geometry: PetGeometry, n_classes: int
) -> np.ndarray:
    """Fraction (n_classes, X, Y, Z) of each PET voxel covered by each tissue class."""
    q = SUBSAMPLE
    # sub-voxel index s -> PET voxel index (s + 0.5) / q - 0.5 -> PET world -> T1w world -> T1w index
    sub_to_pet = np.diag([1.0 / q] * 3 + [1.0])
    sub_to_pet[:3, 3] = 0.5 / q - 0.5
    mapping = np.linalg.inv(t1w_affine) @ geometry.pet_to_t1w @ geometry.affine @ sub_to_pet
    sub_shape = tuple(q * n for n in geometry.shape)
    sub = ndimage.affine_transform(
        labels, mapping[:3, :3], offset=mapping[:3, 3], output_shape=sub_shape, order=0, cval=0
    )
    nx, ny, nz = geometry.shape
    blocks = sub.reshape(nx, q, ny, q, nz, q)
    fractions = np.zeros((n_classes,) + geometry.shape, np.float32)
    for label in np.unique(sub):
        if label == 0:
            continue
        fractions[label] = (blocks == label).mean(axis=(1, 3, 5), dtype=np.float32)
    return fractions


def noise_free_pet(fractions: np.ndarray, tacs: np.ndarray, geometry: PetGeometry) -> np.ndarray:
    """Blurred, motion-free PET (X, Y, Z, n_frames) on the full simulated grid, float32.

    ``blur(sum_c f_c TAC_c) = sum_c blur(f_c) TAC_c``: the few class maps are blurred once
    (Gaussian of ``geometry.fwhm_mm``) and combined with one matrix product.
    """
    sigma = geometry.fwhm_mm * FWHM_TO_SIGMA / geometry.voxel_mm
    present = [c for c in range(fractions.shape[0]) if fractions[c].any()]
    blurred = np.stack(
        [ndimage.gaussian_filter(fractions[c], sigma, mode="constant") for c in present]
    )
    out = blurred.reshape(len(present), -1).T @ tacs[present].astype(np.float32)
    return out.reshape(geometry.shape + (tacs.shape[1],))


def apply_motion(image: np.ndarray, motion: np.ndarray, pet_affine: np.ndarray) -> np.ndarray:
    """Frame k of the output at world p = frame k of ``image`` at ``motion[k] @ p`` (cubic)."""
    out = np.empty_like(image)
    inv = np.linalg.inv(pet_affine)
    for k in range(image.shape[-1]):
        if np.allclose(motion[k], np.eye(4)):
            out[..., k] = image[..., k]
            continue
        mapping = inv @ motion[k] @ pet_affine
        out[..., k] = ndimage.affine_transform(
            image[..., k], mapping[:3, :3], offset=mapping[:3, 3], order=3, mode="constant"
        )
    return out


def mean_frame_decay(timing: FrameTiming, half_life_min: float) -> np.ndarray:
    """Mean of ``exp(-ln2 t / T_half)`` over each frame (fraction of counts left), unitless."""
    return decay.mean_frame_decay(timing.start_min, timing.end_min, half_life_min)


def noise_sd(
    image: np.ndarray, timing: FrameTiming, half_life_min: float, noise_level: float = 1.0
) -> np.ndarray:
    """Voxel noise SD (kBq/mL) of decay-corrected frames: variance ∝ C / (duration x decay).

    Counts in a frame scale with activity x duration x decay; the decay-corrected image
    divides them by the decay factor, so its relative noise grows late in the scan. A
    floor of NOISE_FLOOR x the mean head activity of the frame adds scatter/randoms noise.
    Zero outside the head (where the activity is below 1e-3 of the frame maximum).
    """
    c = np.clip(image, 0.0, None)
    denom = timing.duration_min * mean_frame_decay(timing, half_life_min)
    sd = np.zeros(image.shape, np.float32)
    for k in range(image.shape[-1]):
        frame = c[..., k]
        head = frame > 1e-3 * frame.max()
        if not head.any():
            continue
        var = (frame + NOISE_FLOOR * frame[head].mean()) / denom[k]
        sd[..., k] = np.where(head, NOISE_SCALE * noise_level * np.sqrt(var), 0.0)
    return sd


def correlated_unit_noise(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with unit voxel variance, smoothed in space (per frame, last axis)."""
    white = rng.standard_normal(shape, dtype=np.float32)
    sigma = (NOISE_SMOOTH_VOXELS,) * 3 + (0,)
    smooth = ndimage.gaussian_filter(white, sigma)
    delta = np.zeros((9, 9, 9), np.float32)
    delta[4, 4, 4] = 1.0
    kernel = ndimage.gaussian_filter(delta, NOISE_SMOOTH_VOXELS)
    return smooth / np.float32(np.sqrt((kernel**2).sum()))
