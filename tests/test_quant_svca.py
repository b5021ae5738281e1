"""SVCA: exact vectorised NNLS and reference extraction from voxels with known class mixtures."""

import numpy as np
import pytest
from scipy.optimize import nnls

from tspo_bidsapp.io.timing import TSPO_60MIN_DURATIONS_S, FrameTiming
from tspo_bidsapp.kinetics.simulate import (
    feng_input,
    fine_grid,
    frame_average,
    reference_tac,
    srtm_tissue,
)
from tspo_bidsapp.quant.svca import (
    kinetic_classes_from_masks,
    nnls_all_subsets,
    read_svca_classes,
    resample_classes,
    svca_reference,
    write_svca_classes,
)


def test_nnls_all_subsets_equals_scipy_nnls():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(22, 4))
    y = rng.normal(size=(300, 22)) + rng.uniform(0, 2, size=(300, 4)) @ a.T
    coef, rss = nnls_all_subsets(a, y)
    for i in range(0, 300, 7):
        ref, rnorm = nnls(a, y[i])
        np.testing.assert_allclose(coef[i], ref, atol=1e-8)
        assert rss[i] == pytest.approx(rnorm**2, rel=1e-8, abs=1e-10)
    assert np.all(coef >= 0)


def _class_curves(timing):
    """Frame-averaged TACs (kBq/mL) of grey matter (reference-like), WM, blood, high binding."""
    t = fine_grid(float(timing.end_min[-1]))
    cref = reference_tac(t)
    gm = cref
    wm, hsb = srtm_tissue(
        t, cref, np.array([0.6, 1.0]), np.array([0.21, 0.35]), np.array([0.1, 1.2])
    )
    blood = 0.6 * feng_input(t, delay_min=0.25)
    curves = np.stack([gm, wm, blood, hsb])
    return frame_average(t, curves, timing.start_min, timing.end_min).T  # (frames, 4)


def test_svca_selects_known_reference_voxels_and_recovers_their_tac(tmp_path):
    timing = FrameTiming.from_durations_s(TSPO_60MIN_DURATIONS_S)
    pure = _class_curves(timing)
    rng = np.random.default_rng(2)
    shape = (20, 20, 20)
    n = int(np.prod(shape))
    # Mixture fractions: 20 % of voxels are almost pure grey matter (the true reference);
    # the rest mix all classes with little grey matter.
    frac = rng.dirichlet([0.5, 2.0, 0.3, 1.0], size=n)
    true_ref = rng.random(n) < 0.2
    frac[true_ref] = rng.dirichlet([60.0, 1.0, 0.3, 0.5], size=int(true_ref.sum()))
    data = (frac @ pure.T).reshape(shape + (timing.n_frames,))
    noisy = data * (1 + 0.03 * rng.standard_normal(data.shape))
    brain = np.ones(shape, bool)
    gm = np.ones(shape, bool)
    # Classes in normalised units, as the group level derives them: class means of pure voxels.
    pure_voxels = np.zeros((4,) + shape, bool)
    for k in range(4):
        flat = np.zeros(n, bool)
        flat[np.argsort(-frac[:, k])[:50]] = True
        pure_voxels[k] = flat.reshape(shape)
    classes = kinetic_classes_from_masks(data, brain, list(pure_voxels))
    path = write_svca_classes(timing.mid_min, classes, tmp_path / "classes.tsv")
    time_min, read = read_svca_classes(path)
    sampled, warnings = resample_classes(time_min, read, timing.mid_min)
    assert warnings == []
    res = svca_reference(noisy, brain, gm, sampled)
    sel = res.reference_mask.ravel()
    precision = true_ref[sel].mean()
    recall = sel[true_ref].mean()
    assert sel.sum() > 100
    assert precision > 0.95, precision
    assert recall > 0.3, recall
    true_tac = pure[:, 0]
    err = np.max(np.abs(res.reference_tac[true_tac > 0] / true_tac[true_tac > 0] - 1))
    assert err < 0.05, err
    assert np.nanmin(res.gm_fraction) >= 0 and np.nanmax(res.gm_fraction) <= 1 + 1e-12


def test_read_svca_classes_names_file_and_column(tmp_path):
    path = tmp_path / "c.tsv"
    path.write_text("time\tgm\twm\tblood\n1\t0\t0\t0\n2\t1\t1\t1\n")
    with pytest.raises(ValueError, match=r"c\.tsv.*'high_binding'"):
        read_svca_classes(path)
    path.write_text("time\tgm\twm\tblood\thsb\n2\t0\t0\t0\t0\n1\t1\t1\t1\t1\n")
    with pytest.raises(ValueError, match="must increase"):
        read_svca_classes(path)


def test_resample_classes_interpolates_and_reports_extrapolation():
    t = np.array([0.0, 10.0, 20.0])
    c = np.column_stack([t, 2 * t, -t, np.ones(3)])
    out, warnings = resample_classes(t, c, np.array([5.0, 15.0, 30.0]))
    np.testing.assert_allclose(out[:2, 0], [5.0, 15.0])
    np.testing.assert_allclose(out[2], [20.0, 40.0, -20.0, 1.0])
    assert len(warnings) == 1 and "1 frame mid-times" in warnings[0]
