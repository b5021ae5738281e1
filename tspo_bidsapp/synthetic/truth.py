"""Ground truth of a synthetic participant: writing it beside the BIDS tree and reading it back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tspo_bidsapp.io.timing import FrameTiming

MOTION_COLUMNS = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
TRANSFORM_CONVENTION = (
    "4x4 matrices act on RAS world millimetres of the NIfTI affines. A rigid transform with "
    "parameters t = (trans_x, trans_y, trans_z) [mm] and r = (rot_x, rot_y, rot_z) [rad] about "
    "centre c [mm] is p -> R (p - c) + c + t with R = Rz(rot_z) @ Ry(rot_y) @ Rx(rot_x) (rotate "
    "about the fixed x axis first, then y, then z)."
)


def subject_label(subject: str) -> str:
    """'sub-01' or '01' -> '01'."""
    return subject[4:] if subject.startswith("sub-") else subject


@dataclass
class SubjectTruth:
    """Everything known about one synthetic participant (paths are absolute)."""

    subject: str  # label without 'sub-'
    group: str
    genotype: str
    tracer: str
    truth_dir: Path  # truth_dir/sub-XX
    t1w: Path
    flair: Path
    pet: Path
    pet_json: Path
    tissue: Path  # integer tissue classes, T1w grid
    lesion_ids: Path  # integer lesion ids, T1w grid
    pet_noisefree: Path  # motion-free, noise-free PET, PET grid
    pet_to_t1w: np.ndarray  # 4x4, PET world -> T1w world
    pet_to_t1w_params: np.ndarray  # (6,) trans mm, rot rad about pet_to_t1w_centre_mm
    pet_to_t1w_centre_mm: np.ndarray
    motion: np.ndarray  # (n_frames, 4, 4): frame-k image at p shows motion-free PET at H_k @ p
    motion_params: np.ndarray  # (n_frames, 6) about motion_centre_mm (PET world)
    motion_centre_mm: np.ndarray
    timing: FrameTiming
    reference_tac: np.ndarray  # (n_frames,) kBq/mL, frame means, noise-free
    class_tacs: pd.DataFrame  # frame_start, frame_end (s) and one noise-free column per class
    tissues: pd.DataFrame  # label, name, R1, k2, BPND
    lesions: pd.DataFrame  # id, phenotype, diameter_mm, volume_ml, centre, core/rim BPND
    meta: dict  # the whole truth.json

    @property
    def bpnd(self) -> dict[str, float]:
        """True BPND of each tissue class by name."""
        return dict(zip(self.tissues["name"], self.tissues["BPND"], strict=True))


def write_truth(
    out_dir: Path,
    meta: dict,
    tissues: pd.DataFrame,
    lesions: pd.DataFrame,
    timing: FrameTiming,
    reference: np.ndarray,
    class_tacs: dict[str, np.ndarray],
    motion_params: np.ndarray,
) -> None:
    """Write truth.json and the TSV tables of one participant into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "truth.json").write_text(json.dumps(meta, indent=2))
    tissues.to_csv(out_dir / "tissues.tsv", sep="\t", index=False)
    lesions.to_csv(out_dir / "lesions.tsv", sep="\t", index=False)
    frames = {"frame_start": timing.start_s, "frame_end": timing.end_s}
    pd.DataFrame({**frames, "reference": reference}).to_csv(
        out_dir / "reference_tac.tsv", sep="\t", index=False, float_format="%.9g"
    )
    pd.DataFrame({**frames, **class_tacs}).to_csv(
        out_dir / "class_tacs.tsv", sep="\t", index=False, float_format="%.9g"
    )
    motion = pd.DataFrame(motion_params, columns=list(MOTION_COLUMNS))
    motion.insert(0, "frame", np.arange(len(motion)))
    motion.to_csv(out_dir / "motion.tsv", sep="\t", index=False, float_format="%.9g")


def load_truth(
    truth_dir: str | Path, subject: str, bids_dir: str | Path | None = None
) -> SubjectTruth:
    """Read the ground truth of ``subject`` ('01' or 'sub-01') from ``truth_dir``.

    BIDS paths are resolved against ``bids_dir`` (default: the directory recorded at
    generation time).
    """
    label = subject_label(subject)
    sub_dir = Path(truth_dir) / f"sub-{label}"
    path = sub_dir / "truth.json"
    if not path.is_file():
        raise FileNotFoundError(f"no synthetic truth for sub-{label}: {path} does not exist")
    meta = json.loads(path.read_text())
    root = Path(bids_dir) if bids_dir is not None else Path(meta["bids_dir"])
    files = meta["files"]
    ref = pd.read_csv(sub_dir / "reference_tac.tsv", sep="\t")
    lesions = pd.read_csv(sub_dir / "lesions.tsv", sep="\t")
    return SubjectTruth(
        subject=label,
        group=meta["group"],
        genotype=meta["tspo_genotype"],
        tracer=meta["tracer"],
        truth_dir=sub_dir,
        t1w=root / files["t1w"],
        flair=root / files["flair"],
        pet=root / files["pet"],
        pet_json=root / files["pet_json"],
        tissue=sub_dir / files["tissue"],
        lesion_ids=sub_dir / files["lesions"],
        pet_noisefree=sub_dir / files["pet_noisefree"],
        pet_to_t1w=np.asarray(meta["pet_to_t1w"], float),
        pet_to_t1w_params=np.asarray(meta["pet_to_t1w_parameters"]["values"], float),
        pet_to_t1w_centre_mm=np.asarray(meta["pet_to_t1w_parameters"]["centre_mm"], float),
        motion=np.asarray(meta["motion"], float),
        motion_params=np.asarray(meta["motion_parameters"]["values"], float),
        motion_centre_mm=np.asarray(meta["motion_parameters"]["centre_mm"], float),
        timing=FrameTiming.from_start_end_s(ref["frame_start"], ref["frame_end"]),
        reference_tac=ref["reference"].to_numpy(float),
        class_tacs=pd.read_csv(sub_dir / "class_tacs.tsv", sep="\t"),
        tissues=pd.read_csv(sub_dir / "tissues.tsv", sep="\t"),
        lesions=lesions,
        meta=meta,
    )
