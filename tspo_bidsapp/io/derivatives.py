"""The derivatives contract: every name and sidecar key shared by writers and readers.

Writers (the ``ds_*`` sinks of the workflows) take their entities from :meth:`Spec.sink`;
readers (reports, group level) find files with :meth:`Spec.tail` and read sidecar keys named
here. A file name is ``<source entities>_<tail>``; the source entities (sub, ses, task, acq, ce,
trc, rec, run) are kept from the BIDS input, then :data:`DERIVED_ENTITIES` in that order, then
the suffix and extension (``docs/outputs.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

SOURCE_ENTITIES = ("sub", "ses", "task", "acq", "ce", "trc", "rec", "run")
DERIVED_ENTITIES = ("space", "seg", "label", "model", "ref", "meas", "desc")
VARIABLE = None  # an entity a writer fills in per file (model-, ref-, meas-, space-)
#: How every TSV table is written (``DataFrame.to_csv(path, **TSV_FORMAT)``): BIDS tab-separated,
#: no index, ``n/a`` for missing values, 6 significant digits.
TSV_FORMAT = MappingProxyType(
    {"sep": "\t", "index": False, "na_rep": "n/a", "float_format": "%.6g"}
)


@dataclass(frozen=True)
class Spec:
    """One kind of derivative: datatype folder, fixed/variable entities, suffix, extension."""

    datatype: str
    suffix: str
    extension: str
    entities: Mapping[str, str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.entities) - set(DERIVED_ENTITIES)
        if unknown:
            raise ValueError(f"unknown derivative entities {sorted(unknown)}")

    def sink(self, **values: str) -> dict[str, str]:
        """Keyword arguments of ``DerivativesDataSink``: fixed entities, the ``values`` given
        for variable ones, suffix and extension."""
        bad = set(values) - {k for k, v in self.entities.items() if v is VARIABLE}
        if bad:
            raise ValueError(f"{self.suffix}: {sorted(bad)} are not variable entities")
        out = {k: v for k, v in self.entities.items() if v is not VARIABLE}
        out.update({k: v for k, v in values.items() if v})
        return {**out, "suffix": self.suffix, "extension": self.extension}

    def tail(self, **values: str) -> str:
        """The name after the source entities; variable entities not given become ``*``."""
        filled = {**self.entities, **values}
        parts = [f"{k}-{filled[k] or '*'}" for k in DERIVED_ENTITIES if k in filled]
        return "_".join([*parts, self.suffix]) + self.extension

    def matches(self, entities: Mapping[str, str]) -> bool:
        """True when parsed name ``entities`` (with ``suffix``, ``extension``) are of this kind:
        same suffix, extension and fixed entities, every variable one present, no other."""
        if entities.get("suffix") != self.suffix or entities.get("extension") != self.extension:
            return False
        derived = {k for k in DERIVED_ENTITIES if k in entities}
        if derived != set(self.entities):
            return False
        return all(v is VARIABLE or entities[k] == v for k, v in self.entities.items())


# --- anatomy (sub-<p>/[ses-<s>/]anat/) -------------------------------------------------------
T1W_PREPROC = Spec("anat", "T1w", ".nii.gz", {"desc": "preproc"})
BRAIN_MASK = Spec("anat", "mask", ".nii.gz", {"desc": "brain"})
DSEG = Spec("anat", "dseg", ".nii.gz")
DSEG_TSV = Spec("anat", "dseg", ".tsv")
LESION_MASK = Spec("anat", "mask", ".nii.gz", {"label": "lesion"})
LESION_PROBSEG = Spec("anat", "probseg", ".nii.gz", {"label": "lesion"})
LESION_MASK_SAMSEG = Spec("anat", "mask", ".nii.gz", {"label": "lesion", "desc": "samseg"})
LESION_DSEG = Spec("anat", "dseg", ".nii.gz", {"desc": "lesions"})
LESION_MORPH = Spec("anat", "morph", ".tsv", {"desc": "lesions"})
TSPOMS_DSEG = Spec("anat", "dseg", ".nii.gz", {"seg": "tspoms"})
TSPOMS_TSV = Spec("anat", "dseg", ".tsv", {"seg": "tspoms"})
TSPOMS_MORPH = Spec("anat", "morph", ".tsv", {"seg": "tspoms"})
ANAT_SOURCES = Spec("anat", "T1w", ".json", {"desc": "anatsources"})

# --- PET (sub-<p>/[ses-<s>/]pet/) ------------------------------------------------------------
RUN_SUMMARY = Spec("pet", "tacs", ".tsv", {"desc": "imagemean"})
PETREF = Spec("pet", "petref", ".nii.gz", {"desc": "hmc"})
PET_MC = Spec("pet", "pet", ".nii.gz", {"desc": "mc"})
CONFOUNDS = Spec("pet", "timeseries", ".tsv", {"desc": "confounds"})
PETREF_T1W = Spec("pet", "petref", ".nii.gz", {"space": "T1w", "desc": "hmc"})
REGION_TACS = Spec("pet", "tacs", ".tsv", {"seg": "tspoms", "desc": "preproc"})
REGION_TACS_GTM = Spec("pet", "tacs", ".tsv", {"seg": "tspoms", "desc": "gtm"})
#: Corrected TACs of every lesion core and rim (``lesion-<id>-core``/``-rim``, ids of
#: ``desc-lesions_dseg``) and of the perilesional shell and NAWM, from the lesion-aware PVC.
LESION_TACS_PVC = Spec("pet", "tacs", ".tsv", {"seg": "lesions", "desc": "gtm"})
REF_TACS = Spec("pet", "tacs", ".tsv", {"ref": VARIABLE, "desc": "preproc"})
REF_TACS_GTM = Spec("pet", "tacs", ".tsv", {"ref": VARIABLE, "desc": "gtm"})
REF_MASK = Spec("pet", "mask", ".nii.gz", {"ref": VARIABLE, "desc": "ref"})
KINPAR = Spec("pet", "kinpar", ".tsv", {"model": VARIABLE, "ref": VARIABLE})
SUV_MAP = Spec("pet", "mimap", ".nii.gz", {"space": "T1w", "model": "SUV", "meas": "SUV"})
SUV_KINPAR = Spec("pet", "kinpar", ".tsv", {"model": "SUV"})
INPUT_FUNCTION = Spec("pet", "inputfunction", ".tsv")
LESION_KINPAR = Spec("pet", "kinpar", ".tsv", {"model": VARIABLE, "ref": VARIABLE,
                                               "desc": "lesions"})  # fmt: skip
MIMAP = Spec("pet", "mimap", ".nii.gz", {"space": VARIABLE, "model": VARIABLE, "ref": VARIABLE,
                                         "meas": VARIABLE})  # fmt: skip
#: Transforms carry from-/to-/mode- entities and are named from the stored petref's name.
XFM_PET_TO_T1W_TAIL = "_from-petref_to-T1w_mode-image_xfm.txt"
XFM_HMC_TAIL = "_from-orig_to-petref_mode-image_desc-hmc_xfm.txt"

# --- sidecar keys ----------------------------------------------------------------------------
#: Confounds sidecar: the FD threshold (mm) is ``meta[FD_COLUMN][THRESHOLD_KEY]``.
FD_COLUMN = "framewise_displacement"
OUTLIER_COLUMN = "motion_outlier"
THRESHOLD_KEY = "Threshold"
PVC_KEY = "PartialVolumeCorrection"  # kinpar/mimap sidecars: "GTM", "RBV", "IY" or "none"
PVC_FWHM_KEY = "PETFWHMmm"  # kinpar/mimap sidecars of corrected runs: the --pet-fwhm (mm)
WARNING_KEYS = ("ValidationWarnings", "GenotypeFlags", "Warnings")
GENOTYPE_KEY = "TSPOGenotype"
SEGMENTATION_SOURCE_KEY = "SegmentationSource"  # anat sidecars: "SAMSEG" or "supplied: <path>"
LESION_SOURCE_KEY = "LesionMaskSource"
#: ``*_desc-anatsources_T1w.json``: where the segmentation and the lesion mask came from.
SOURCES_SEGMENTATION_KEY = "segmentation"
SOURCES_LESION_KEY = "lesion_mask"
PHENOTYPE_RULE_KEY = "PhenotypeRule"  # lesion kinpar sidecar: the classification rule
#: Saved run configuration: ``OUTPUT_DIR/logs/config-<run_id>.json``.
CONFIG_GLOB = "config-*.json"


def fd_threshold(confounds_meta: Mapping) -> float | None:
    """The FD threshold (mm) recorded in a confounds sidecar, None when absent."""
    value = (confounds_meta.get(OUTLIER_COLUMN) or {}).get(THRESHOLD_KEY)
    return float(value) if isinstance(value, int | float) else None


def pvc_method(meta: Mapping) -> str | None:
    """The partial-volume correction a sidecar records: "none", "gtm", "rbv" or "iy".

    Read from ``PVC_KEY`` (kinpar, maps, corrected TACs) or, in a lesion table's sidecar, from
    its ``PHENOTYPE_RULE_KEY`` ``correction``; None when the sidecar records neither.
    """
    value = meta.get(PVC_KEY, (meta.get(PHENOTYPE_RULE_KEY) or {}).get("correction"))
    if value is None:
        return None
    text = str(value).strip().lower()
    prefixes = {"rbv": ("rbv",), "iy": ("iy", "iterative yang"), "gtm": ("gtm",)}
    for method, starts in prefixes.items():
        if text.startswith(starts):
            return method
    return "none" if text in ("", "none") else text


def is_pvc_gtm(kinpar_meta: Mapping) -> bool:
    """True when a kinpar table was fitted to GTM partial-volume-corrected TACs (with ``gtm``,
    and with ``rbv``/``iy``, whose regional values are the GTM's)."""
    return pvc_method(kinpar_meta) in ("gtm", "rbv", "iy")
