"""Synthetic T1w and FLAIR images on the T1w grid (brain only, as the nilearn template).

T1w: the MNI152 template intensities, with lesions hypointense (chronic "black holes"
darkest). FLAIR: a mixture of tissue probabilities (CSF dark, WM < GM) with lesions
bright. Both get a smooth multiplicative bias field (second-order polynomial, about
+-10-15 %) and Rician noise (magnitude of complex Gaussian noise; Gudbjartsson & Patz 1995,
Magn Reson Med 34:910-914). Intensities are arbitrary units around 1000 in WM (T1w).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from tspo_bidsapp.synthetic import anatomy as an

# Lesion intensity relative to normal WM on T1w (Bagnato et al. 2003, Brain 126:1782).
T1W_LESION = {
    an.RIM_ACTIVE_CORE: 0.45,
    an.OVERALL_ACTIVE_CORE: 0.72,
    an.INACTIVE_CORE: 0.40,
}
FLAIR_TISSUE = {"csf": 0.08, "gm": 0.62, "wm": 0.45}  # relative to 1000
FLAIR_LESION = {
    an.RIM_ACTIVE_CORE: 1.0,
    an.OVERALL_ACTIVE_CORE: 1.05,
    an.INACTIVE_CORE: 0.9,
}
T1W_NOISE = 0.02  # Rician sigma as a fraction of WM intensity
FLAIR_NOISE = 0.03
T1W_BIAS = 0.10  # peak relative amplitude of the bias field
FLAIR_BIAS = 0.15
LESION_EDGE_SIGMA_MM = 0.6  # soft lesion borders (partial volume)


def bias_field(
    shape: tuple[int, int, int], amplitude: float, rng: np.random.Generator
) -> np.ndarray:
    """Smooth positive field ``exp(poly2(x, y, z))`` scaled to peak ``|log| <= amplitude``."""
    axes = [np.linspace(-1.0, 1.0, n, dtype=np.float32) for n in shape]
    x, y, z = np.meshgrid(*axes, indexing="ij", sparse=True)
    terms = [x, y, z, x * x, y * y, z * z, x * y, y * z, x * z]
    coef = rng.normal(size=len(terms))
    log_field = sum(np.float32(c) * t for c, t in zip(coef, terms, strict=True))
    log_field = log_field - log_field.mean()
    log_field *= np.float32(amplitude / max(np.abs(log_field).max(), 1e-6))
    return np.exp(log_field)


def rician(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of the image plus complex Gaussian noise of SD ``sigma`` per channel."""
    real = image + rng.normal(0.0, sigma, image.shape).astype(np.float32)
    imag = rng.normal(0.0, sigma, image.shape).astype(np.float32)
    return np.sqrt(real * real + imag * imag)


def _lesion_blend(base, labels, values: dict[int, float], reference: float, voxel_mm: float):
    """Replace lesion voxels by ``values[label] * reference`` with soft borders."""
    target = np.zeros(labels.shape, np.float32)
    inside = np.zeros(labels.shape, np.float32)
    for label, rel in values.items():
        mask = labels == label
        target[mask] = rel * reference
        inside[mask] = 1.0
    if not inside.any():
        return base
    sigma = LESION_EDGE_SIGMA_MM / voxel_mm
    weight = ndimage.gaussian_filter(inside, sigma)
    value = ndimage.gaussian_filter(target, sigma) / np.maximum(weight, 1e-6)
    return base * (1.0 - weight) + value * weight


def synth_t1w(anat: an.Anatomy, labels: np.ndarray, rng: np.random.Generator, noise: bool = True):
    """T1w image (float32, WM about 1000)."""
    wm_level = float(np.median(anat.template[labels == an.NAWM]))
    base = anat.template * np.float32(1000.0 / wm_level)
    image = _lesion_blend(base, labels, T1W_LESION, 1000.0, anat.voxel_mm)
    image = image * bias_field(image.shape, T1W_BIAS, rng)
    if noise:
        image = rician(image, T1W_NOISE * 1000.0, rng)
    return image.astype(np.float32)


def synth_flair(anat: an.Anatomy, labels: np.ndarray, rng: np.random.Generator, noise: bool = True):
    """FLAIR image (float32): CSF dark, WM < GM, lesions bright."""
    base = 1000.0 * (
        FLAIR_TISSUE["csf"] * anat.csf + FLAIR_TISSUE["gm"] * anat.gm + FLAIR_TISSUE["wm"] * anat.wm
    )
    image = _lesion_blend(base.astype(np.float32), labels, FLAIR_LESION, 1000.0, anat.voxel_mm)
    image = image * bias_field(image.shape, FLAIR_BIAS, rng)
    if noise:
        image = rician(image, FLAIR_NOISE * 1000.0, rng)
    return image.astype(np.float32)
