"""Find and read what the participant level wrote (never recompute it).

File names are parsed into BIDS entities (``sub``, ``ses``, ``trc``, ``rec``, ``run``, ``space``,
``seg``, ``model``, ``ref``, ``meas``, ``desc``), suffix and extension, the way pybids does for
derivatives. One *run* is identified by its source entities (:data:`RUN_KEYS`); regional and
lesion tables add ``model`` and ``ref``.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tspo_bidsapp.exitcodes import InvalidBIDSError
from tspo_bidsapp.io import derivatives as D
from tspo_bidsapp.quant.phenotypes import phenotype_summary
from tspo_bidsapp.quant.quality import is_flagged

LOGGER = logging.getLogger("tspo_bidsapp.group")
RUN_KEYS = ("participant_id", "session", "tracer", "rec", "run")
FIT_KEYS = (*RUN_KEYS, "model", "ref")
ENTITY_KEYS = {"sub": "participant_id", "ses": "session", "trc": "tracer", "rec": "rec",
               "run": "run"}  # fmt: skip
MEASURES = ("DVR", "BPND", "SUVR", "R1", "VT", "SUV")  # VT: plasma-input; SUV: static PET
#: Regions averaged (volume-weighted) into the derived ``deep-GM`` region.
DEEP_GM = ("thalamus", "caudate", "putamen", "pallidum")
_NAME = re.compile(r"^(?P<stem>.+)_(?P<suffix>[a-zA-Z0-9]+)(?P<ext>\.nii\.gz|\.tsv\.gz|\.\w+)$")


def parse_name(name: str) -> dict[str, str] | None:
    """BIDS entities of a file name plus ``suffix`` and ``extension``; None if not BIDS-like."""
    match = _NAME.match(name)
    if not match:
        return None
    out = {}
    for part in match.group("stem").split("_"):
        if "-" not in part:
            return None
        key, value = part.split("-", 1)
        out[key] = value
    if "sub" not in out:
        return None
    out["suffix"], out["extension"] = match.group("suffix"), match.group("ext")
    return out


def run_key(entities: dict[str, str]) -> dict[str, str]:
    """The run identity (participant_id ``sub-<label>``, session, tracer, rec, run; '' if absent)."""
    out = {col: entities.get(ent, "") for ent, col in ENTITY_KEYS.items()}
    out["participant_id"] = f"sub-{entities['sub']}"
    return out


@dataclass
class Collection:
    """Everything the group level read, as tables and file indexes."""

    regional: pd.DataFrame  # one row per run/model/ref/region (kinpar rows + keys)
    lesions: pd.DataFrame  # one row per run/model/ref/lesion
    phenotypes: pd.DataFrame  # one row per run/model/ref: counts, proportions, predictor
    tacs: dict[tuple, Path] = field(default_factory=dict)  # run key -> region TAC table
    maps: dict[tuple, Path] = field(default_factory=dict)  # (*fit key, meas) -> T1w-space map
    anat: dict[tuple, dict[str, Path]] = field(default_factory=dict)  # (sub, ses) -> files

    def anat_for(self, participant_id: str, session: str) -> dict[str, Path]:
        """Anatomy of a run: the session's own, else the participant's session-less one."""
        return self.anat.get((participant_id, session)) or self.anat.get((participant_id, ""), {})


def _read_tsv(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InvalidBIDSError(f"unreadable table ({exc})", path=path) from exc
    for column in required:
        if column not in table.columns:
            raise InvalidBIDSError(
                f"participant-level table has no '{column}' column", path=path, field=column
            )
    return table


def _key_tuple(entities: dict[str, str], *extra: str) -> tuple:
    key = run_key(entities)
    return (*(key[k] for k in RUN_KEYS), *extra)


def collect(output_dir: Path, participants: set[str] | None = None) -> Collection:
    """Index ``OUTPUT_DIR/sub-*`` and read every regional and lesion ``_kinpar.tsv``.

    ``participants`` (labels without ``sub-``) restricts the search.
    """
    output_dir = Path(output_dir)
    regional, lesions, phenos = [], [], []
    tacs, maps, anat = {}, {}, {}
    for path in sorted(output_dir.glob("sub-*/**/*")):
        if path.parent.name not in ("pet", "anat") or not path.is_file():
            continue
        ent = parse_name(path.name)
        if ent is None or (participants and ent["sub"] not in participants):
            continue
        suffix, ext = ent["suffix"], ent["extension"]
        if path.parent.name == "anat":
            key = (f"sub-{ent['sub']}", ent.get("ses", ""))
            slot = _anat_slot(ent)
            if slot:
                anat.setdefault(key, {})[slot] = path
            continue
        if suffix == D.KINPAR.suffix and ext == D.KINPAR.extension:
            fit = {"model": ent.get("model", ""), "ref": ent.get("ref", "")}
            if not fit["model"]:
                raise InvalidBIDSError("kinetic table without a model- entity", path=path)
            keys = run_key(ent) | fit
            if D.LESION_KINPAR.matches(ent):
                table = _read_tsv(path, ("lesion_id", "phenotype"))
                lesions.append(table.assign(**keys))
                summary = phenotype_summary(table)
                phenos.append(keys | summary | {"source": str(path)})
            elif D.KINPAR.matches(ent) or D.SUV_KINPAR.matches(ent):  # SUV: static runs
                table = _read_tsv(path, ("region",))
                regional.append(table.drop(columns=["model"], errors="ignore").assign(**keys))
        elif D.REGION_TACS.matches(ent):
            tacs[_key_tuple(ent)] = path
        elif D.MIMAP.matches(ent) and ent["space"] == "T1w":
            maps[_key_tuple(ent, ent["model"], ent.get("ref", ""), ent["meas"])] = path
    return Collection(
        regional=add_deep_gm(_concat(regional)),
        lesions=_concat(lesions),
        phenotypes=pd.DataFrame(phenos),
        tacs=tacs,
        maps=maps,
        anat=anat,
    )


def _anat_slot(ent: dict[str, str]) -> str | None:
    slots = (("t1w", D.T1W_PREPROC), ("brain_mask", D.BRAIN_MASK),
             ("tspoms_dseg", D.TSPOMS_DSEG), ("tspoms_tsv", D.TSPOMS_TSV),
             ("lesion_ids", D.LESION_DSEG), ("lesion_morph", D.LESION_MORPH))  # fmt: skip
    return next((slot for slot, spec in slots if spec.matches(ent)), None)


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def add_deep_gm(regional: pd.DataFrame) -> pd.DataFrame:
    """Append a ``deep-GM`` row per fit: volume-weighted mean of :data:`DEEP_GM` regions.

    For DVR/BPND/SUVR/R1 this equals the value of the union for a linear measure (SUVR, Logan
    DVR) and is close to it for SRTM; it is labelled as derived (``derived`` column True).
    """
    if regional.empty or "volume_ml" not in regional.columns:
        return regional
    regional = regional.assign(derived=False)
    sel = regional[regional["region"].isin(DEEP_GM)]
    if sel.empty:
        return regional
    rows = []
    for key, part in sel.groupby(list(FIT_KEYS), sort=False):
        vol = part["volume_ml"].to_numpy(float)
        if len(part) < len(DEEP_GM) or not np.all(np.isfinite(vol)) or vol.sum() <= 0:
            continue
        row = dict(zip(FIT_KEYS, key, strict=True))
        row.update(region="deep-GM", volume_ml=float(vol.sum()), derived=True)
        if "fit_quality" in part.columns:
            bad = part.loc[is_flagged(part["fit_quality"]), "region"]
            row["fit_quality"] = "ok" if bad.empty else "from-flagged:" + "+".join(bad)
        for m in MEASURES:
            if m in part.columns:
                vals = part[m].to_numpy(float)
                row[m] = float(vals @ vol / vol.sum()) if np.all(np.isfinite(vals)) else np.nan
        for col in ("tspo_genotype",):
            if col in part.columns:
                row[col] = part[col].iloc[0]
        rows.append(row)
    return pd.concat([regional, pd.DataFrame(rows)], ignore_index=True) if rows else regional


def read_json(path: Path) -> dict:
    """A JSON sidecar; ``{}`` when absent, an error naming the file when unreadable."""
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InvalidBIDSError(f"unreadable JSON ({exc})", path=path) from exc
