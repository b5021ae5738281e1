"""Find the blood data of a PET run by its BIDS entities.

A blood file belongs to a PET run when it sits in the same folder, its subject matches, and
every other entity it names (``ses``, ``task``, ``trc``, ``rec``, ``run``) equals the PET's; an
entity it leaves out matches any value (BIDS inheritance). When several files of one recording
match, the one naming the most entities wins; a tie is an error.
"""

from __future__ import annotations

import re
from pathlib import Path

from tspo_bidsapp.blood.units import BloodDataError

# Entities that tie a blood recording to a PET run.
MATCH_ENTITIES = ("sub", "ses", "task", "trc", "rec", "run")
_ENTITY = re.compile(r"(?:^|_)([a-zA-Z0-9]+)-([a-zA-Z0-9]+)")


def entities_of(path: str | Path) -> dict[str, str]:
    """The ``key-value`` entities of a BIDS file name (suffix and extension ignored)."""
    return dict(_ENTITY.findall(Path(path).name.split(".")[0]))


def _matches(pet: dict[str, str], other: dict[str, str]) -> int | None:
    """Entities shared with the PET (a score), or None when one contradicts it."""
    if other.get("sub") != pet.get("sub"):
        return None
    score = 0
    for key in MATCH_ENTITIES:
        if key in other:
            if other[key] != pet.get(key):
                return None
            score += 1
    return score


def _best_per_label(pet_file: Path, candidates: list[Path], label_of) -> dict[str, Path]:
    pet = entities_of(pet_file)
    best: dict[str, tuple[int, list[Path]]] = {}
    for path in candidates:
        score = _matches(pet, entities_of(path))
        if score is None:
            continue
        label = label_of(path)
        if label not in best or score > best[label][0]:
            best[label] = (score, [path])
        elif score == best[label][0]:
            best[label][1].append(path)
    for label, (_, paths) in best.items():
        if len(paths) > 1:
            names = ", ".join(p.name for p in paths)
            raise BloodDataError(f"several blood files fit this PET run equally: {names}",
                                 path=pet_file, field=label)  # fmt: skip
    return {label: paths[0] for label, (_, paths) in sorted(best.items())}


def find_blood_recordings(pet_file: str | Path) -> dict[str, Path]:
    """``{recording label: *_blood.tsv}`` for a PET run (e.g. ``manual``, ``autosampler``)."""
    pet_file = Path(pet_file)
    candidates = sorted(pet_file.parent.glob("*_recording-*_blood.tsv"))
    return _best_per_label(pet_file, candidates, lambda p: entities_of(p)["recording"])


def find_input_function(pet_file: str | Path, search_dir: str | Path) -> Path | None:
    """A processed ``*_inputfunction.tsv`` for a PET run anywhere below ``search_dir``."""
    pet_file = Path(pet_file)
    candidates = sorted(Path(search_dir).rglob("*_inputfunction.tsv"))
    found = _best_per_label(pet_file, candidates, lambda p: "inputfunction")
    return found.get("inputfunction")
