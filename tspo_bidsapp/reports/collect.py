"""Find one participant's derivatives, logs and crash files in OUTPUT_DIR.

The report is built from what the run left on disk (BIDS-Derivatives names, see
``docs/outputs.md``), never from nipype internals, so it can be rebuilt at any time.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from tspo_bidsapp.io import derivatives as D

# Stage of a crashed node, from words in its name (first match wins).
STAGE_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("lesions", ("phenotype", "lesion_kin", "lesions_kin")),
    ("reference", ("svca", "reference", "ref_")),
    ("kinetics", ("kinetic", "srtm", "logan", "mrtm", "suvr", "maps", "quant", "fit_")),
    ("coregistration", ("coreg", "petref_to", "t1w_reg")),
    ("motion", ("hmc", "motion", "mcflirt", "realign")),
    ("anatomy", ("samseg", "anat", "tspoms", "brain_mask", "seg")),
)


@dataclass
class PetRunFiles:
    """The derivatives of one PET run (``prefix``: its source entities, e.g. sub-01_trc-PBR28)."""

    prefix: str
    folder: Path
    files: dict[str, Path] = field(default_factory=dict)

    def find(self, pattern: str) -> list[Path]:
        """Files of this run whose name (after the prefix) matches the glob ``pattern``."""
        return sorted(self.folder.glob(f"{self.prefix}_{pattern}"))

    def first(self, pattern: str) -> Path | None:
        found = self.find(pattern)
        return found[0] if found else None


@dataclass
class Crash:
    """A nipype crash file: the node, its stage and the last line of the error."""

    path: Path
    node: str
    stage: str
    error: str


def sidecar(path: Path | None) -> dict:
    """The JSON sidecar of a derivative (``{}`` when absent or unreadable)."""
    if path is None:
        return {}
    name = re.sub(r"(\.nii\.gz|\.[a-zA-Z0-9]+)$", "", path.name) + ".json"
    try:
        return json.loads((path.parent / name).read_text())
    except (OSError, ValueError):
        return {}


def subject_folders(output_dir: Path, subject: str) -> list[Path]:
    """``sub-X`` and its ``ses-*`` folders (those holding datatype folders)."""
    root = output_dir / f"sub-{subject}"
    return [root] + sorted(p for p in root.glob("ses-*") if p.is_dir())


def pet_runs(output_dir: Path, subject: str) -> list[PetRunFiles]:
    """One entry per PET run found among the ``pet/`` derivatives of ``subject``."""
    runs: dict[str, PetRunFiles] = {}
    entity = re.compile(r"^(sub|ses|task|acq|ce|trc|rec|run)-[a-zA-Z0-9]+$")
    for folder in subject_folders(output_dir, subject):
        pet = folder / "pet"
        for path in sorted(pet.glob(f"sub-{subject}_*")) if pet.is_dir() else []:
            parts = path.name.split("_")
            keep = []
            for part in parts:
                if not entity.match(part):
                    break
                keep.append(part)
            prefix = "_".join(keep)
            runs.setdefault(prefix, PetRunFiles(prefix, pet))
    return list(runs.values())


def anat_file(output_dir: Path, subject: str, pattern: str) -> Path | None:
    """First ``anat/`` derivative of ``subject`` matching ``*<pattern>``."""
    for folder in subject_folders(output_dir, subject):
        found = sorted((folder / "anat").glob(f"sub-{subject}_*{pattern}"))
        if found:
            return found[0]
    return None


def _stage_of(node: str) -> str:
    low = node.lower()
    for stage, words in STAGE_KEYWORDS:
        if any(w in low for w in words):
            return stage
    return "summary"


def crash_files(output_dir: Path, subject: str) -> list[Crash]:
    """Crash reports under ``OUTPUT_DIR/logs`` that belong to ``subject`` (or to no subject)."""
    crashes = []
    for path in sorted((output_dir / "logs").glob("crash-*/*.txt")) + sorted(
        (output_dir / "logs").glob("crash-*.txt")
    ):
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        match = re.search(r"^Node: *(\S+)", text, re.MULTILINE)
        node = match.group(1) if match else path.stem
        if re.search(r"sub_[a-zA-Z0-9]+_wf", node) and f"sub_{subject}_wf" not in node:
            continue
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        errors = [ln for ln in lines if re.match(r"^[A-Za-z_.]*(Error|Exception)\b", ln)]
        error = errors[-1] if errors else (lines[-1] if lines else "unknown error")
        crashes.append(Crash(path, node, _stage_of(node), error[:500]))
    return crashes


def latest_config(output_dir: Path, subject: str | None = None) -> dict:
    """The most recent participant-level ``logs/config-*.json`` that processed ``subject``
    (all participants when its label list is empty); ``{}`` if none. Group-level runs save
    their settings too and are skipped: they do not describe how a participant was processed."""
    configs = sorted((output_dir / "logs").glob(D.CONFIG_GLOB), key=lambda p: p.stat().st_mtime)
    for path in reversed(configs):
        try:
            cfg = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        labels = cfg.get("participant_label") or []
        if cfg.get("analysis_level", "participant") == "participant" and (
            subject is None or not labels or subject in labels
        ):
            return cfg
    return {}


def raw_inputs(bids_dir: Path | None, subject: str) -> list[str]:
    """Imaging files of ``subject`` in the input dataset, relative to it."""
    if bids_dir is None or not (bids_dir / f"sub-{subject}").is_dir():
        return []
    root = bids_dir / f"sub-{subject}"
    return sorted(str(p.relative_to(bids_dir)) for p in root.rglob("*.nii*"))


def participant_row(bids_dir: Path | None, subject: str) -> dict[str, str]:
    """The participant's row of ``participants.tsv`` (``{}`` when there is none)."""
    if bids_dir is None:
        return {}
    try:
        lines = (bids_dir / "participants.tsv").read_text().splitlines()
    except OSError:
        return {}
    header = lines[0].split("\t") if lines else []
    for line in lines[1:]:
        values = line.split("\t")
        row = dict(zip(header, values, strict=False))
        if row.get("participant_id") in (f"sub-{subject}", subject):
            return row
    return {}
