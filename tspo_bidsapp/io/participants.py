"""Read ``participants.tsv``: clinical group, age, sex, EDSS and TSPO genotype.

Expected columns (all but ``participant_id`` optional; ``n/a`` or empty means unknown):

- ``participant_id``: ``sub-<label>``
- ``group``: HC, RRMS, SPMS, PPMS or CIS (other values are kept, with a warning)
- ``age``: years; ``sex``: as written (e.g. M/F); ``edss``: Expanded Disability Status Scale, 0-10
- ``tspo_genotype``: HAB, MAB or LAB; or ``rs6971`` with C/C, C/T, T/T, mapped to HAB, MAB, LAB
  (Owen et al. 2012, J Cereb Blood Flow Metab 32:1-5). When both are given they must agree.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from tspo_bidsapp.exitcodes import BidsAppError, InputProblems, InvalidBIDSError
from tspo_bidsapp.tracers import Tracer

KNOWN_GROUPS = ("HC", "RRMS", "SPMS", "PPMS", "CIS")
GENOTYPES = ("HAB", "MAB", "LAB")
RS6971_TO_GENOTYPE = {"CC": "HAB", "CT": "MAB", "TC": "MAB", "TT": "LAB"}
MISSING = {"", "n/a", "na", "nan", "none"}


@dataclass(frozen=True)
class ParticipantInfo:
    """One row of participants.tsv, parsed. ``None`` marks an unknown value."""

    participant_id: str  # label without the "sub-" prefix
    group: str | None = None
    age: float | None = None
    sex: str | None = None
    edss: float | None = None
    tspo_genotype: str | None = None  # HAB, MAB or LAB
    extra: dict[str, str] = field(default_factory=dict)  # every other column, as written

    def as_row(self) -> dict[str, object]:
        return {
            "participant_id": f"sub-{self.participant_id}",
            "group": self.group,
            "age": self.age,
            "sex": self.sex,
            "edss": self.edss,
            "tspo_genotype": self.tspo_genotype,
        }


def genotype_from_rs6971(value: str) -> str | None:
    """Map an rs6971 genotype (C/C, C/T, T/T; separators and case ignored) to HAB/MAB/LAB."""
    key = "".join(ch for ch in value.upper() if ch in "CT")
    if len(key) != 2 or len(key) != len("".join(ch for ch in value if ch.isalnum())):
        return None
    return RS6971_TO_GENOTYPE.get(key)


def _cell(row: dict[str, str | None], name: str) -> str | None:
    value = row.get(name)
    if value is None or value.strip().lower() in MISSING:
        return None
    return value.strip()


def _number(value: str | None, *, path: Path, column: str, label: str, errors: list):
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        errors.append(
            InvalidBIDSError(f"sub-{label}: {value!r} is not a number", path=path, field=column)
        )
        return None
    return number


def parse_participants(
    path: str | Path, selected: Collection[str] | None = None
) -> tuple[dict[str, ParticipantInfo], list[str]]:
    """Parse participants.tsv into ``{label: ParticipantInfo}`` and a list of warnings.

    Raises :class:`~tspo_bidsapp.exitcodes.InputProblems` naming the file, column and participant
    of every unreadable value. With ``selected`` (labels without ``sub-``), bad values in the
    rows of other participants are only warnings: they do not block the selected ones.
    """
    path = Path(path)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
        columns = list(rows[0].keys()) if rows else []
    if rows and "participant_id" not in columns:
        raise InputProblems(
            [
                InvalidBIDSError(
                    "the participant_id column is missing", path=path, field="participant_id"
                )
            ]
        )
    errors: list[BidsAppError] = []
    warnings: list[str] = []
    out: dict[str, ParticipantInfo] = {}
    known = {"participant_id", "group", "age", "sex", "edss", "tspo_genotype", "rs6971"}
    for row in rows:
        row_errors: list[BidsAppError] = []
        pid = _cell(row, "participant_id")
        if pid is None or not pid.startswith("sub-"):
            errors.append(
                InvalidBIDSError(
                    f"{pid!r} is not of the form sub-<label>", path=path, field="participant_id"
                )
            )
            continue
        label = pid[4:]
        group = _cell(row, "group")
        if group is not None and group.upper() in KNOWN_GROUPS:
            group = group.upper()
        elif group is not None:
            warnings.append(
                f"{path}: column 'group': sub-{label} has {group!r}, not one of "
                f"{', '.join(KNOWN_GROUPS)}"
            )
        age = _number(_cell(row, "age"), path=path, column="age", label=label, errors=row_errors)
        edss = _number(_cell(row, "edss"), path=path, column="edss", label=label, errors=row_errors)
        if edss is not None and not 0.0 <= edss <= 10.0:
            row_errors.append(
                InvalidBIDSError(
                    f"sub-{label}: EDSS {edss:g} is outside 0-10", path=path, field="edss"
                )
            )
        genotype = _cell(row, "tspo_genotype")
        if genotype is not None:
            if genotype.upper() not in GENOTYPES:
                row_errors.append(
                    InvalidBIDSError(
                        f"sub-{label}: {genotype!r} is not one of HAB, MAB, LAB",
                        path=path,
                        field="tspo_genotype",
                    )
                )
                genotype = None
            else:
                genotype = genotype.upper()
        snp = _cell(row, "rs6971")
        if snp is not None:
            mapped = genotype_from_rs6971(snp)
            if mapped is None:
                row_errors.append(
                    InvalidBIDSError(
                        f"sub-{label}: {snp!r} is not one of C/C, C/T, T/T",
                        path=path,
                        field="rs6971",
                    )
                )
            elif genotype is not None and genotype != mapped:
                row_errors.append(
                    InvalidBIDSError(
                        f"sub-{label}: rs6971 {snp} means {mapped} but tspo_genotype says {genotype}",
                        path=path,
                        field="rs6971",
                    )
                )
            else:
                genotype = mapped
        extra = {k: v for k, v in row.items() if k and k not in known and v is not None}
        out[label] = ParticipantInfo(label, group, age, _cell(row, "sex"), edss, genotype, extra)
        if selected is not None and label not in selected:
            warnings += [f"{e} (sub-{label} is not selected: ignored)" for e in row_errors]
        else:
            errors += row_errors
    if errors:
        raise InputProblems(errors)
    return out, warnings


def genotype_warnings(info: ParticipantInfo | None, tracer: Tracer | None) -> list[str]:
    """Flags for a participant scanned with ``tracer``: LAB status and missing genotype.

    Only second-generation (rs6971-sensitive) tracers raise flags; LAB participants show little
    specific binding and are usually excluded from group statistics.
    """
    if tracer is None or not tracer.genotype_sensitive:
        return []
    label = "?" if info is None else info.participant_id
    if info is None or info.tspo_genotype is None:
        return [
            f"sub-{label}: TSPO genotype unknown for the second-generation tracer {tracer.name}; "
            "binding estimates cannot be interpreted without it (add tspo_genotype or rs6971 "
            "to participants.tsv)"
        ]
    if info.tspo_genotype == "LAB":
        return [
            f"sub-{label}: low-affinity binder (LAB) scanned with {tracer.name}; specific binding "
            "is expected to be negligible, flagged for exclusion from group statistics"
        ]
    return []
