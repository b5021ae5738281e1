"""A user-named TSPO-MS region as the reference (``--ref-region NAWM``, ``cortical-GM``, ...)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from tspo_bidsapp.anat.labels import TSPOMS_INDEX, TSPOMS_LABELS, write_dseg_tsv
from tspo_bidsapp.interfaces.quant import ExtractTACs, ReferenceRegion, RegionalKinetics
from tspo_bidsapp.quant.reference import parse_ref_region, ref_entity, region_reference


def _volume():
    """4x4x2 grid of 1-mL voxels: NAWM values 1..8 (the two hottest, 50 and 60, are lesion),
    cortical-GM 7.0, thalamus 5.25. NAWM minus lesions: mean(1..6) = 3.5."""
    labels = np.zeros((4, 4, 2), np.uint8)
    labels[0] = TSPOMS_INDEX["NAWM"]
    labels[1] = TSPOMS_INDEX["cortical-GM"]
    labels[2] = TSPOMS_INDEX["thalamus"]
    data = np.zeros((4, 4, 2), np.float32)
    data[0] = np.arange(1, 9, dtype=np.float32).reshape(4, 2)
    data[1], data[2] = 7.0, 5.25
    lesion = np.zeros((4, 4, 2), bool)
    lesion[0, 3, :] = True  # the NAWM voxels that held 7 and 8
    data[0, 3, :] = (50.0, 60.0)
    return labels, data, lesion


def _sidecar(path, starts_s, durations_s):
    path.write_text(json.dumps({
        "InjectionStart": 0, "FrameTimesStart": starts_s, "FrameDuration": durations_s,
        "Units": "kBq/mL", "TracerName": "GE180", "TracerRadionuclide": "F18",
        "ImageDecayCorrected": True, "ImageDecayCorrectionTime": 0}))  # fmt: skip
    return str(path)


def _save(arr, path, dtype=np.float32):
    nib.Nifti1Image(np.asarray(arr, dtype), np.diag([10.0, 10.0, 10.0, 1.0])).to_filename(path)
    return str(path)


def test_parse_ref_region_and_entity():
    assert parse_ref_region("nawm") == "NAWM" and parse_ref_region("Cerebellum") == "cerebellum"
    assert parse_ref_region("cortical-GM") == "cortical-GM"
    for bad in ("pons", "WM-lesions"):  # unknown; the lesions cannot be their own reference
        with pytest.raises(ValueError, match="--ref-region must be one of"):
            parse_ref_region(bad)
    assert ref_entity("cortical-GM") == "corticalGM" and ref_entity("NAWM") == "NAWM"
    assert ref_entity("perilesional-WM-0-3mm") == "perilesionalWM03mm"


def test_region_reference_is_the_lesion_free_region_mean():
    labels, data, lesion = _volume()
    frames = data[..., None] * np.array([1.0, 2.0, 3.0], np.float32)
    mask, tac = region_reference(frames, labels, TSPOMS_INDEX["NAWM"], lesion)
    assert int(mask.sum()) == 6 and not (mask & lesion).any()
    assert tac == pytest.approx([3.5, 7.0, 10.5])
    _, with_lesions = region_reference(frames, labels, TSPOMS_INDEX["NAWM"])
    assert with_lesions[0] == pytest.approx((21.0 + 110.0) / 8)  # 1..6 plus 50 and 60


@pytest.mark.parametrize(
    ("starts_s", "durations_s", "expected"),
    [([3600.0], [1800.0], [3.5]), ([0.0, 600.0, 1200.0], [600.0, 600.0, 600.0], [3.5, 7, 10.5])],
)
def test_named_reference_interface_static_and_dynamic(tmp_path, starts_s, durations_s, expected):
    labels, data, lesion = _volume()
    frames = data[..., None] * np.arange(1, len(starts_s) + 1, dtype=np.float32)
    sidecar = _sidecar(tmp_path / "pet.json", starts_s, durations_s)
    pet = _save(frames, tmp_path / "pet.nii.gz")
    dseg = _save(labels, tmp_path / "dseg.nii.gz", np.uint8)
    tsv = str(write_dseg_tsv(tmp_path / "dseg.tsv", TSPOMS_LABELS))
    res = ReferenceRegion(method="NAWM", pet_file=pet, sidecar_file=sidecar, dseg_file=dseg,
                          dseg_tsv=tsv, lesion_mask=_save(lesion, tmp_path / "l.nii.gz", np.uint8),
                          ).run(cwd=str(tmp_path)).outputs  # fmt: skip
    assert pd.read_csv(res.out_tsv, sep="\t")["reference"].tolist() == pytest.approx(expected)
    assert res.out_meta["ReferenceRegion"] == "NAWM"
    assert res.out_meta["ReferenceLabel"] == {"index": TSPOMS_INDEX["NAWM"], "name": "NAWM"}
    assert res.out_meta["VolumeML"] == pytest.approx(6.0)
    assert np.asarray(nib.load(res.out_mask).dataobj).sum() == 6
    if len(starts_s) == 1:  # static: SUVR against NAWM = region mean / 3.5
        tacs = ExtractTACs(pet_file=pet, sidecar_file=sidecar, dseg_file=dseg, dseg_tsv=tsv)
        tacs_res = tacs.run(cwd=str(tmp_path)).outputs
        fit = (
            RegionalKinetics(
                tacs_tsv=tacs_res.out_tsv,
                ref_tsv=res.out_tsv,
                volumes=tacs_res.volumes,
                models=["SUVR"],
                suvr_window_min=(60.0, 90.0),
            )
            .run(cwd=str(tmp_path))
            .outputs
        )
        suvr = pd.read_csv(fit.out_tsvs["SUVR"], sep="\t").set_index("region")["SUVR"]
        assert suvr["cortical-GM"] == pytest.approx(2.0)
        assert suvr["thalamus"] == pytest.approx(1.5)


def test_named_reference_missing_region_in_table(tmp_path):
    labels, data, _ = _volume()
    tsv = write_dseg_tsv(tmp_path / "dseg.tsv", {4: "NAWM"})
    ref = ReferenceRegion(method="cortical-GM", pet_file=_save(data[..., None], tmp_path / "p.nii.gz"),
                          sidecar_file=_sidecar(tmp_path / "pet.json", [3600.0], [1800.0]),
                          dseg_file=_save(labels, tmp_path / "d.nii.gz", np.uint8),
                          dseg_tsv=str(tsv))  # fmt: skip
    with pytest.raises(ValueError, match="no region named 'cortical-GM'"):
        ref.run(cwd=str(tmp_path))


def test_named_reference_in_the_workflows(tmp_path):
    """The quantification workflow feeds the segmentation to the reference node and names
    outputs ``ref-corticalGM``; a static run keeps the named region."""
    from test_input_data import make_dataset, pet_sidecar, write_pet

    from tspo_bidsapp.config import Config
    from tspo_bidsapp.io.bids_input import collect_data
    from tspo_bidsapp.workflows.base import init_pet_wf
    from tspo_bidsapp.workflows.quant import init_pet_quant_wf

    wf = init_pet_quant_wf(ref_region="cortical-gm", models=("SRTM",), output_dir=str(tmp_path))
    assert wf.get_node("reference").inputs.method == "cortical-GM"
    edges = {(u.name, v.name): d["connect"] for u, v, d in wf._graph.edges(data=True)}
    assert ("tspoms_dseg", "dseg_file") in edges[("inputnode", "reference")]
    assert wf.get_node("ds_ref_tacs").inputs.ref == "corticalGM"

    bids = make_dataset(tmp_path / "bids")
    meta = pet_sidecar(n_frames=1, FrameTimesStart=[2400], FrameDuration=[1200])
    write_pet(bids / "sub-01/ses-base/pet/sub-01_ses-base_trc-PBR28_pet.nii.gz", 1, meta)
    subjects, _ = collect_data(bids, participant_label=("01",))
    config = Config(analysis_level="participant", bids_dir=bids, output_dir=tmp_path / "out",
                    work_dir=tmp_path / "work", ref_region="NAWM")  # fmt: skip
    (run,) = subjects[0].pet_runs
    static = init_pet_wf(config=config, subject=subjects[0], run=run)
    assert static.get_node("pet_quant_wf.reference").inputs.method == "NAWM"
    assert static.get_node("pet_quant_wf.kinetics").inputs.models == ["SUVR"]


def test_named_reference_on_the_command_line(tmp_path):
    from test_input_data import make_dataset

    from tspo_bidsapp.cli.parser import parse_args
    from tspo_bidsapp.exitcodes import EX_USAGE, UsageError

    bids, out = str(make_dataset(tmp_path / "bids")), str(tmp_path / "out")
    config = parse_args([bids, out, "participant", "--ref-region", "nawm"])
    assert config.ref_region == "NAWM"
    with pytest.raises(UsageError, match="TSPO-MS region") as info:
        parse_args([bids, out, "participant", "--ref-region", "WM-lesions"])
    assert info.value.exit_code == EX_USAGE == 64


def test_methods_text_names_the_reference():
    from tspo_bidsapp.config import Config
    from tspo_bidsapp.reports.methods import RunFacts, methods_paragraphs

    cfg = Config(bids_dir="/bids", output_dir="/out", analysis_level="participant",
                 work_dir="/work", ref_region="cortical-GM", models=("SUVR",)).to_dict()  # fmt: skip
    for ref, said in (("corticalGM", "the TSPO-MS region cortical-GM minus lesions"),
                      ("wholebrain", "the whole brain minus lesions"),
                      ("cerebellum", "the lesion-free cerebellar grey matter")):  # fmt: skip
        facts = RunFacts(tracer="[18F]GE-180", n_frames=1, models=["SUVR"], references=[ref])
        assert f"The reference region was {said}" in " ".join(methods_paragraphs(cfg, facts)[0])
