"""Regional partial-volume correction by the geometric transfer matrix (GTM).

Rousset OG, Ma Y, Evans AC (1998) J Nucl Med 39:904-911. With N regions whose true activity
is uniform, the observed mean of region i is ``sum_j G[i, j] T_j`` where ``G[i, j]`` is the
mean over region i of region j's indicator image blurred by the scanner's point-spread
function (PSF). Solving ``G T = T_obs`` for all frames at once gives the corrected regional
TACs.

Every label value of the image is a region, label 0 included (background: scalp, skull and
anything outside the brain labels), so the blurred indicators add up to one everywhere.

Limits: the correction is exact only when activity is constant within each region and the
PSF is known, Gaussian (possibly anisotropic: one FWHM per axis) and the same everywhere
(``--pet-fwhm``: the resolution of the image the TACs come from; a PET resampled to the T1w grid is slightly smoother than the reconstruction).
Heterogeneous regions (e.g. one "background" class for scalp and skull), a wrong FWHM or
misregistration bias the result, and small regions amplify noise (check ``condition``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from tspo_bidsapp.quant.tacs import region_means

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
PVC_METHODS = ("none", "gtm", "rbv", "iy")  # regional GTM; voxel-wise RBV, iterative Yang
PVC_NAMES = {
    "none": "none",
    "gtm": "GTM (Rousset et al. 1998)",
    "rbv": "RBV (Thomas et al. 2011) on the GTM",
    "iy": "iterative Yang (Erlandsson et al. 2012)",
}
TRUNCATE = 4.0  # Gaussian kernel radius in SDs (scipy's default)


@dataclass
class GTMResult:
    """Corrected TACs (regions, frames) in the input units, the GTM and its diagnostics."""

    region_ids: np.ndarray  # label value of each row (0 = background)
    tacs: np.ndarray  # corrected, (n_regions, n_frames)
    observed: np.ndarray  # region means before correction, (n_regions, n_frames)
    matrix: np.ndarray  # G, (n_regions, n_regions); rows sum to 1
    voxels: np.ndarray  # voxels per region
    condition: float  # 2-norm condition number of G
    warnings: list[str] = field(default_factory=list)

    def as_dict(self, names: dict[int, str] | None = None) -> dict[int | str, np.ndarray]:
        """``{name or label: corrected TAC}`` (background included as label 0)."""
        names = names or {}
        return {names.get(int(i), int(i)): self.tacs[k] for k, i in enumerate(self.region_ids)}


def fwhm_xyz(fwhm_mm) -> tuple[float, float, float]:
    """PSF FWHM (mm) along the three image axes from one value (isotropic) or three (x, y, z)."""
    values = np.atleast_1d(np.asarray(fwhm_mm, float)).ravel()
    if values.size == 1:
        values = np.repeat(values, 3)
    if values.size != 3 or not np.all(np.isfinite(values) & (values > 0)):
        raise ValueError(
            f"PET resolution (FWHM) must be one or three positive numbers of mm, got {fwhm_mm}"
        )
    return tuple(float(v) for v in values)


def psf_sigma_vox(fwhm_mm, zooms) -> tuple[float, ...]:
    """Gaussian SD in voxels along each axis for a PSF of ``fwhm_mm`` (mm; one value or x, y, z)."""
    return tuple(
        f * FWHM_TO_SIGMA / float(z) for f, z in zip(fwhm_xyz(fwhm_mm), zooms, strict=True)
    )


def resampled_fwhm_xyz(fwhm_mm, voxel_mm) -> tuple[float, float, float]:
    """Per-axis version of :func:`resampled_fwhm_mm` for an anisotropic PSF (FWHM x, y, z in mm)."""
    extra = float(np.mean(np.square(np.asarray(voxel_mm, float)))) / 6.0
    return tuple(
        float(np.sqrt((f * FWHM_TO_SIGMA) ** 2 + extra) / FWHM_TO_SIGMA) for f in fwhm_xyz(fwhm_mm)
    )


def resampled_fwhm_mm(fwhm_mm: float, voxel_mm) -> float:
    """FWHM (mm) of a PET image of resolution ``fwhm_mm`` after one trilinear resampling.

    Linear interpolation between voxels ``v`` mm apart blurs by a variance of ``u (1 - u) v^2``
    at sub-voxel offset ``u``, ``v^2 / 6`` on average; the mean over the three axes is added to
    the Gaussian variance of the PSF. Use it for ``--pet-fwhm`` when the TACs come from the PET
    resampled to the T1w grid.
    """
    return resampled_fwhm_xyz(float(fwhm_mm), voxel_mm)[0]


def gtm_matrix(labels: np.ndarray, zooms, fwhm_mm) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GTM ``G[i, j]`` = mean over region i of the blurred indicator of region j.

    ``labels``: integer image (0 = background, a region too); ``zooms``: voxel sizes (mm).
    Each region's indicator is blurred once (``scipy.ndimage.gaussian_filter``, mode
    "nearest": the label image is extended at its edges) within its bounding box plus the
    kernel radius, which is exact because the indicator is zero beyond the box; the region
    sums of every blurred indicator come from one ``bincount`` over the box. The background
    column is ``1 - sum`` of the others (the blurred indicators form a partition of unity).
    Returns ``(G, region_ids, voxels)``.
    """
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"label image must be 3-D, got shape {labels.shape}")
    if labels.size and labels.min() < 0:
        raise ValueError("label image has negative values")
    sigma = psf_sigma_vox(fwhm_mm, zooms)
    radius = [int(TRUNCATE * s + 0.5) for s in sigma]
    flat = labels.astype(np.int64, copy=False)
    counts_all = np.bincount(flat.ravel())
    ids = np.flatnonzero(counts_all)
    if ids[0] != 0:
        ids = np.concatenate([[0], ids])  # background row even when empty (dropped below)
    row_of = np.full(counts_all.size, -1, np.int64)
    row_of[ids] = np.arange(ids.size)
    n = ids.size
    sums = np.zeros((n, n))
    objects = ndimage.find_objects(flat)
    for j in range(1, n):
        box = objects[ids[j] - 1]
        box = tuple(
            slice(max(0, s.start - r), min(dim, s.stop + r))
            for s, r, dim in zip(box, radius, labels.shape, strict=True)
        )
        sub = flat[box]
        blurred = ndimage.gaussian_filter(
            (sub == ids[j]).astype(np.float32), sigma, mode="nearest", truncate=TRUNCATE
        )
        rows = row_of[sub.ravel()]
        sums[:, j] = np.bincount(rows, weights=blurred.ravel(), minlength=n)
    voxels = counts_all[ids].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        g = sums / voxels[:, None]
    g[:, 0] = 1.0 - g[:, 1:].sum(axis=1)
    keep = voxels > 0
    return g[np.ix_(keep, keep)], ids[keep], voxels[keep].astype(np.int64)


