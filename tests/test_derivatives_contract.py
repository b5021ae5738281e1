"""Writers and readers agree on every derivative name and sidecar key.

The writers are the ``ds_*`` sinks of the real workflows; the readers are the contract
specs that the report and the group level look files up with. A literal changed on either side
makes a name that the other side no longer finds, and this test fails.
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("NIPYPE_NO_ET", "1")

import numpy as np
import pytest
from nipype.interfaces.base import isdefined

from tspo_bidsapp.group.collect import _anat_slot, parse_name
from tspo_bidsapp.interfaces.bids import DerivativesDataSink, derivative_path
from tspo_bidsapp.io import derivatives as D
from tspo_bidsapp.io.blood_input import RECORDINGS, ArterialSource
from tspo_bidsapp.registration.confounds import confounds_description, motion_confounds
from tspo_bidsapp.registration.transforms import ras_to_lps, rigid_matrix
from tspo_bidsapp.reports.collect import pet_runs
from tspo_bidsapp.reports.sections import FigureMaker, Section, motion_section
from tspo_bidsapp.workflows.anat import init_anat_wf
from tspo_bidsapp.workflows.base import RUN_SUMMARY_ENTITIES
from tspo_bidsapp.workflows.pet.outputs import init_pet_preproc_derivatives_wf
from tspo_bidsapp.workflows.pet.static import init_pet_suv_wf
from tspo_bidsapp.workflows.quant import init_pet_quant_wf

PET_SOURCE = "/data/sub-01/pet/sub-01_trc-PBR28_pet.nii.gz"
T1W_SOURCE = "/data/sub-01/anat/sub-01_T1w.nii.gz"
VARIABLE_VALUES = {"model": "SRTM", "meas": "DVR"}  # filled per file by MapNodes
ENTITIES = ("space", "seg", "label", "model", "ref", "meas", "desc", "suffix", "extension")


def _sinks(workflow):
    for name in workflow.list_node_names():
        node = workflow.get_node(name)
        if isinstance(node.interface, DerivativesDataSink):
            yield name, node
        elif hasattr(node, "list_node_names"):
            yield from _sinks(node)


def _written_names(workflow, source: str) -> dict[str, str]:
    """Node name -> file name each sink of ``workflow`` writes for ``source``."""
    out = {}
    for name, node in _sinks(workflow):
        values = {k: getattr(node.inputs, k) for k in ENTITIES}
        values = {k: v for k, v in values.items() if isdefined(v)}
        for key, value in VARIABLE_VALUES.items():
            if key in getattr(node, "iterfield", ()) or (key == "model" and name == "ds_lesions"):
                values.setdefault(key, value)
        assert "extension" in values, f"{name}: no extension (take it from the contract)"
        out[name] = derivative_path(source, **values).name
    return out


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> list[str]:
    preproc = init_pet_preproc_derivatives_wf(output_dir="/out")
    names = _written_names(preproc, PET_SOURCE)
    for node in ("ds_xfm_pet_to_t1w", "ds_xfm_hmc"):  # named from the stored petref
        inputs = preproc.get_node(node).inputs
        assert names["ds_petref"].endswith(inputs.old_tail)
        names[node] = names["ds_petref"][: -len(inputs.old_tail)] + inputs.new_tail
    quant = init_pet_quant_wf(output_dir="/out", models=("SRTM", "Logan"), pvc="gtm",
                              pet_fwhm_mm=5.0, active_threshold=1.2, pet_space_maps=True)  # fmt: skip
    names |= _written_names(quant, PET_SOURCE)
    blood_tsv = tmp_path_factory.mktemp("blood") / "sub-01_recording-manual_blood.tsv"
    blood_tsv.write_text("time\twhole_blood_radioactivity\n")
    blood = ArterialSource(RECORDINGS, (blood_tsv,))
    plasma = init_pet_quant_wf(output_dir="/out", models=("1TCM",), blood=blood)
    names |= _written_names(plasma, PET_SOURCE)
    static = init_pet_suv_wf(output_dir="/out", source_file=PET_SOURCE, suv={})
    names |= _written_names(static, PET_SOURCE)
    anat = init_anat_wf(subject="01", has_flair=True, output_dir="/out")
    names |= _written_names(anat, T1W_SOURCE)
    names["ds_frames"] = derivative_path(PET_SOURCE, **RUN_SUMMARY_ENTITIES).name
    return sorted(names.values())


READ_SPECS = [getattr(D, name) for name in dir(D) if isinstance(getattr(D, name), D.Spec)]


@pytest.mark.parametrize("spec", READ_SPECS, ids=lambda s: s.tail())
def test_every_contract_name_is_written_by_a_workflow(spec, written):
    hits = [n for n in written if spec.matches(parse_name(n))]
    assert hits, f"no workflow writes {spec.tail()} (written: {written})"


def test_readers_find_what_writers_wrote(written, tmp_path):
    for name in written:
        folder = "anat" if name.startswith("sub-01_") and "trc-" not in name else "pet"
        (tmp_path / "sub-01" / folder).mkdir(parents=True, exist_ok=True)
        (tmp_path / "sub-01" / folder / name).write_text("")
    (run,) = pet_runs(tmp_path, "01")
    assert run.prefix == "sub-01_trc-PBR28"
    for spec in READ_SPECS:
        if spec.datatype == "pet":
            ref = {"ref": "cerebellum"} if "ref" in spec.entities else {}
            assert run.find(spec.tail(**ref)), spec.tail()
    slots = {_anat_slot(parse_name(n)) for n in written if "trc-" not in n}
    assert {"t1w", "brain_mask", "tspoms_dseg", "tspoms_tsv", "lesion_ids",
            "lesion_morph"} <= slots  # fmt: skip
    assert run.first(D.XFM_PET_TO_T1W_TAIL.lstrip("_")) is not None


def test_report_uses_the_fd_threshold_the_motion_correction_recorded(tmp_path):
    """Writer: confounds table and sidecar at 0.7 mm. Reader: the report's motion section,
    given a different configured threshold, flags the frames the writer flagged (from 1)."""
    centre = np.zeros(3)
    shifts = [0.0, 0.8, 0.8, 2.0]  # x translations (mm): FD = n/a, 0.8, 0.0, 1.2
    hmc = np.stack([ras_to_lps(rigid_matrix([x, 0, 0], [0, 0, 0], centre)) for x in shifts])
    table = motion_confounds(hmc, centre, fd_threshold_mm=0.7)
    pet = tmp_path / "sub-01" / "pet"
    pet.mkdir(parents=True)
    tsv = pet / f"sub-01_trc-PBR28_{D.CONFOUNDS.tail()}"
    table.to_csv(tsv, sep="\t", index=False, na_rep="n/a")
    tsv.with_suffix("").with_suffix(".json").write_text(
        json.dumps(confounds_description(centre, 0.7))
    )
    sec = Section("motion", "Motion")
    flagged = motion_section(sec, pet_runs(tmp_path, "01"), FigureMaker(tmp_path, "01"), 1.0)
    writer_frames = [int(i) for i in np.flatnonzero(table["motion_outlier"])]
    assert writer_frames == [1, 3]
    assert flagged == {"sub-01_trc-PBR28": (writer_frames, 0.7)}
    items = dict(sec.items)
    assert items["sub-01_trc-PBR28 flagged frames (FD > 0.7 mm)"] == "2, 4"
