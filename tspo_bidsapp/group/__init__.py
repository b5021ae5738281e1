"""Group level: study tables, statistics, controls-derived parameters, voxel-wise maps.

Runs only on what the participant level wrote (never recomputes participant work) and reports
every participant whose outputs are missing. Options are read from the run configuration
(``getattr(config, name, default)``): ``min_controls`` (3), ``active_k`` (2.0),
``group_alpha`` (0.05), ``min_group_size`` (3), ``lesion_match_mm`` (5.0),
``group_voxelwise`` (False), ``group_smoothing_fwhm`` (None), ``group_permutations`` (5000),
``test_retest_percent`` (the tracer's literature value). Treatment arms are read from
``sub-<label>_sessions.tsv`` (column ``arm``). See ``docs/group.md``.
"""

from __future__ import annotations

import json
import logging

from tspo_bidsapp.config import Config, write_text_atomic
from tspo_bidsapp.exitcodes import MissingInputError, NothingSelectedError
from tspo_bidsapp.group.analysis import GroupOptions, analyse
from tspo_bidsapp.group.collect import collect
from tspo_bidsapp.group.monitoring import read_arms
from tspo_bidsapp.group.status import (
    COLUMN_DESCRIPTIONS,
    ParticipantStatus,
    participant_status,
    status_table,
)
from tspo_bidsapp.io.participants import parse_participants

LOGGER = logging.getLogger("tspo_bidsapp.group")
__all__ = ["GroupOptions", "ParticipantStatus", "analyse", "participant_status", "run_group"]


def run_group(config: Config) -> int:
    """Summarise participant-level outputs into OUTPUT_DIR/group/; return the exit code."""
    if not (config.output_dir / "dataset_description.json").is_file():
        raise MissingInputError(
            "no participant-level outputs here (dataset_description.json is missing); "
            "run the participant level first",
            path=config.output_dir,
        )
    statuses = participant_status(config)
    if not any(s.expected for s in statuses):
        raise NothingSelectedError("no PET run in the input matches the selection")
    tsv = config.bids_dir / "participants.tsv"
    participants = parse_participants(tsv)[0] if tsv.is_file() else {}
    if not any(len(s.expected) > len(s.missing) for s in statuses):
        raise MissingInputError(
            "no participant has participant-level outputs; run the participant level first",
            path=config.output_dir,
        )
    group_dir = config.output_dir / "group"
    group_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(group_dir / "participants.tsv", status_table(statuses, participants))
    write_text_atomic(
        group_dir / "participants.json", json.dumps(COLUMN_DESCRIPTIONS, indent=2) + "\n"
    )
    done = sum(s.status == "complete" for s in statuses)
    LOGGER.info(
        "group: %d of %d participant(s) complete; table: %s", done, len(statuses), group_dir
    )
    labels = {s.label for s in statuses}
    collection = collect(config.output_dir, labels)
    if collection.regional.empty:
        LOGGER.warning(
            "group: no regional kinetic tables (*_kinpar.tsv) in %s; study tables and "
            "statistics skipped",
            config.output_dir,
        )
        return 0
    analyse(
        collection,
        participants,
        group_dir,
        GroupOptions.from_config(config),
        arms=read_arms(config.bids_dir, labels),
    )
    return 0
