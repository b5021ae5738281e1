"""The quantification interfaces chained on small NIfTI files with known kinetics."""

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from tspo_bidsapp.anat.labels import TSPOMS_INDEX, TSPOMS_LABELS, write_dseg_tsv
from tspo_bidsapp.interfaces.pvc import LesionPhenotypes
from tspo_bidsapp.interfaces.quant import (
    ExtractTACs,
    ReferenceRegion,
    RegionalKinetics,
    VoxelwiseMaps,
)
from tspo_bidsapp.io.timing import TSPO_60MIN_DURATIONS_S, FrameTiming
from tspo_bidsapp.kinetics.simulate import fine_grid, frame_average, reference_tac, srtm_tissue
from tspo_bidsapp.synthetic.pet import PetGeometry
from tspo_bidsapp.synthetic.sidecar import pet_sidecar
from tspo_bidsapp.tracers import lookup_tracer

BPND = {"NAWM": 0.10, "thalamus": 0.26, "cerebellar-GM-reference": 0.0}


def _save(data, path, dtype=np.float32):
    nib.save(nib.Nifti1Image(np.asarray(data, dtype), np.diag([2.0, 2.0, 2.0, 1.0])), str(path))
    return str(path)


def test_tacs_reference_kinetics_maps_and_phenotypes(tmp_path):
    timing = FrameTiming.from_durations_s(TSPO_60MIN_DURATIONS_S)
    t = fine_grid(float(timing.end_min[-1]))
    cref = reference_tac(t)
    bp = np.array(list(BPND.values()))
    r1 = np.array([0.65, 0.95, 1.0])
    curves = frame_average(
        t, srtm_tissue(t, cref, r1, 0.35 * r1, bp), timing.start_min, timing.end_min
    )
    labels = np.zeros((14, 14, 14), np.uint8)
    labels[1:7, 1:13, 1:13] = TSPOMS_INDEX["NAWM"]
    labels[7:10, 1:13, 1:13] = TSPOMS_INDEX["thalamus"]
    labels[10:13, 1:13, 1:13] = TSPOMS_INDEX["cerebellar-GM-reference"]
    table = np.zeros((TSPOMS_INDEX["cerebellar-GM-reference"] + 1, timing.n_frames), np.float32)
    for name, curve in zip(BPND, curves, strict=True):
        table[TSPOMS_INDEX[name]] = curve
    pet = _save(table[labels], tmp_path / "pet.nii.gz")
    geom = PetGeometry(np.eye(4), (14, 14, 14), 0, np.eye(4), 4.5)
    meta = pet_sidecar(lookup_tracer("PBR28"), timing, 400.0, geom, np.random.default_rng(0))
    sidecar = tmp_path / "pet.json"
    sidecar.write_text(json.dumps(meta))
    dseg = _save(labels, tmp_path / "dseg.nii.gz", np.uint8)
    tsv = write_dseg_tsv(tmp_path / "dseg.tsv", TSPOMS_LABELS)
    cand = _save(labels == TSPOMS_INDEX["cerebellar-GM-reference"], tmp_path / "c.nii.gz", np.uint8)
    brain = _save(labels > 0, tmp_path / "brain.nii.gz", np.uint8)

    tacs = ExtractTACs(pet_file=pet, sidecar_file=str(sidecar), dseg_file=dseg, dseg_tsv=str(tsv))
    tacs_res = tacs.run(cwd=str(tmp_path)).outputs
    assert tacs_res.volumes["thalamus"] == pytest.approx(3 * 12 * 12 * 0.008)
    ref = ReferenceRegion(pet_file=pet, sidecar_file=str(sidecar), candidate_mask=cand)
    ref_res = ref.run(cwd=str(tmp_path)).outputs
    assert len(ref_res.warnings) == 1 and "3.46 mL is below 5 mL" in ref_res.warnings[0]
    fit = RegionalKinetics(
        tacs_tsv=tacs_res.out_tsv, ref_tsv=ref_res.out_tsv, volumes=tacs_res.volumes,
        models=["SRTM", "Logan"], tstar_min=20.0, participant={"tspo_genotype": "HAB"},
    )  # fmt: skip
    fit_res = fit.run(cwd=str(tmp_path)).outputs
    srtm = pd.read_csv(fit_res.out_tsvs["SRTM"], sep="\t").set_index("region")
    for name, value in BPND.items():
        assert srtm.loc[name, "BPND"] == pytest.approx(value, abs=0.005)
    assert (srtm["tspo_genotype"] == "HAB").all()
    maps = VoxelwiseMaps(pet_file=pet, ref_tsv=ref_res.out_tsv, brain_mask=brain, models=["SRTM"])
    maps_res = maps.run(cwd=str(tmp_path)).outputs
    dvr_file = maps_res.out_maps[maps_res.measures.index("DVR")]
    dvr = np.asarray(nib.load(dvr_file).dataobj)
    assert np.nanmean(dvr[labels == TSPOMS_INDEX["thalamus"]]) == pytest.approx(1.26, abs=0.01)
    ids = np.zeros(labels.shape, np.int32)
    ids[4, 6, 6] = 1  # a one-voxel lesion in NAWM surrounded by "active" NAWM at DVR 1.10
    phen = LesionPhenotypes(
        dvr_file=dvr_file, lesion_ids=_save(ids, tmp_path / "ids.nii.gz", np.int32),
        wm_mask=_save(labels == TSPOMS_INDEX["NAWM"], tmp_path / "wm.nii.gz", np.uint8),
        threshold_dvr=1.05, participant={"tspo_genotype": "HAB"},
    )  # fmt: skip
    phen_res = phen.run(cwd=str(tmp_path)).outputs
    row = pd.read_csv(phen_res.out_tsv, sep="\t").iloc[0]
    # rim: within 2 mm of the lesion surface, 1 mm beyond the voxel centre -> 6 face + 12 edge
    assert row["phenotype"] == "overall-active" and row["rim_voxels"] == 18
    assert phen_res.out_meta["PhenotypeRule"]["threshold_dvr"] == 1.05
