"""Rebuild participant reports from an existing output folder.

``python -m tspo_bidsapp.reports OUTPUT_DIR [--participant-label 01 02]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tspo_bidsapp.reports.assemble import build_participant_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tspo_bidsapp.reports", description=__doc__)
    parser.add_argument("output_dir", type=Path, help="OUTPUT_DIR of a participant-level run")
    parser.add_argument("--participant-label", "--participant_label", nargs="+", default=None,
                        help="labels (with or without 'sub-'); default: every sub-* folder")  # fmt: skip
    args = parser.parse_args(argv)
    if not args.output_dir.is_dir():
        print(f"error: {args.output_dir} is not a folder", file=sys.stderr)
        return 2
    labels = args.participant_label or sorted(
        p.name[4:] for p in args.output_dir.glob("sub-*") if p.is_dir()
    )
    if not labels:
        print(f"error: no sub-* folder in {args.output_dir}", file=sys.stderr)
        return 2
    for label in labels:
        print(build_participant_report(args.output_dir, label))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
