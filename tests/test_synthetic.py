"""The synthetic dataset agrees with its own ground truth (kinetics, geometry, motion, lesions, noise)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from tspo_bidsapp.io.timing import TSPO_60MIN_DURATIONS_S
from tspo_bidsapp.kinetics.simulate import fine_grid, frame_average, reference_tac
from tspo_bidsapp.synthetic import anatomy as an
from tspo_bidsapp.synthetic import generate_dataset, load_truth, pet
from tspo_bidsapp.synthetic.lesions import MAX_DIAMETER_MM, MIN_DIAMETER_MM
from tspo_bidsapp.synthetic.motion import rigid_matrix, rigid_parameters


@pytest.fixture(scope="module")
def dataset(synthetic_study):
    """The shared ``size="test"`` dataset (conftest.py): (root, subject labels)."""
    return synthetic_study.root, synthetic_study.subjects


@pytest.fixture(scope="module")
def patient(dataset):
    root, subjects = dataset
    return load_truth(root / "truth", subjects[0])


def _pet_geometry(truth) -> pet.PetGeometry:
    grid = truth.meta["pet_grid"]
    shape = tuple(grid["simulated_shape"])
    return pet.PetGeometry(
        np.asarray(grid["affine"]), shape, grid["fov_cut_slices"], truth.pet_to_t1w, grid["fwhm_mm"]
    )


def _parameters(truth) -> dict[int, tuple[float, float, float]]:
    rows = truth.tissues.itertuples()
    return {int(r.label): (float(r.R1), float(r.k2), float(r.BPND)) for r in rows}


def test_layout_and_participants(dataset):
    root, subjects = dataset
    assert subjects == ["01", "02"]
    bids = root / "bids"
    table = pd.read_csv(bids / "participants.tsv", sep="\t", keep_default_na=False)
    assert list(table.columns) == [
        "participant_id",
        "group",
        "age",
        "sex",
        "edss",
        "tspo_genotype",
    ]
    assert list(table["participant_id"]) == ["sub-01", "sub-02"]
    assert list(table["group"]) == ["RRMS", "HC"]
    assert table.loc[1, "edss"] == "n/a" and 0.0 <= float(table.loc[0, "edss"]) <= 10.0
    assert set(table["tspo_genotype"]) <= {"HAB", "MAB"}
    assert set(table["sex"]) <= {"F", "M"}
    for sub in ("sub-01", "sub-02"):
        assert (bids / sub / "anat" / f"{sub}_T1w.nii.gz").is_file()
        assert (bids / sub / "anat" / f"{sub}_FLAIR.nii.gz").is_file()
        assert (bids / sub / "pet" / f"{sub}_trc-PBR28_pet.nii.gz").is_file()
    assert not list(bids.rglob("truth.json")), "the truth must stay outside the BIDS tree"
    description = json.loads((bids / "dataset_description.json").read_text())
    assert description["DatasetType"] == "raw" and description["BIDSVersion"]


def test_sidecar_timing_matches_image_and_truth(patient):
    sidecar = json.loads(patient.pet_json.read_text())
    start = np.asarray(sidecar["FrameTimesStart"])
    duration = np.asarray(sidecar["FrameDuration"])
    np.testing.assert_array_equal(duration, TSPO_60MIN_DURATIONS_S)
    np.testing.assert_allclose(start[1:], (start + duration)[:-1])
    assert start[0] == 0.0 and (start + duration)[-1] == 3600.0
    assert nib.load(patient.pet).shape[3] == start.size
    np.testing.assert_allclose(patient.timing.start_s, start)
    np.testing.assert_allclose(patient.timing.duration_s, duration)
    assert sidecar["Units"] == "kBq/mL" and sidecar["ImageDecayCorrected"] is True
    assert sidecar["TracerName"] == "PBR28" and sidecar["TracerRadionuclide"] == "C11"
    for key in ("TimeZero", "ScanStart", "InjectionStart", "InjectedRadioactivity", "InjectedMass"):
        assert key in sidecar
    # Decay correction factor of a frame = 1 / mean of exp(-lambda t) over the frame.
    lam = np.log(2) / (20.364 * 60.0)
    k = -1
    expected = (
        lam * duration[k] / (np.exp(-lam * start[k]) - np.exp(-lam * (start[k] + duration[k])))
    )
    assert sidecar["DecayCorrectionFactor"][k] == pytest.approx(expected, rel=1e-5)


def test_tacs_regenerate_from_truth(patient):
    """Reference and class TACs recomputed from the stored parameters match the stored ones."""
    scale = patient.meta["kinetics"]["reference_scale"]
    t = fine_grid(60.0)
    ref = frame_average(
        t, reference_tac(t, scale), patient.timing.start_min, patient.timing.end_min
    )
    np.testing.assert_allclose(patient.reference_tac, ref, rtol=1e-7, atol=1e-9)
    _, tacs = pet.class_tacs(patient.timing, _parameters(patient), scale)
    for row in patient.tissues.itertuples():
        stored = patient.class_tacs[row.name].to_numpy()
        np.testing.assert_allclose(stored, tacs[row.label], rtol=1e-7, atol=1e-9)
    bp = patient.bpnd
    assert bp["cerebellar_gm"] == 0.0
    np.testing.assert_allclose(
        patient.class_tacs["cerebellar_gm"], patient.reference_tac, rtol=1e-7
    )
    assert bp["lesion_rim_active_rim"] > 5 * bp["lesion_rim_active_core"]
    assert bp["thalamus"] > bp["gm"] > bp["nawm"] > 0
    assert bp["perilesional_wm"] > bp["nawm"]


def test_noise_free_pet_regenerates_from_truth(patient):
    tissue = nib.load(patient.tissue)
    labels = np.asarray(tissue.dataobj)
    geometry = _pet_geometry(patient)
    _, tacs = pet.class_tacs(
        patient.timing, _parameters(patient), patient.meta["kinetics"]["reference_scale"]
    )
    fractions = pet.class_fractions(labels, tissue.affine, geometry, len(an.TISSUE_NAMES))
    rebuilt = pet.noise_free_pet(fractions, tacs, geometry)[:, :, : geometry.out_shape[2]]
    stored = nib.load(patient.pet_noisefree).get_fdata(dtype=np.float32)
    assert stored.shape == rebuilt.shape
    np.testing.assert_allclose(stored, rebuilt, rtol=1e-5, atol=1e-5 * stored.max())
    # Independent check: blur and resampling conserve activity, so the image total of each
    # frame equals sum over classes of (class volume on the T1w grid x class TAC).
    voxel_t1w = abs(np.linalg.det(tissue.affine[:3, :3]))
    volumes = np.bincount(labels.ravel(), minlength=tacs.shape[0]) * voxel_t1w
    expected_total = volumes @ tacs
    total = stored.sum(axis=(0, 1, 2)) * geometry.voxel_mm**3
    np.testing.assert_allclose(total[1:], expected_total[1:], rtol=5e-3)


def test_motion_parameters_and_matrices_agree(patient):
    params = patient.motion_params
    centre = patient.motion_centre_mm
    for h, p in zip(patient.motion, params, strict=True):
        np.testing.assert_allclose(h, rigid_matrix(p[:3], p[3:], centre), atol=1e-9)
        np.testing.assert_allclose(rigid_parameters(h, centre), p, atol=1e-9)
    still = patient.timing.start_s < 120.0
    np.testing.assert_allclose(
        patient.motion[still], np.broadcast_to(np.eye(4), (still.sum(), 4, 4))
    )
    assert np.abs(params[:, :3]).max() <= 3.0 + 1e-9
    assert np.abs(params[:, 3:]).max() <= np.deg2rad(2.5) + 1e-9
    assert np.abs(params[-1, :3]).max() > 0.5, "late frames should move"
    table = pd.read_csv(patient.truth_dir / "motion.tsv", sep="\t")
    cols = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]
    np.testing.assert_allclose(table[cols].to_numpy(), params, atol=1e-8)
    m = patient.pet_to_t1w
    np.testing.assert_allclose(m[:3, :3] @ m[:3, :3].T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(
        rigid_matrix(
            patient.pet_to_t1w_params[:3],
            patient.pet_to_t1w_params[3:],
            patient.pet_to_t1w_centre_mm,
        ),
        m,
    )


def _centre_of_mass_world(volume: np.ndarray, affine: np.ndarray) -> np.ndarray:
    com = np.asarray(ndimage.center_of_mass(np.clip(volume, 0, None)))
    return affine[:3, :3] @ com + affine[:3, 3]


def test_motion_convention_on_images(patient):
    """H_k maps the centre of mass of frame k onto that of the motion-free frame k."""
    noisy = nib.load(patient.pet)
    clean = nib.load(patient.pet_noisefree).get_fdata(dtype=np.float32)
    data = noisy.get_fdata(dtype=np.float32)
    for k in (14, patient.timing.n_frames - 1):
        moved_com = _centre_of_mass_world(data[..., k], noisy.affine)
        clean_com = _centre_of_mass_world(clean[..., k], noisy.affine)
        mapped = patient.motion[k] @ np.append(moved_com, 1.0)
        assert np.linalg.norm(mapped[:3] - clean_com) < 0.15
        assert np.linalg.norm(moved_com - clean_com) > 0.3  # the motion is visible


def test_pet_to_t1w_convention_on_images(patient):
    """M maps the activity centre of mass in PET world onto the one in T1w world."""
    tissue = nib.load(patient.tissue)
    labels = np.asarray(tissue.dataobj)
    late = patient.class_tacs.iloc[-1]
    activity = np.zeros(labels.shape, np.float32)
    for row in patient.tissues.itertuples():
        activity[labels == row.label] = late[row.name]
    t1w_com = _centre_of_mass_world(activity, tissue.affine)
    clean = nib.load(patient.pet_noisefree)
    pet_com = _centre_of_mass_world(clean.get_fdata(dtype=np.float32)[..., -1], clean.affine)
    mapped = patient.pet_to_t1w @ np.append(pet_com, 1.0)
    assert np.linalg.norm(mapped[:3] - t1w_com) < 0.3
    assert np.linalg.norm(pet_com - t1w_com) > 1.0


def test_lesions_are_consistent(patient, dataset):
    ids_img = nib.load(patient.lesion_ids)
    ids = np.asarray(ids_img.dataobj)
    labels = np.asarray(nib.load(patient.tissue).dataobj)
    table = patient.lesions
    assert 10 <= len(table) <= 15
    assert list(table["id"]) == list(range(1, len(table) + 1))
    assert set(np.unique(ids)) == {0, *table["id"]}
    counts = table["phenotype"].value_counts()
    assert set(counts.index) == {"rim-active", "overall-active", "inactive"}
    assert table["diameter_mm"].between(MIN_DIAMETER_MM, MAX_DIAMETER_MM).all()
    np.testing.assert_array_equal(ids > 0, np.isin(labels, an.LESION_CLASSES))
    # Lesions were planted in NAWM of the template anatomy, one connected blob each.
    anatomy = an.build_anatomy(abs(ids_img.affine[0, 0]))
    assert (anatomy.labels[ids > 0] == an.NAWM).all()
    voxel_ml = abs(ids_img.affine[0, 0]) ** 3 / 1000.0
    for row in table.itertuples():
        mask = ids == row.id
        assert ndimage.label(mask)[1] == 1
        assert mask.sum() * voxel_ml == pytest.approx(row.volume_ml, abs=1e-6)
        nominal = np.pi / 6 * row.diameter_mm**3 / 1000.0
        if row.diameter_mm >= 8 and not row.confluent:
            assert row.volume_ml == pytest.approx(nominal, rel=0.3)
        assert row.size_mm == pytest.approx(np.cbrt(6 * row.volume_ml * 1000 / np.pi), abs=1e-3)
        centre = np.linalg.solve(ids_img.affine, [row.centre_x, row.centre_y, row.centre_z, 1])
        assert ids[tuple(np.round(centre[:3]).astype(int))] == row.id
        core = patient.bpnd[f"lesion_{row.phenotype.replace('-', '_')}_core"]
        assert row.core_bpnd == pytest.approx(core)
        # The rim is the white matter within 2 mm outside the lesion edge.
        outside = ndimage.distance_transform_edt(~mask, sampling=abs(ids_img.affine[0, 0]))
        rim = (outside > 0) & (outside <= 2.0) & (anatomy.labels == an.NAWM)
        rim_label = (
            an.LESION_CLASSES[["rim-active", "overall-active", "inactive"].index(row.phenotype)] + 1
        )
        assert (labels[mask] == rim_label - 1).all()
        assert (labels[rim] == rim_label).mean() > 0.95
    assert (labels == an.PERILESIONAL_WM).any()
    root, subjects = dataset
    control = load_truth(root / "truth", subjects[1])
    assert control.group == "HC" and len(control.lesions) == 0
    assert not np.isin(np.asarray(nib.load(control.tissue).dataobj), an.LESION_CLASSES).any()


def test_noise_matches_model(patient):
    """(noisy - noise-free moved) / predicted SD is standard normal; late frames 5-15 % noise."""
    noisy = nib.load(patient.pet)
    data = noisy.get_fdata(dtype=np.float32)
    clean = nib.load(patient.pet_noisefree).get_fdata(dtype=np.float32)
    moved = pet.apply_motion(clean, patient.motion, noisy.affine)
    sd = pet.noise_sd(moved, patient.timing, patient.meta["half_life_min"])
    for k in (5, 15, 21):
        inside = sd[..., k] > 0
        z = (data[..., k] - moved[..., k])[inside] / sd[..., k][inside]
        assert abs(z.mean()) < 0.02
        assert z.std() == pytest.approx(1.0, abs=0.03)
    brain = moved[..., -1] > 0.5 * moved[..., -1].max()
    relative = np.median(sd[..., -1][brain] / moved[..., -1][brain])
    assert 0.05 <= relative <= 0.15
    assert (data[..., 0] == 0).all() or np.abs(data[..., 0]).max() < 0.1 * data.max()


def _arrays(bids_dir, truth_dir):
    truth = load_truth(truth_dir, "01", bids_dir=bids_dir)
    return {
        "pet": nib.load(truth.pet).get_fdata(dtype=np.float32),
        "flair": nib.load(truth.flair).get_fdata(dtype=np.float32),
        "lesions": truth.lesions[["diameter_mm", "centre_x", "centre_y", "centre_z"]].to_numpy(),
        "motion": truth.motion,
        "pet_to_t1w": truth.pet_to_t1w,
    }


def test_seed_reproducible_and_cli(tmp_path):
    """The CLI and the API give identical data for one seed, and different data for another."""
    from tspo_bidsapp.synthetic.cli import main

    common = ["--size", "test", "--n-subjects", "1", "--t1w-voxel-mm", "3", "--pet-voxel-mm", "4"]
    rc = main([str(tmp_path / "a"), "--truth-dir", str(tmp_path / "ta"), "--seed", "3", *common])
    assert rc == 0
    kw = {"size": "test", "n_subjects": 1, "t1w_voxel_mm": 3.0, "pet_voxel_mm": 4.0}
    generate_dataset(tmp_path / "b", tmp_path / "tb", seed=3, **kw)
    generate_dataset(tmp_path / "c", tmp_path / "tc", seed=4, **kw)
    a = _arrays(tmp_path / "a", tmp_path / "ta")
    b = _arrays(tmp_path / "b", tmp_path / "tb")
    c = _arrays(tmp_path / "c", tmp_path / "tc")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert (tmp_path / "a/sub-01/pet/sub-01_trc-PBR28_pet.nii.gz").read_bytes() == (
        tmp_path / "b/sub-01/pet/sub-01_trc-PBR28_pet.nii.gz"
    ).read_bytes()
    for key in ("motion", "pet_to_t1w", "flair"):
        assert not np.array_equal(a[key], c[key])
    assert a["lesions"].shape != c["lesions"].shape or not np.array_equal(
        a["lesions"], c["lesions"]
    )


def test_truth_inside_bids_is_refused(tmp_path):
    with pytest.raises(ValueError, match="must not be inside"):
        generate_dataset(tmp_path / "bids", tmp_path / "bids" / "derivatives" / "truth")
    with pytest.raises(ValueError, match="size"):
        generate_dataset(tmp_path / "bids", tmp_path / "truth", size="huge")


def test_fov_cut_and_large_offset_geometry():
    """The PET FOV ends ``fov_cut_mm`` below the brain top; offsets have the asked magnitude."""
    from tspo_bidsapp.synthetic.motion import random_rigid_parameters

    anatomy = an.build_anatomy(3.0)
    params = random_rigid_parameters(np.random.default_rng(0), 10.0, 10.0)
    assert np.linalg.norm(params[:3]) == pytest.approx(10.0)
    assert np.rad2deg(np.linalg.norm(params[3:])) == pytest.approx(10.0)
    m = rigid_matrix(params[:3], params[3:], (0.0, -18.0, 18.0))
    full = pet.pet_geometry(anatomy.brain, anatomy.affine, m, fov_cut_mm=0.0)
    cut = pet.pet_geometry(anatomy.brain, anatomy.affine, m, fov_cut_mm=20.0)
    assert full.n_cut == 0 and cut.shape == full.shape
    ijk = np.argwhere(anatomy.brain)
    world = anatomy.affine[:3, :3] @ ijk.T + anatomy.affine[:3, 3:4]
    z_pet = (np.linalg.inv(m)[2, :3] @ world + np.linalg.inv(m)[2, 3]).max()
    fov_top = cut.affine[2, 3] + (cut.out_shape[2] - 0.5) * cut.voxel_mm
    assert z_pet - fov_top == pytest.approx(20.0, abs=cut.voxel_mm)


def test_lesion_sizes_are_realistic_and_rim_active_lesions_come_in_every_size():
    from tspo_bidsapp.synthetic.lesions import MAX_FOCAL_DIAMETER_MM, draw_lesion_specs

    rng = np.random.default_rng(0)
    specs = [s for _ in range(200) for s in draw_lesion_specs("SPMS", rng)]
    phenotype = np.array([p for p, _ in specs])
    diameter = np.array([d for _, d in specs])
    assert draw_lesion_specs("HC", rng) == []
    assert 0.6 < np.mean((diameter >= 3) & (diameter <= 8)) < 0.9  # mostly 3-8 mm
    assert 0.05 < np.mean(diameter > MAX_FOCAL_DIAMETER_MM) < 0.2  # a few confluent
    rim = diameter[phenotype == "rim-active"]
    for lo, hi in ((3, 5), (5, 10), (10, 30)):
        assert ((rim >= lo) & (rim < hi)).sum() >= 20, (lo, hi)
    assert np.mean(phenotype == "rim-active") == pytest.approx(0.35, abs=0.05)
