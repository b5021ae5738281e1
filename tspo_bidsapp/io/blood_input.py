"""The arterial input of a PET run: which blood data it has, on the PET's time axis, checked.

A run's input comes from a processed ``*_inputfunction.tsv`` found under ``--derivatives``
(it takes precedence: the user supplied it) or from the BIDS blood recordings beside the PET
(``*_recording-<label>_blood.tsv``), processed by :mod:`tspo_bidsapp.blood`. Blood times are
seconds relative to ``TimeZero``, like the PET frames; :func:`injection_offset_s` is the one
place that says how they are shifted onto the pipeline's time axis. Every problem raises
:class:`~tspo_bidsapp.blood.BloodDataError` (exit 16) naming the file and the column, and
:func:`check_arterial_inputs` runs before anything is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tspo_bidsapp.blood import (
    BloodDataError,
    InputFunction,
    check_coverage,
    find_blood_recordings,
    find_input_function,
    input_function_from_recordings,
    read_input_function,
)
from tspo_bidsapp.blood.find import entities_of
from tspo_bidsapp.blood.recordings import CONTINUOUS_LABELS, recording_label
from tspo_bidsapp.exitcodes import BidsAppError, InputProblems
from tspo_bidsapp.io.pet_sidecar import PetSidecar

RECORDINGS, INPUT_FUNCTION = "recordings", "inputfunction"


def injection_offset_s(sidecar: PetSidecar) -> float:
    """Seconds from ``TimeZero`` to injection, for blood times (BIDS: relative to ``TimeZero``).

    The PET frames enter the kinetic models as seconds after injection
    (``FrameTimesStart - InjectionStart``, or ``--injection-time-offset``); blood times are
    shifted by the same ``InjectionStart`` so both share that axis. For the copy of the sidecar
    rewritten on the injection axis (``InjectionStart = 0``) the run's own value is the one its
    ``TimeAxisProvenance`` recorded.
    """
    recorded = (sidecar.provenance or {}).get("InjectionStart")
    return float(sidecar.injection_start_s if recorded is None else recorded)


@dataclass(frozen=True)
class ArterialSource:
    """Where a PET run's arterial input comes from: ``kind`` and the files."""

    kind: str  # RECORDINGS or INPUT_FUNCTION
    files: tuple[Path, ...]


def find_arterial_input(
    pet_file: str | Path, derivatives: Iterable[str | Path] = ()
) -> ArterialSource | None:
    """A supplied input function under ``derivatives``, else the run's blood recordings."""
    for folder in derivatives:
        found = find_input_function(pet_file, folder)
        if found is not None:
            return ArterialSource(INPUT_FUNCTION, (Path(found),))
    recordings = find_blood_recordings(pet_file)
    if recordings:
        return ArterialSource(RECORDINGS, tuple(recordings.values()))
    return None


def load_arterial_input(
    source: ArterialSource,
    sidecar: PetSidecar,
    *,
    parent_fraction_model: str | None = None,
    offset_s: float | None = None,
) -> InputFunction:
    """Read (and process) the input in the PET's units; check it covers the scan.

    ``offset_s``: injection time relative to the blood's ``TimeZero`` (s); default
    :func:`injection_offset_s` of ``sidecar``.
    """
    offset = injection_offset_s(sidecar) if offset_s is None else float(offset_s)
    if source.kind == INPUT_FUNCTION:
        (path,) = source.files
        inp = read_input_function(path, pet_units=sidecar.units, injection_offset_s=offset)
    else:
        inp = input_function_from_recordings(
            source.files,
            pet_units=sidecar.units,
            injection_offset_s=offset,
            parent_fraction_model=parent_fraction_model,
        )
    timing = sidecar.timing
    check_coverage(inp, timing.end_min, frame_start_min=timing.start_min, path=_tail_file(source))
    return inp


def _tail_file(source: ArterialSource) -> Path:
    """The file named when the blood misses the end of the scan: a discrete (manual) recording,
    which carries the late samples, else the first file."""
    discrete = [f for f in source.files if recording_label(f) not in CONTINUOUS_LABELS]
    return (discrete or list(source.files))[0]


def orphan_blood_files(pet_dir: Path) -> list[Path]:
    """Blood recordings in ``pet_dir`` that belong to no PET image there."""
    pets = [p for p in pet_dir.glob("*_pet.nii*")]
    orphans = []
    for blood in sorted(pet_dir.glob("*_recording-*_blood.tsv")):
        if not any(blood in find_blood_recordings(pet).values() for pet in pets):
            orphans.append(blood)
    return orphans


def check_arterial_inputs(
    runs: Sequence, derivatives: Iterable[str | Path] = (), *, parent_fraction_model=None
) -> dict[Path, ArterialSource]:
    """Check the blood of every run (``PetRun``) and every blood file's PET, all together.

    Returns ``{pet_file: source}`` of the runs with an arterial input; raises
    :class:`~tspo_bidsapp.exitcodes.InputProblems` (exit 16) listing every problem.
    """
    derivatives = tuple(derivatives)
    errors: list[BidsAppError] = []
    sources: dict[Path, ArterialSource] = {}
    for pet_dir in sorted({Path(run.pet_file).parent for run in runs}):
        for blood in orphan_blood_files(pet_dir):
            errors.append(BloodDataError(
                f"no PET image in this folder matches its entities {entities_of(blood)}",
                path=blood, field="recording"))  # fmt: skip
    for run in runs:
        if run.sidecar.is_static:  # no kinetic modelling of a single frame
            continue
        try:
            source = find_arterial_input(run.pet_file, derivatives)
            if source is not None:
                load_arterial_input(source, run.sidecar,
                                    parent_fraction_model=parent_fraction_model)  # fmt: skip
                sources[Path(run.pet_file)] = source
        except BloodDataError as exc:
            errors.append(exc)
    if errors:
        raise InputProblems(errors)
    return sources
