"""Per-participant HTML reports built from the files of an output folder."""

from tspo_bidsapp.reports.assemble import WarningCollector, build_participant_report

__all__ = ["WarningCollector", "build_participant_report"]
