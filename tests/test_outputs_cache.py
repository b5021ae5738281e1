"""Derivatives are (re)written whatever the work folder's cache holds.

A participant's outputs may be deleted, or a new OUTPUT_DIR given, while the work folder of an
earlier run is kept: every derivative must then be written again, none silently skipped
because its node's result is cached.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np

from tspo_bidsapp.workflows.pet.outputs import init_pet_preproc_derivatives_wf

SOURCE = "/data/sub-01/ses-1/pet/sub-01_ses-1_trc-PBR28_pet.nii.gz"


def _inputs(folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    img = nib.Nifti1Image(np.arange(24, dtype=np.float32).reshape(2, 3, 4), np.eye(4))
    nib.save(img, folder / "ref.nii.gz")
    nib.save(nib.Nifti1Image(np.ones((2, 3, 4, 2), np.float32), np.eye(4)), folder / "mc.nii.gz")
    (folder / "conf.tsv").write_text("framewise_displacement\nn/a\n0.1\n")
    (folder / "a.txt").write_text("#Insight Transform File V1.0\n")
    (folder / "b.txt").write_text("#Insight Transform File V1.0\n# two\n")
    return {
        "source_file": SOURCE,
        "petref": str(folder / "ref.nii.gz"),
        "pet_mc": str(folder / "mc.nii.gz"),
        "pet_metadata": {"FrameDuration": [1, 1]},
        "confounds": str(folder / "conf.tsv"),
        "confounds_metadata": {},
        "hmc_xforms": str(folder / "b.txt"),
        "itk_pet_to_t1w": str(folder / "a.txt"),
        "petref_t1w": str(folder / "ref.nii.gz"),
    }


def _run(output_dir: Path, work: Path, inputs: dict) -> list[str]:
    workflow = init_pet_preproc_derivatives_wf(output_dir=str(output_dir))
    workflow.base_dir = str(work)
    for key, value in inputs.items():
        setattr(workflow.get_node("inputnode").inputs, key, value)
    workflow.run(plugin="Linear")
    return sorted(str(p.relative_to(output_dir)) for p in output_dir.rglob("*") if p.is_file())


def test_every_derivative_is_rewritten_from_a_kept_work_folder(tmp_path):
    inputs = _inputs(tmp_path / "in")
    work = tmp_path / "work"
    first = _run(tmp_path / "out", work, inputs)
    assert len(first) == 10  # 4 images/tables, their 4 sidecars, 2 transforms
    assert sum(name.endswith("_xfm.txt") for name in first) == 2
    # The output folder is deleted; the same work folder is used again.
    shutil.rmtree(tmp_path / "out")
    assert _run(tmp_path / "out", work, inputs) == first
    # A new output folder with the same work folder.
    assert _run(tmp_path / "elsewhere", work, inputs) == first
    moved = tmp_path / "elsewhere" / first[0]
    assert moved.read_bytes() == (tmp_path / "out" / first[0]).read_bytes()
