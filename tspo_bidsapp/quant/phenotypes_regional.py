"""Lesion phenotypes from per-lesion partial-volume-corrected regional TACs.

With lesion-aware correction regions (:func:`~tspo_bidsapp.quant.pvc_voxel.pvc_regions`:
every lesion core and every 2-mm lesion rim a region of its own) the geometric transfer
matrix (Rousset et al. 1998, J Nucl Med 39:904-911) gives each lesion a corrected core TAC and
a corrected rim TAC. Their DVR is fitted with the model, corrected reference TAC and ``k2'``
rule of the regional fits (:func:`~tspo_bidsapp.quant.regional.fit_regions`; ``k2'`` from the
segmentation's regions by :func:`~tspo_bidsapp.kinetics.registry.reliable_srtm_k2prime`), as is
the DVR of the comparison shell (the corrected ``perilesional-WM-3-6mm`` TAC, pooled over
lesions). The phenotype rule is then applied to these values
(:func:`~tspo_bidsapp.quant.phenotypes.phenotype_table`). One fitted TAC per core and rim
averages away the voxel noise that a voxel-wise corrected map amplifies in small rims.

Columns of the per-lesion TAC table: ``lesion-<id>-core`` and ``lesion-<id>-rim``; times and
values as the regional TAC tables (:mod:`tspo_bidsapp.quant.tacs`).
"""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pandas as pd

from tspo_bidsapp.io.timing import FrameTiming
from tspo_bidsapp.kinetics.registry import get_model, results_table
from tspo_bidsapp.quant.phenotypes import PhenotypeRule, phenotype_table
from tspo_bidsapp.quant.regional import ModelSettings, fit_regions

SHELL_REGION = "perilesional-WM-3-6mm"  #: TSPO-MS region the lesion rule compares with
PARTS = ("core", "rim")
_COLUMN = re.compile(r"^lesion-(\d+)-(core|rim)$")


def lesion_column(lesion_id: int, part: str) -> str:
    """Column name of a lesion's core or rim TAC: ``lesion-<id>-<part>``."""
    return f"lesion-{int(lesion_id)}-{part}"


def lesion_tac_columns(parts: dict[str, tuple[np.ndarray, np.ndarray]]):
    """``({column: TAC}, {column: voxels})`` of lesions 1..N from ``{part: (tacs, voxels)}``
    (:func:`~tspo_bidsapp.quant.pvc_voxel.lesion_tacs`); parts without voxels are left out."""
    tacs, voxels = {}, {}
    for part in PARTS:
        rows, counts = parts[part]
        for k, (tac, n) in enumerate(zip(rows, counts, strict=True), start=1):
            if n > 0:
                tacs[lesion_column(k, part)] = np.asarray(tac, float)
                voxels[lesion_column(k, part)] = int(n)
    return tacs, voxels


def split_lesion_columns(names) -> tuple[int, dict[str, dict[int, str]]]:
    """Number of lesions (largest id) and ``{part: {id: column}}`` of the lesion columns."""
    out: dict[str, dict[int, str]] = {part: {} for part in PARTS}
    for name in names:
        match = _COLUMN.match(str(name))
        if match:
            out[match.group(2)][int(match.group(1))] = str(name)
    n = max([0, *out["core"], *out["rim"]])
    return n, out


def dvr_of_tacs(
    timing: FrameTiming,
    ref_tac: np.ndarray,
    tacs: dict[str, np.ndarray],
    region_tacs: dict[str, np.ndarray],
    model: str,
    settings: ModelSettings,
) -> tuple[dict[str, float], dict]:
    """DVR (SUVR for the SUVR model) of every TAC of ``tacs`` by ``model``; ``(values, info)``.

    A model that fixes ``k2'`` (SRTM2, MRTM2) takes the user's value, else the registry's rule
    applied to ``region_tacs`` (the segmentation's regions, as the regional fits), never to the
    lesion TACs themselves.
    """
    spec = get_model(model)
    settings = replace(settings, models=(spec.name,))
    info: dict = {}
    if spec.needs_k2prime and settings.k2prime is None:
        _, info = fit_regions(timing, ref_tac, region_tacs, settings)
        settings = replace(settings, k2prime=info["k2prime"])
    results, more = fit_regions(timing, ref_tac, tacs, settings)
    info = {**more, **info, "model": spec.name}
    table = results_table(results[spec.name])
    column = "SUVR" if spec.name == "SUVR" else "DVR"
    return dict(zip(table["region"], table[column].astype(float), strict=True)), info


def regional_lesion_phenotypes(
    dvr: dict[str, float],
    voxels: dict[str, int],
    voxel_ml: float,
    shell: tuple[float, int],
    rule: PhenotypeRule,
) -> pd.DataFrame:
    """One row per lesion (:data:`~tspo_bidsapp.quant.phenotypes.LESION_COLUMNS`) from the DVR
    of its corrected core and rim TACs (``dvr``/``voxels`` keyed by :func:`lesion_column`),
    the shell's ``(DVR, voxels)`` and the voxel volume (mL). ``rule.values`` must be
    "regional"; lesions with no core column are left out, rims without one count 0 voxels.
    """
    if rule.values != "regional":
        raise ValueError("regional lesion phenotypes need a rule with values='regional'")
    n, columns = split_lesion_columns(dvr)
    ids = np.arange(1, n + 1)

    def part(name):
        col = [columns[name].get(int(k)) for k in ids]
        counts = np.array([voxels.get(c, 0) if c else 0 for c in col], float)
        values = np.array([dvr[c] if c else np.nan for c in col], float)
        return counts, values, np.full(n, np.nan)

    core, rim = part("core"), part("rim")
    table = phenotype_table(core[0] * voxel_ml, core, rim, (shell[1], shell[0]), rule)
    return table[core[0] > 0].reset_index(drop=True)
