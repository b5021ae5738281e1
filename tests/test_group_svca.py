"""SVCA classes the group level builds: the frame normalisation matches the voxel one exactly,
and the blood class comes from early-peak vessel voxels whose late frames carry no binding."""

from __future__ import annotations

import numpy as np

from tspo_bidsapp.io.timing import FrameTiming
from tspo_bidsapp.kinetics.simulate import (
    feng_input,
    fine_grid,
    frame_average,
    reference_tac,
    srtm_tissue,
)
from tspo_bidsapp.quant.svca import (
    frame_mean_sd,
    kinetic_classes_from_masks,
    normalise_curves,
    svca_normalisation,
    vascular_check,
    vascular_voxels,
)
from tspo_bidsapp.quant.tacs import mask_mean_tac

TIMING = FrameTiming.from_durations_s([20.0] * 6 + [60.0] * 4 + [300.0] * 10)
SHAPE = (24, 24, 24)


def _curves():
    t = fine_grid(float(TIMING.end_min[-1]))
    start, end = TIMING.start_min, TIMING.end_min
    blood = 0.6 * feng_input(t, delay_min=0.25)
    tissue = reference_tac(t)
    binding = srtm_tissue(t, tissue, 1.2, 0.35, 1.5)  # specific binding: retains tracer
    return {k: frame_average(t, v, start, end) for k, v in
            {"blood": blood, "tissue": tissue, "binding": binding}.items()}  # fmt: skip


def _phantom(rng):
    """A brain sphere of tissue, a choroid-plexus-like blob inside, a sinus tube on top."""
    c = _curves()
    ii, jj, kk = np.indices(SHAPE)
    brain = (ii - 12) ** 2 + (jj - 12) ** 2 + (kk - 11) ** 2 <= 81
    sinus = (np.abs(ii - 12) <= 1) & (kk == 21) & (np.abs(jj - 12) <= 6)
    plexus = (ii - 12) ** 2 + (jj - 12) ** 2 + (kk - 11) ** 2 <= 2
    data = np.zeros(SHAPE + (TIMING.n_frames,))
    data[brain] = c["tissue"]
    data[plexus] = c["binding"]
    data[sinus] = c["blood"]
    data += rng.normal(0, 0.02 * c["tissue"].max(), data.shape)
    return data, brain, sinus, plexus, c


def test_group_classes_equal_voxel_normalised_classes():
    """Mean of normalised voxels = (region mean - brain mean) / brain SD, exactly."""
    rng = np.random.default_rng(0)
    data, brain, _, plexus, _ = _phantom(rng)
    half = brain & (np.indices(SHAPE)[0] < 12)
    masks = [half, brain & ~half, plexus]
    voxel = kinetic_classes_from_masks(data, brain, masks)
    mean, sd = frame_mean_sd(data, brain)
    region = np.column_stack([normalise_curves(mask_mean_tac(data, m), mean, sd) for m in masks])
    np.testing.assert_allclose(region, voxel, rtol=1e-9, atol=1e-9)


def test_vascular_voxels_are_the_sinus_and_pass_the_check():
    rng = np.random.default_rng(1)
    data, brain, sinus, plexus, c = _phantom(rng)
    found = vascular_voxels(data, TIMING.mid_min, brain, (2.0, 2.0, 2.0), top_fraction=0.002)
    assert found.any() and (found <= sinus).all()  # only sinus voxels are selected
    norm = svca_normalisation(data, TIMING.mid_min, brain, (2.0, 2.0, 2.0))
    tac = np.asarray(norm["VascularTAC"])
    assert np.abs(tac / c["blood"] - 1)[TIMING.mid_min > 2].max() < 0.1
    check = norm["VascularCheck"]
    assert check["passed"] and check["late_to_peak"] < 0.2 < check["brain_late_to_peak"]
    # a curve that binds (the choroid plexus stand-in used before) fails the check
    mean = np.asarray(norm["BrainVoxelMean"])
    failed = vascular_check(mask_mean_tac(data, plexus), mean, TIMING.mid_min)
    assert not failed["passed"] and "not a blood curve" in failed["reason"]
    assert failed["late_to_peak"] > failed["brain_late_to_peak"]


def test_optional_csf_class_round_trip(tmp_path):
    from tspo_bidsapp.quant.svca import read_svca_classes, write_svca_classes

    classes = np.arange(15.0).reshape(3, 5)
    path = write_svca_classes(np.array([1.0, 2, 3]), classes, tmp_path / "c.tsv")
    assert path.read_text().splitlines()[0].split("\t")[-1] == "csf"
    _, read = read_svca_classes(path)
    np.testing.assert_allclose(read, classes)
    _, four = read_svca_classes(
        write_svca_classes(np.array([1.0, 2, 3]), classes[:, :4], tmp_path / "d.tsv")
    )
    assert four.shape == (3, 4)


def test_control_without_ventricles_gives_four_classes_and_without_thalamus_is_skipped(tmp_path):
    """The csf class (ventricles) is optional: a segmentation without ventricles gives the four
    other classes; a control without a required region (thalamus) is skipped, saying why."""
    import json

    import pytest

    from tspo_bidsapp.group.controls import ControlTACs, TooFewControls, control_class_curves
    from tspo_bidsapp.group.controls import svca_classes as group_classes
    from tspo_bidsapp.quant.tacs import write_tacs_tsv

    timing = FrameTiming.from_durations_s([60.0] * 5)
    mean, sd = np.full(5, 2.0), np.full(5, 0.5)
    norm = {"BrainVoxelMean": mean.tolist(), "BrainVoxelSD": sd.tolist(),
            "VascularTAC": [5.0, 4.0, 3.0, 2.0, 1.0], "VascularCheck": {"passed": True}}  # fmt: skip
    tacs = {"cortical-GM": np.linspace(1.0, 2.0, 5), "NAWM": np.linspace(1.0, 1.5, 5),
            "thalamus": np.linspace(1.0, 3.0, 5)}  # fmt: skip
    controls = []
    for pid, regions in (("sub-01", tacs), ("sub-02", {**tacs, "ventricles": np.ones(5)})):
        path = write_tacs_tsv(timing, regions, tmp_path / f"{pid}_tacs.tsv")
        path.with_suffix(".json").write_text(json.dumps({"SVCANormalisation": norm}))
        controls.append(ControlTACs(pid, path, {}))
    _, four, _ = control_class_curves(controls[0])
    _, five, _ = control_class_curves(controls[1])
    assert four.shape == (5, 4) and five.shape == (5, 5)
    np.testing.assert_allclose(four[:, 3], (tacs["thalamus"] - mean) / sd)  # high_binding
    np.testing.assert_allclose(five[:, 4], (1.0 - mean) / sd)  # csf
    _, classes, info = group_classes(controls, min_controls=2)
    assert classes.shape == (5, 4) and "csf" not in info["Classes"]  # not every control has it
    _, classes, info = group_classes(controls[1:], min_controls=1)
    assert classes.shape == (5, 5) and info["Classes"][-1] == "csf"
    bare = write_tacs_tsv(timing, {"cortical-GM": tacs["cortical-GM"], "NAWM": tacs["NAWM"]},
                          tmp_path / "sub-03_tacs.tsv")  # fmt: skip
    _, curves, reason = control_class_curves(ControlTACs("sub-03", bare, {}))
    assert curves is None and "thalamus" in reason and bare.name in reason
    with pytest.raises(TooFewControls, match="sub-03: .*thalamus"):
        group_classes([ControlTACs("sub-03", bare, {})], min_controls=1)
