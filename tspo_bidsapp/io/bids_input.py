"""Collect and validate the inputs of every selected participant, before anything is written.

pybids indexes the dataset in memory (nothing is written into BIDS_DIR). Every PET run is
checked against its sidecar and its image header; all problems across all participants are
reported together, each naming the file and the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from bids import BIDSLayout, BIDSLayoutIndexer
from bids.exceptions import BIDSValidationError

from tspo_bidsapp.exitcodes import (
    BidsAppError,
    InputProblems,
    InvalidBIDSError,
    MissingInputError,
    NothingSelectedError,
)
from tspo_bidsapp.io.images import check_anat_image, check_pet_image, load_header
from tspo_bidsapp.io.participants import ParticipantInfo, genotype_warnings, parse_participants
from tspo_bidsapp.io.pet_sidecar import PetSidecar, read_pet_sidecar
from tspo_bidsapp.tracers import lookup_tracer

_LABEL = re.compile(r"^[a-zA-Z0-9]+$")
NIFTI = [".nii", ".nii.gz"]
# BIDS entities carried from a PET source file into its derivatives, in BIDS order.
PET_ENTITIES = (("session", "ses"), ("task", "task"), ("tracer", "trc"),
                ("reconstruction", "rec"), ("run", "run"))  # fmt: skip


@dataclass(frozen=True)
class PetRun:
    """One PET image, its validated sidecar and its BIDS entities."""

    pet_file: Path
    sidecar_file: Path
    entities: dict[str, str]  # short BIDS keys: sub, ses, task, trc, rec, run
    sidecar: PetSidecar
    image_frames: int  # frames in the image (1 for a 3D image)

    @property
    def run_id(self) -> str:
        """Entities other than sub, e.g. ``ses_01_trc_PBR28_run_1`` (``run`` when none)."""
        parts = [f"{k}_{v}" for k, v in self.entities.items() if k != "sub"]
        return "_".join(parts) or "run"


@dataclass(frozen=True)
class SubjectData:
    """Everything one participant brings: anatomy, PET runs and participants.tsv row."""

    label: str  # without "sub-"
    t1w: Path
    flair: Path | None
    pet_runs: tuple[PetRun, ...]
    participant: ParticipantInfo | None = None
    warnings: tuple[str, ...] = field(default=())
    t2w: Path | None = None  #: optional; sharpens lesion detection (anat.lesion_detect)

    @property
    def sessions(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.entities["ses"] for r in self.pet_runs if "ses" in r.entities))


def pet_frame_count(path: Path) -> int:
    """Frames in a PET NIfTI from its header alone (1 for a 3D image)."""
    shape = load_header(path).shape
    if len(shape) == 3 or (len(shape) == 4 and shape[3] >= 1):
        return 1 if len(shape) == 3 else int(shape[3])
    raise InvalidBIDSError(f"PET image must be 3D or 4D, has shape {shape}", path=path)


def _invalid_labels(bids_dir: Path) -> list[str]:
    """Warnings for ``sub-*`` folders whose label is not a BIDS label (pybids ignores them)."""
    return [
        f"{folder}: '{folder.name[4:]}' is not a valid BIDS participant label (letters and "
        "digits only); this folder is ignored"
        for folder in sorted(bids_dir.glob("sub-*"))
        if folder.is_dir() and not _LABEL.match(folder.name[4:])
    ]


def _missing_flair(label: str, derivatives: tuple[Path, ...]) -> list[str]:
    """The missing-FLAIR warning, unless a lesion mask is supplied for the participant."""
    if derivatives:
        from tspo_bidsapp.anat.supplied import find_supplied

        try:
            if find_supplied(derivatives, label).lesion_mask is not None:
                return []
        except (OSError, ValueError):  # reported where the anatomy is set up
            pass
        return [
            f"sub-{label}: no FLAIR image and no lesion mask in --derivatives; SAMSEG segments "
            "the lesions from the T1w alone"
        ]
    return [f"sub-{label}: no FLAIR image; SAMSEG segments the lesions from the T1w alone"]


def _collect_errors(errors: list[BidsAppError], check, *args) -> bool:
    """Run ``check(*args)``; add the input error it raises to ``errors``. True when it passed."""
    try:
        check(*args)
    except InputProblems as exc:
        errors += exc.errors
        return False
    except BidsAppError as exc:
        errors.append(exc)
        return False
    return True


def build_layout(bids_dir: Path, *, validate: bool) -> BIDSLayout:
    """An in-memory pybids layout of BIDS_DIR (nothing is written into the dataset)."""
    try:
        return BIDSLayout(
            str(bids_dir),
            validate=validate,
            indexer=BIDSLayoutIndexer(validate=validate, index_metadata=False),
        )
    except BIDSValidationError as exc:
        raise InvalidBIDSError(
            f"not a valid BIDS dataset: {str(exc).splitlines()[0]} "
            "(--skip-bids-validation skips this check)",
            path=bids_dir,
        ) from exc


def _entities(path: Path) -> dict[str, str]:
    found = {"sub": re.search(r"sub-([a-zA-Z0-9]+)", path.name).group(1)}
    for _, key in PET_ENTITIES:
        match = re.search(rf"_{key}-([a-zA-Z0-9]+)", path.name)
        if match:
            found[key] = match.group(1)
    return found


def _sidecar_path(pet_file: Path) -> Path:
    name = re.sub(r"\.nii(\.gz)?$", ".json", pet_file.name)
    return pet_file.with_name(name)


def _first_anat(layout: BIDSLayout, subject: str, suffix: str, sessions: list[str]):
    files = sorted(layout.get(subject=subject, datatype="anat", suffix=suffix,
                              extension=NIFTI, return_type="file"))  # fmt: skip
    if not files:
        return None, []
    by_session = [f for f in files if "_ses-" not in Path(f).name]
    for ses in sessions:
        by_session += [f for f in files if f"_ses-{ses}_" in Path(f).name]
    chosen = Path((by_session or files)[0])
    return chosen, files


def collect_data(
    bids_dir: str | Path,
    *,
    participant_label: tuple[str, ...] = (),
    session_label: tuple[str, ...] = (),
    tracer_label: tuple[str, ...] = (),
    validate: bool = True,
    derivatives: tuple[Path, ...] = (),
    injection_start_s: float | None = None,
) -> tuple[list[SubjectData], list[str]]:
    """Find, read and check every input of the selected participants.

    Returns the subjects and a list of warnings (for the caller to report; none are logged
    here). ``derivatives`` are the folders of supplied segmentations (only used to word the
    missing-FLAIR warning); ``injection_start_s`` is ``--injection-time-offset`` (see
    :func:`read_pet_sidecar`). Raises a
    :class:`~tspo_bidsapp.exitcodes.BidsAppError`: 18 when the labels select nothing, 66 when a
    required input (T1w, PET) is missing, 16 when a file or field is invalid.
    """
    bids_dir = Path(bids_dir)
    layout = build_layout(bids_dir, validate=validate)
    available = sorted(layout.get_subjects())
    if not available:
        raise InvalidBIDSError("no participants (sub-* folders) found", path=bids_dir)
    unknown = [p for p in participant_label if p not in available]
    if unknown:
        raise NothingSelectedError(
            f"participant label(s) {', '.join(unknown)} not found in {bids_dir}; "
            f"available: {', '.join(available)}"
        )
    selected = list(participant_label) or available

    warnings: list[str] = _invalid_labels(bids_dir)
    participants: dict[str, ParticipantInfo] = {}
    errors: list[BidsAppError] = []
    tsv = bids_dir / "participants.tsv"
    if tsv.is_file():
        try:
            participants, tsv_warnings = parse_participants(tsv, selected=selected)
            warnings += tsv_warnings
        except InputProblems as exc:
            errors += exc.errors
    else:
        warnings.append(f"{tsv} is missing: group, EDSS and TSPO genotype are unknown")

    subjects: list[SubjectData] = []
    for label in selected:
        query = {"subject": label, "datatype": "pet", "suffix": "pet", "extension": NIFTI}
        if session_label:
            query["session"] = list(session_label)
        if tracer_label:
            query["tracer"] = list(tracer_label)
        pet_files = sorted(Path(f) for f in layout.get(return_type="file", **query))
        if not pet_files:
            if session_label or tracer_label:
                warnings.append(f"sub-{label}: no PET run matches the session/tracer labels")
            elif participant_label:
                errors.append(MissingInputError(f"sub-{label}: no PET image found", path=bids_dir))
            else:
                warnings.append(f"sub-{label}: no PET image found; participant skipped")
            continue
        sessions = list(
            dict.fromkeys(_entities(f).get("ses") for f in pet_files if "_ses-" in f.name)
        )
        t1w, all_t1w = _first_anat(layout, label, "T1w", sessions)
        flair, _ = _first_anat(layout, label, "FLAIR", sessions)
        t2w, _ = _first_anat(layout, label, "T2w", sessions)
        notes: list[str] = []
        if t1w is None:
            errors.append(
                MissingInputError(
                    f"sub-{label}: no T1w image found (anat/sub-{label}[_ses-<label>]_T1w.nii[.gz])",
                    path=bids_dir / f"sub-{label}",
                )
            )
        elif len(all_t1w) > 1:
            notes.append(f"sub-{label}: {len(all_t1w)} T1w images; using {t1w.name}")
        if flair is None:
            notes += _missing_flair(label, derivatives)
        info = participants.get(label)
        if participants and info is None:
            notes.append(f"sub-{label}: not listed in participants.tsv")
        runs: list[PetRun] = []
        for anat in (t1w, flair):
            if anat is not None:
                _collect_errors(errors, check_anat_image, anat)
        for pet_file in pet_files:
            try:
                n_frames = pet_frame_count(pet_file)
            except BidsAppError as exc:  # an unreadable image: its sidecar is still checked
                errors.append(exc)
                n_frames = None
            image_ok = n_frames is not None and _collect_errors(errors, check_pet_image, pet_file)
            try:
                sidecar = read_pet_sidecar(
                    _sidecar_path(pet_file), n_frames=n_frames, injection_start_s=injection_start_s
                )
            except InputProblems as exc:
                errors += exc.errors
                continue
            except BidsAppError as exc:
                errors.append(exc)
                continue
            if not image_ok:
                continue
            entities = _entities(pet_file)
            notes += list(sidecar.warnings)
            trc = lookup_tracer(entities.get("trc"))
            if "trc" in entities and sidecar.tracer is not None and trc != sidecar.tracer:
                notes.append(
                    f"{pet_file.name}: trc-{entities['trc']} does not match TracerName "
                    f"{sidecar.tracer_name!r}"
                )
            notes += genotype_warnings(info, sidecar.tracer)
            runs.append(PetRun(pet_file, sidecar.path, entities, sidecar, n_frames))
        if runs and t1w is not None:
            subjects.append(
                SubjectData(label, t1w, flair, tuple(runs), info, tuple(notes), t2w=t2w)
            )
        warnings += notes
    if errors:
        raise InputProblems(errors)
    if not subjects:
        if session_label or tracer_label:
            raise NothingSelectedError(
                "no PET run matches "
                + ", ".join(
                    f"{opt} {' '.join(vals)}"
                    for opt, vals in (
                        ("--session-label", session_label),
                        ("--tracer-label", tracer_label),
                    )
                    if vals  # fmt: skip
                )
            )
        raise MissingInputError("no participant has a PET image", path=bids_dir)
    return subjects, list(dict.fromkeys(warnings))
