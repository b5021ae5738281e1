"""GTM partial-volume correction on piecewise-constant images blurred by a known Gaussian PSF."""

import numpy as np
import pytest
from scipy import ndimage

from tspo_bidsapp.quant.pvc import (
    FWHM_TO_SIGMA,
    gtm_correct,
    gtm_matrix,
    psf_sigma_vox,
    resampled_fwhm_mm,
)

ZOOMS = (2.0, 1.5, 1.0)  # anisotropic voxels: the PSF is isotropic in mm, not in voxels
FWHM = 6.0


def _phantom():
    """Background, a slab, a ball, a small ball inside the slab and a thin shell; 3 frames."""
    shape = (40, 48, 60)
    grid = np.indices(shape).astype(float) * np.array(ZOOMS)[:, None, None, None]
    labels = np.zeros(shape, np.int32)
    labels[4:36, 4:44, 6:54] = 1
    r = np.sqrt(sum((g - c) ** 2 for g, c in zip(grid, (40.0, 36.0, 30.0), strict=True)))
    labels[r <= 14.0] = 2
    labels[(r > 14.0) & (r <= 17.0)] = 5  # 3 mm shell, narrower than the PSF
    r2 = np.sqrt(sum((g - c) ** 2 for g, c in zip(grid, (20.0, 12.0, 12.0), strict=True)))
    labels[r2 <= 5.0] = 3
    truth = np.array([[0.3, 0.5, 0.2], [1.0, 2.0, 1.5], [4.0, 1.0, 3.0], [8.0, 6.0, 0.5],
                      [0.0, 0.0, 0.0], [2.5, 5.0, 1.0]])  # fmt: skip
    image = truth[labels]  # (X, Y, Z, 3), activity per region per frame
    sigma = (FWHM * FWHM_TO_SIGMA / z for z in ZOOMS)
    blurred = ndimage.gaussian_filter(image, (*sigma, 0), mode="nearest")
    return labels, truth, image, blurred


def test_gtm_matrix_matches_brute_force_and_rows_sum_to_one():
    labels, *_ = _phantom()
    g, ids, voxels = gtm_matrix(labels, ZOOMS, FWHM)
    assert list(ids) == [0, 1, 2, 3, 5]  # label 4 is absent
    assert voxels.sum() == labels.size
    np.testing.assert_allclose(g.sum(axis=1), 1.0, atol=1e-6)
    sigma = psf_sigma_vox(FWHM, ZOOMS)
    for j, lab in enumerate(ids):
        full = ndimage.gaussian_filter((labels == lab).astype(float), sigma, mode="nearest")
        for i, row in enumerate(ids):
            assert g[i, j] == pytest.approx(full[labels == row].mean(), abs=1e-5)
    assert g[4, 4] < 0.5  # the thin shell keeps less than half of its own signal


def test_gtm_recovers_piecewise_constant_activity():
    labels, truth, image, blurred = _phantom()
    res = gtm_correct(blurred, labels, ZOOMS, FWHM)
    present = truth[res.region_ids]
    shell = list(res.region_ids).index(5)
    assert abs(res.observed[shell, 1] / present[shell, 1] - 1) > 0.25  # strong PV loss ...
    np.testing.assert_allclose(res.tacs, present, rtol=0.01, atol=1e-3)  # ... recovered < 1 %
    assert res.condition < 20 and not res.warnings
    assert res.as_dict({2: "ball"})["ball"] == pytest.approx(truth[2], rel=0.01)


def test_gtm_on_an_unblurred_image_with_zero_fwhm_is_rejected():
    labels, _, image, _ = _phantom()
    with pytest.raises(ValueError, match="FWHM"):
        gtm_correct(image, labels, ZOOMS, 0.0)


def test_resampling_adds_the_mean_linear_interpolation_variance():
    # v^2/6 per axis: a 2 mm grid adds 0.667 mm^2 to sigma^2
    sigma2 = (4.5 * FWHM_TO_SIGMA) ** 2 + 4.0 / 6.0
    assert resampled_fwhm_mm(4.5, (2.0, 2.0, 2.0)) == pytest.approx(np.sqrt(sigma2) / FWHM_TO_SIGMA)
    rng = np.random.default_rng(1)
    line = np.zeros(4001)
    line[2000] = 1.0
    x = np.arange(line.size) * 0.01  # fine 0.01 mm grid
    sig = 4.5 * FWHM_TO_SIGMA
    psf = ndimage.gaussian_filter1d(line, sig / 0.01)
    # sample on a 2 mm grid at a random offset and interpolate back: the mean blurs by v^2/6
    var = []
    for off in rng.uniform(0, 2.0, 200):
        nodes = np.arange(off, x[-1], 2.0)
        back = np.interp(x, nodes, np.interp(nodes, x, psf))
        var.append(np.sum(back * (x - 20.0) ** 2) / back.sum())
    assert np.mean(var) == pytest.approx(sig**2 + 4.0 / 6.0, rel=0.02)