def gtm_correct(
    data: np.ndarray, labels: np.ndarray, zooms, fwhm_mm, *, max_condition: float = 1e3
) -> GTMResult:
    """GTM-corrected TACs of every region of ``labels`` from a 3-D/4-D PET on the same grid.

    Solves ``G T = T_obs`` by least squares for all frames at once (``numpy.linalg.lstsq``).
    A condition number of G above ``max_condition`` is reported as a warning (tiny regions or
    a FWHM large for the regions: noise amplification).
    """
    data = np.asarray(data)
    if data.ndim == 3:
        data = data[..., None]
    labels = np.asarray(labels)
    if data.shape[:3] != labels.shape:
        raise ValueError(f"PET shape {data.shape[:3]} does not match label shape {labels.shape}")
    g, ids, voxels = gtm_matrix(labels, zooms, fwhm_mm)
    means, _ = region_means(data, labels.astype(np.int64) + 1)  # +1: background is a region
    observed = means[ids + 1]
    finite = np.all(np.isfinite(observed), axis=0)
    tacs = np.full(observed.shape, np.nan)
    if finite.any():
        tacs[:, finite] = np.linalg.lstsq(g, observed[:, finite], rcond=None)[0]
    cond = float(np.linalg.cond(g))
    warnings = []
    if not finite.all():
        warnings.append(
            f"GTM: {int((~finite).sum())} frames have a region without finite values; "
            "their corrected TACs are NaN"
        )
    if not cond < max_condition:
        warnings.append(
            f"GTM: the transfer matrix is ill-conditioned (condition number {cond:.3g}); "
            "corrected TACs of small regions amplify noise"
        )
    return GTMResult(ids, tacs, observed, g, voxels, cond, warnings)
