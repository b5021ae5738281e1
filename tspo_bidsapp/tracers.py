"""What the pipeline knows about TSPO tracers and their radionuclides.

Second-generation TSPO ligands bind with affinity that depends on the rs6971
polymorphism (Owen et al. 2012, J Cereb Blood Flow Metab 32:1-5): low-affinity
binders (LAB, T/T) show little specific signal and are usually excluded from
group statistics. [11C]PK11195 is insensitive to the polymorphism.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Half-lives in minutes (NNDC / Laboratoire National Henri Becquerel tables).
HALF_LIFE_MIN: dict[str, float] = {
    "C11": 20.364,
    "F18": 109.77,
    "O15": 2.041,
    "N13": 9.965,
    "Ga68": 67.71,
    "Cu64": 762.0,
    "Zr89": 4704.0,
}


@dataclass(frozen=True)
class Tracer:
    name: str  # canonical name, as used in the ``trc-`` entity
    radionuclide: str  # key into HALF_LIFE_MIN
    generation: int  # 1 = genotype-insensitive, 2 = rs6971 matters
    aliases: tuple[str, ...] = ()

    @property
    def genotype_sensitive(self) -> bool:
        return self.generation >= 2

    @property
    def half_life_min(self) -> float:
        return HALF_LIFE_MIN[self.radionuclide]


TRACERS: tuple[Tracer, ...] = (
    Tracer("PK11195", "C11", 1, ("RPK11195", "R-PK11195", "11C-PK11195")),
    Tracer("PBR28", "C11", 2, ("11C-PBR28",)),
    Tracer("DPA714", "F18", 2, ("DPA-714", "18F-DPA714", "18F-DPA-714")),
    Tracer("PBR06", "F18", 2, ("18F-PBR06", "FEPPA-PBR06")),
    Tracer("GE180", "F18", 2, ("GE-180", "flutriciclamide", "18F-GE180")),
    Tracer("ER176", "C11", 2, ("11C-ER176",)),
    Tracer("DPA713", "C11", 2, ("DPA-713", "11C-DPA713", "11C-DPA-713")),
)


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _strip_nuclide(key: str) -> str:
    return re.sub(r"^(11c|18f|c11|f18)", "", key)


def lookup_tracer(name: str | None) -> Tracer | None:
    """Find a tracer by its sidecar ``TracerName`` or ``trc-`` label (None if unknown)."""
    if not name:
        return None
    key = _strip_nuclide(_normalise(name))
    for tracer in TRACERS:
        names = (tracer.name, *tracer.aliases)
        if any(_strip_nuclide(_normalise(n)) == key for n in names):
            return tracer
    return None


def normalise_radionuclide(label: str | None) -> str | None:
    """Map 'C11', '11C', 'carbon-11', 'F-18' ... to a key of HALF_LIFE_MIN."""
    if not label:
        return None
    key = _normalise(label)
    for nuclide in HALF_LIFE_MIN:
        symbol = re.match(r"[A-Za-z]+", nuclide).group(0).lower()
        mass = re.search(r"\d+", nuclide).group(0)
        if key in {symbol + mass, mass + symbol}:
            return nuclide
    words = {"carbon": "c", "fluorine": "f", "oxygen": "o", "nitrogen": "n", "gallium": "ga"}
    for word, symbol in words.items():
        if key.startswith(word):
            return normalise_radionuclide(symbol + key[len(word) :])
    return None
