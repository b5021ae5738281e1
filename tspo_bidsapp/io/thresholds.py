"""Read ``--active-threshold-file``: one threshold, or one per rs6971 binding class.

The group level writes (:mod:`tspo_bidsapp.group.controls`) either a single
``threshold_dvr`` (genotype-insensitive tracers, or one class's ``..._desc-activethreshold<HAB|MAB>.json``
with its ``binding_class``) or, for genotype-sensitive tracers, a combined JSON whose
``binding_classes`` maps HAB/MAB to a threshold or to the reason it is missing. A TSV with a
``threshold_dvr`` column (first row) is read too. :func:`participant_threshold` picks the
participant's class (``tspo_genotype`` of participants.tsv) and refuses, naming file and field,
when that class has no threshold (exit 16).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from tspo_bidsapp.exitcodes import InputProblems, InvalidBIDSError, MissingInputError, UsageError

OPTION = "--active-threshold-file"


@dataclass(frozen=True)
class ActiveThresholds:
    """What a threshold file holds (DVR values)."""

    path: Path
    threshold_dvr: float | None = None  # a single threshold (pooled, or one class's)
    binding_class: str | None = None  # the class of a single-class file
    classes: dict[str, float] = field(default_factory=dict)  # class -> threshold (combined file)
    missing: dict[str, str] = field(default_factory=dict)  # class -> why it has none


def _positive(value, path: Path, name: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{OPTION}: cannot read a number ({exc})", path=path, field=name) from exc
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"{OPTION}: must be a positive DVR, got {value}", path=path, field=name)
    return value


def read_threshold_file(path: Path) -> ActiveThresholds:
    """Parse a threshold JSON (single or per class) or a one-row TSV."""
    if not path.is_file():
        raise MissingInputError(f"{OPTION} does not exist", path=path)
    try:
        text = path.read_text()
        if path.suffix.lower() == ".json":
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        else:
            header, row = (line.split("\t") for line in text.strip().splitlines()[:2])
            data = dict(zip(header, row, strict=False))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{OPTION}: unreadable ({type(exc).__name__}: {exc})",
                         path=path, field="threshold_dvr") from exc  # fmt: skip
    if "threshold_dvr" in data:
        value = _positive(data["threshold_dvr"], path, "threshold_dvr")
        return ActiveThresholds(path, value, data.get("binding_class"))
    classes = data.get("binding_classes")
    if not isinstance(classes, dict) or not classes:
        raise UsageError(f"{OPTION}: neither 'threshold_dvr' nor 'binding_classes'",
                         path=path, field="threshold_dvr")  # fmt: skip
    found, missing = {}, {}
    for cls, entry in classes.items():
        entry = entry if isinstance(entry, dict) else {}
        if entry.get("threshold_dvr") is None:
            missing[cls] = str(entry.get("reason", "no threshold_dvr"))
        else:
            name = f"binding_classes.{cls}.threshold_dvr"
            found[cls] = _positive(entry["threshold_dvr"], path, name)
    return ActiveThresholds(path, classes=found, missing=missing)


def participant_threshold(
    thresholds: ActiveThresholds, genotype: str | None, *, participant: str, sensitive: bool
) -> tuple[float, str | None]:
    """The threshold (DVR) for one participant and the binding class it belongs to.

    A combined per-class file needs the participant's class; a single-class file must match
    it for genotype-sensitive tracers. Raises :class:`InvalidBIDSError` (exit 16) otherwise.
    """
    path = thresholds.path
    if thresholds.threshold_dvr is not None:
        cls = thresholds.binding_class
        if sensitive and cls is not None and genotype is not None and genotype != cls:
            raise InvalidBIDSError(
                f"{participant} is {genotype} but the threshold was derived from {cls} controls; "
                f"give the {genotype} (or the per-class) threshold file",
                path=path, field="binding_class",
            )  # fmt: skip
        return thresholds.threshold_dvr, cls
    if genotype is None:
        raise InvalidBIDSError(
            f"{participant}: the thresholds are per binding class ({', '.join(thresholds.classes)})"
            " but participants.tsv gives no tspo_genotype (or rs6971) for this participant",
            path=path, field="binding_classes",
        )  # fmt: skip
    if genotype not in thresholds.classes:
        why = thresholds.missing.get(genotype, "the file has no entry for this class")
        raise InvalidBIDSError(
            f"{participant} is {genotype}: no active threshold for this binding class ({why})",
            path=path, field=f"binding_classes.{genotype}.threshold_dvr",
        )  # fmt: skip
    return thresholds.classes[genotype], genotype


def run_threshold(config, subject, run, *, needed: bool = True) -> tuple[float | None, str | None]:
    """The threshold of one PET run (``Config``, ``SubjectData``, ``PetRun``) and its class;
    ``needed`` False (the run's phenotype rule uses no threshold): ``(None, None)``."""
    if not needed:
        return None, None
    if config.active_threshold_file is None:
        return config.active_threshold, None
    info, tracer = subject.participant, run.sidecar.tracer
    return participant_threshold(
        read_threshold_file(config.active_threshold_file),
        None if info is None else info.tspo_genotype,
        participant=f"sub-{subject.label}",
        sensitive=tracer is not None and tracer.genotype_sensitive,
    )


def check_thresholds(config, subjects, *, needed: bool = True) -> None:
    """Resolve every run's threshold before anything is written; all refusals together."""
    if config.active_threshold_file is None or not needed:
        return
    errors = {}
    for subject in subjects:
        for run in subject.pet_runs:
            try:
                run_threshold(config, subject, run)
            except InvalidBIDSError as exc:
                errors.setdefault(str(exc), exc)
    errors = list(errors.values())
    if errors:
        raise errors[0] if len(errors) == 1 else InputProblems(errors)
