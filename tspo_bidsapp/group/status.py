"""Which participants (PET runs) have participant-level outputs, and which are missing."""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from pathlib import Path

from tspo_bidsapp.config import Config
from tspo_bidsapp.exitcodes import NothingSelectedError
from tspo_bidsapp.interfaces.bids import derivative_path
from tspo_bidsapp.io.bids_input import NIFTI, build_layout
from tspo_bidsapp.io.participants import ParticipantInfo
from tspo_bidsapp.workflows.base import RUN_SUMMARY_ENTITIES

LOGGER = logging.getLogger("tspo_bidsapp.group")
COLUMNS = ("participant_id", "group", "age", "sex", "edss", "tspo_genotype",
           "pet_runs", "processed_runs", "status", "missing_runs")  # fmt: skip
COLUMN_DESCRIPTIONS = {
    "pet_runs": "PET runs in the input dataset (after --session-label/--tracer-label)",
    "processed_runs": "PET runs with participant-level outputs in OUTPUT_DIR",
    "status": "complete: every run processed; partial: some; missing: none",
    "missing_runs": "comma-separated file names of the PET runs without outputs",
}


@dataclass(frozen=True)
class ParticipantStatus:
    label: str
    expected: tuple[Path, ...]  # PET inputs
    missing: tuple[Path, ...]  # PET inputs without participant-level outputs

    @property
    def status(self) -> str:
        if not self.missing:
            return "complete"
        return "missing" if len(self.missing) == len(self.expected) else "partial"


def participant_status(config: Config) -> list[ParticipantStatus]:
    """Expected PET runs of each selected participant and which have outputs."""
    layout = build_layout(config.bids_dir, validate=not config.skip_bids_validation)
    available = sorted(layout.get_subjects())
    unknown = [p for p in config.participant_label if p not in available]
    if unknown:
        raise NothingSelectedError(
            f"participant label(s) {', '.join(unknown)} not found in {config.bids_dir}"
        )
    out = []
    for label in config.participant_label or available:
        query = {"subject": label, "datatype": "pet", "suffix": "pet", "extension": NIFTI}
        if config.session_label:
            query["session"] = list(config.session_label)
        if config.tracer_label:
            query["tracer"] = list(config.tracer_label)
        pets = tuple(sorted(Path(f) for f in layout.get(return_type="file", **query)))
        missing = tuple(
            p
            for p in pets
            if not (config.output_dir / derivative_path(p, **RUN_SUMMARY_ENTITIES)).is_file()
        )
        out.append(ParticipantStatus(label, pets, missing))
    return out


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def status_table(
    statuses: list[ParticipantStatus], participants: dict[str, ParticipantInfo]
) -> str:
    """``group/participants.tsv`` text; logs a warning for every participant with missing runs."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    writer.writerow(COLUMNS)
    for status in statuses:
        info = participants.get(status.label)
        row = info.as_row() if info else {"participant_id": f"sub-{status.label}"}
        row |= {
            "pet_runs": len(status.expected),
            "processed_runs": len(status.expected) - len(status.missing),
            "status": status.status if status.expected else "no PET",
            "missing_runs": ",".join(p.name for p in status.missing) or None,
        }
        writer.writerow([_fmt(row.get(c)) for c in COLUMNS])
        if status.missing:
            LOGGER.warning(
                "sub-%s: %d of %d PET run(s) have no participant-level outputs: %s",
                status.label,
                len(status.missing),
                len(status.expected),
                ", ".join(p.name for p in status.missing),
            )
    return buffer.getvalue()
