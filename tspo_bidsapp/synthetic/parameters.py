"""TSPO kinetic parameters (SRTM: R1, k2, BPND) of every simulated tissue class.

BPND is relative to cerebellar grey matter (the reference region, BPND = 0 by definition),
for high-affinity binders (HAB) of [11C]PBR28; values follow the ranges reported for MS:
- grey matter and NAWM: HC NAWM 0.05-0.15, about +30-50 % in SPMS (Rissanen et al. 2014,
  J Nucl Med 55:939-944; Herranz et al. 2016, Ann Neurol 80:776-790);
- thalamus: higher than cortex and increased in MS (Datta et al. 2017, NeuroImage Clin
  16:435-443; Politis et al. 2012, Neurology 79:523-530);
- lesions: rim-active core ~0.05 / rim ~0.5, overall-active ~0.45-0.5, inactive core ~0.0-0.05
  (rim = the 2 mm of white matter just outside the lesion; an inactive lesion's rim is NAWM)
  (Kaunzner et al. 2019, Brain 142:133-145; Nylund et al. 2022);
- choroid plexus: high TSPO density (~0.9; Herranz et al. 2016).
Mixed-affinity binders (MAB) carry about half the specific binding of HAB for second-
generation ligands (Owen et al. 2012, J Cereb Blood Flow Metab 32:1-5); [11C]PK11195 is
insensitive to the rs6971 genotype.

CSF has no exchange term (k2 = 0): its curve is R1 x the reference (12 %), the low,
fast-following signal of the ventricles. Every other class shares the nondisplaceable distribution volume of the reference, i.e.
``k2 = R1 * k2'`` with ``k2' = 0.35 /min`` (the efflux of
:func:`tspo_bidsapp.kinetics.simulate.reference_tac`): the SRTM/MRTM2 assumptions hold exactly.
"""

from __future__ import annotations

import numpy as np

from tspo_bidsapp.synthetic import anatomy as an
from tspo_bidsapp.tracers import lookup_tracer

REFERENCE_K2_PER_MIN = 0.35  # k2' of the reference tissue curve (reference_tac: K1 0.30, k2 0.35)
GROUPS = ("HC", "RRMS", "SPMS")

R1: dict[int, float] = {
    an.CSF: 0.12,
    an.GM: 0.90,
    an.NAWM: 0.65,
    an.CEREBELLAR_GM: 1.00,
    an.THALAMUS: 0.95,
    an.CHOROID_PLEXUS: 1.20,
    an.PERILESIONAL_WM: 0.65,
    an.RIM_ACTIVE_CORE: 0.55,
    an.RIM_ACTIVE_RIM: 0.65,  # rims are white matter just outside the lesion
    an.OVERALL_ACTIVE_CORE: 0.75,
    an.OVERALL_ACTIVE_RIM: 0.65,
    an.INACTIVE_CORE: 0.50,
    an.INACTIVE_RIM: 0.65,
}

# HAB BPND per group (HC, RRMS, SPMS).
BPND_BY_GROUP: dict[int, tuple[float, float, float]] = {
    an.CSF: (0.0, 0.0, 0.0),
    an.GM: (0.12, 0.14, 0.16),
    an.NAWM: (0.08, 0.10, 0.12),
    an.CEREBELLAR_GM: (0.0, 0.0, 0.0),
    an.THALAMUS: (0.20, 0.26, 0.30),
    an.CHOROID_PLEXUS: (0.90, 0.90, 0.90),
}
PERILESIONAL_EXTRA_BPND = 0.06
LESION_BPND: dict[int, float] = {
    an.RIM_ACTIVE_CORE: 0.05,
    an.RIM_ACTIVE_RIM: 0.50,
    an.OVERALL_ACTIVE_CORE: 0.50,
    an.OVERALL_ACTIVE_RIM: 0.45,
    an.INACTIVE_CORE: 0.02,
}
GENOTYPE_FACTOR = {"HAB": 1.0, "MAB": 0.55, "LAB": 0.05}
SUBJECT_VARIATION = 0.10  # between-subject factor on binding, uniform in [1 - v, 1 + v]


def tissue_parameters(
    group: str, genotype: str, tracer: str, rng: np.random.Generator
) -> dict[int, tuple[float, float, float]]:
    """``{label: (R1, k2 [1/min], BPND)}`` of one participant."""
    if group not in GROUPS:
        raise ValueError(f"group must be one of {GROUPS}, got {group!r}")
    info = lookup_tracer(tracer)
    if info is None:
        raise ValueError(f"unknown tracer {tracer!r}")
    if genotype not in GENOTYPE_FACTOR:
        raise ValueError(f"tspo_genotype must be one of {tuple(GENOTYPE_FACTOR)}, got {genotype!r}")
    g = GROUPS.index(group)
    factor = GENOTYPE_FACTOR[genotype] if info.genotype_sensitive else 1.0
    subject = float(rng.uniform(1.0 - SUBJECT_VARIATION, 1.0 + SUBJECT_VARIATION))
    bpnd = {label: values[g] * subject for label, values in BPND_BY_GROUP.items()}
    bpnd[an.PERILESIONAL_WM] = bpnd[an.NAWM] + PERILESIONAL_EXTRA_BPND
    bpnd.update(LESION_BPND)
    bpnd[an.INACTIVE_RIM] = bpnd[an.NAWM]  # the rim of an inactive lesion is plain NAWM
    out = {}
    for label, r1 in R1.items():
        bp = round(float(bpnd[label] * factor), 4)
        k2 = 0.0 if label == an.CSF else round(r1 * REFERENCE_K2_PER_MIN, 6)
        out[label] = (r1, k2, bp)
    return out


# --- Arterial-input kinetics (``kinetics="plasma"``) ------------------------------------------
# The reference class is a 1TCM of the arterial input with the reference curve's K1 and k2'.
# Every other class keeps K1 = R1 x K1_ref and the nondisplaceable volume of the reference:
# classes with BPND > 0 are a 2TCM with k2 = R1 k2', k3 = BPND k4 (Innis et al. 2007), and
# classes without specific binding a 1TCM, so V_T = K1_ref / k2' x (1 + BPND) exactly and the
# SRTM truth (BPND = V_T / V_T,ref - 1) still holds.
REFERENCE_K1 = 0.30  # mL/cm3/min, K1 of the reference tissue curve (reference_tac)
PLASMA_K4_PER_MIN = 0.15  # k4 of the specifically bound compartment
PLASMA_VB = 0.05  # blood volume fraction of every class (whole blood)


def plasma_parameters(
    parameters: dict[int, tuple[float, float, float]],
) -> dict[int, dict[str, float]]:
    """``{label: {K1, k2, k3, k4, vB, VT}}`` (1/min, mL/cm3) from ``{label: (R1, k2, BPND)}``."""
    out = {}
    for label, (r1, _, bp) in parameters.items():
        k3, k4 = (bp * PLASMA_K4_PER_MIN, PLASMA_K4_PER_MIN) if bp > 0 else (0.0, 0.0)
        out[label] = {
            "K1": r1 * REFERENCE_K1, "k2": r1 * REFERENCE_K2_PER_MIN, "k3": k3, "k4": k4,
            "vB": PLASMA_VB, "VT": REFERENCE_K1 / REFERENCE_K2_PER_MIN * (1.0 + bp),
        }  # fmt: skip
    return out
