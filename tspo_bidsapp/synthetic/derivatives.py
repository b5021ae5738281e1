"""Export the synthetic anatomy as a derivatives folder a user could pass with ``--derivatives``.

The truth tissue map becomes a FreeSurfer-labelled whole-brain segmentation (``*_dseg.nii.gz``
with ``dseg.tsv``) and the planted lesions a ``*_label-lesion_mask.nii.gz``, the layout of a
previous SAMSEG/FreeSurfer run. The demo uses it to skip SAMSEG (about 10-15 min per
participant on 2 cores); the segmentation is then exact by construction, so only the
motion correction, co-registration and kinetics are put to the test.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

from tspo_bidsapp.anat.labels import FREESURFER_LABELS, write_dseg_tsv
from tspo_bidsapp.synthetic import anatomy as an
from tspo_bidsapp.synthetic.truth import load_truth

# Left/right FreeSurfer indices of each simulated class (x < 0 is left in RAS).
_LEFT_RIGHT: dict[int, tuple[int, int]] = {
    an.GM: (3, 42),
    an.NAWM: (2, 41),
    an.CEREBELLAR_GM: (8, 47),
    an.THALAMUS: (10, 49),
    an.CHOROID_PLEXUS: (31, 63),
}
_CEREBELLAR_WM = (7, 46)
_CSF = 24
_LESION = 99


def truth_to_freesurfer(tissue: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """FreeSurfer aseg indices of a synthetic tissue map (rims and shells count as WM)."""
    xyz = an.voxel_world_coords(affine, tissue.shape)
    right = xyz[0] >= 0
    white = np.isin(tissue, (an.NAWM, an.PERILESIONAL_WM, *an.RIM_CLASSES))
    classes = np.where(white, an.NAWM, tissue)
    out = np.zeros(tissue.shape, np.int16)
    for label, (left_idx, right_idx) in _LEFT_RIGHT.items():
        mask = classes == label
        out[mask & ~right] = left_idx
        out[mask & right] = right_idx
    cerebellum = an._ellipsoid(xyz, *an.CEREBELLUM_ELLIPSOID) & (xyz[2] < an.CEREBELLUM_TOP_Z_MM)
    cwm = cerebellum & (classes == an.NAWM)
    out[cwm & ~right] = _CEREBELLAR_WM[0]
    out[cwm & right] = _CEREBELLAR_WM[1]
    out[tissue == an.CSF] = _CSF
    out[np.isin(tissue, an.LESION_CLASSES)] = _LESION
    return out


def write_anat_derivatives(truth_dir: Path, subjects: list[str], out_dir: Path) -> Path:
    """Write ``out_dir/sub-XX/anat/sub-XX_{dseg,label-lesion_mask}.nii.gz`` for ``subjects``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    used: set[int] = set()
    for subject in subjects:
        truth = load_truth(truth_dir, subject)
        tissue_img = nib.load(truth.tissue)
        tissue = np.asarray(tissue_img.dataobj)
        aseg = truth_to_freesurfer(tissue, tissue_img.affine)
        used |= set(np.unique(aseg).tolist())
        lesions = (np.asarray(nib.load(truth.lesion_ids).dataobj) > 0).astype(np.uint8)
        anat = out_dir / f"sub-{truth.subject}" / "anat"
        anat.mkdir(parents=True, exist_ok=True)
        stem = f"sub-{truth.subject}"
        for array, suffix in ((aseg, "dseg"), (lesions, "label-lesion_mask")):
            img = nib.Nifti1Image(array, tissue_img.affine)
            img.header.set_xyzt_units("mm")
            nib.save(img, anat / f"{stem}_{suffix}.nii.gz")
    write_dseg_tsv(out_dir / "dseg.tsv", {i: FREESURFER_LABELS[i] for i in sorted(used)})
    description = {
        "Name": "Synthetic anatomy (ground truth of tspo-bidsapp-synth)",
        "BIDSVersion": "1.10.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "tspo-bidsapp-synth"}],
    }
    (out_dir / "dataset_description.json").write_text(json.dumps(description, indent=2) + "\n")
    return out_dir
