"""The methods paragraphs of the report, written from what ran: the run's saved configuration
(``logs/config-*.json``) and the facts its derivatives record (segmentation source, PVC, FD
threshold, phenotype rule). Nothing is said that the run did not do."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tspo_bidsapp.interfaces.bids import software_versions
from tspo_bidsapp.kinetics.logan import DEFAULT_TSTAR_MIN
from tspo_bidsapp.kinetics.registry_models import DEFAULT_SRTM_MAP_ESTIMATOR, SRTM_MAP_METHODS
from tspo_bidsapp.quant.reference import NAMED_REF_REGIONS, ref_entity
from tspo_bidsapp.registration.confounds import DEFAULT_FD_THRESHOLD_MM
from tspo_bidsapp.registration.hmc import DEFAULT_HMC_START_TIME_S

REFERENCES: dict[str, str] = {
    "srtm": "Lammertsma AA, Hume SP. Simplified reference tissue model for PET receptor "
    "studies. NeuroImage 4:153-158 (1996).",
    "bfm": "Gunn RN, Lammertsma AA, Hume SP, Cunningham VJ. Parametric imaging of ligand-receptor "
    "binding in PET using a simplified reference region model. NeuroImage 6:279-287 (1997).",
    "srtm2": "Wu Y, Carson RE. Noise reduction in the simplified reference tissue model for "
    "neuroreceptor functional imaging. J Cereb Blood Flow Metab 22:1440-1452 (2002).",
    "lrsc": "Zhou Y, Endres CJ, Brasic JR, Huang SC, Wong DF. Linear regression with spatial "
    "constraint to generate parametric images of ligand-receptor dynamic PET studies with a "
    "simplified reference tissue model. NeuroImage 18:975-989 (2003).",
    "logan": "Logan J et al. Distribution volume ratios without blood sampling from graphical "
    "analysis of PET data. J Cereb Blood Flow Metab 16:834-840 (1996).",
    "mrtm2": "Ichise M et al. Linearized reference tissue parametric imaging methods. "
    "J Cereb Blood Flow Metab 23:1096-1112 (2003).",
    "svca": "Turkheimer FE et al. Reference and target region modeling of [11C]-(R)-PK11195 "
    "brain studies. J Nucl Med 48:158-167 (2007).",
    "samseg": "Cerri S et al. A contrast-adaptive method for simultaneous whole-brain and lesion "
    "segmentation in multiple sclerosis. NeuroImage 225:117471 (2021).",
    "ants": "Avants BB et al. A reproducible evaluation of ANTs similarity metric performance "
    "in brain image registration. NeuroImage 54:2033-2044 (2011).",
    "nipype": "Gorgolewski K et al. Nipype: a flexible, lightweight and extensible neuroimaging "
    "data processing framework in Python. Front Neuroinform 5:13 (2011).",
    "pybids": "Yarkoni T et al. PyBIDS: Python tools for BIDS datasets. J Open Source Softw "
    "4:1294 (2019).",
    "fd": "Power JD et al. Spurious but systematic correlations in functional connectivity MRI "
    "networks arise from subject motion. NeuroImage 59:2142-2154 (2012).",
    "gtm": "Rousset OG, Ma Y, Evans AC. Correction for partial volume effects in PET: principle "
    "and validation. J Nucl Med 39:904-911 (1998).",
    "rbv": "Thomas BA et al. The importance of appropriate partial volume correction for PET "
    "quantification in Alzheimer's disease. Eur J Nucl Med Mol Imaging 38:1104-1119 (2011).",
    "iy": "Erlandsson K et al. A review of partial volume correction techniques for emission "
    "tomography and their applications in neurology, cardiology and oncology. Phys Med Biol "
    "57:R119-R159 (2012).",
    "phenotypes": "Nylund M et al. Phenotyping of multiple sclerosis lesions according to "
    "innate immune cell activation using 18 kDa translocator protein-PET. Brain Commun "
    "4:fcab301 (2022).",
}


@dataclass
class RunFacts:
    """What the derivatives of one participant show was done."""

    tracer: str | None = None
    n_frames: int | None = None
    models: list[str] = field(default_factory=list)  # models with a regional table
    references: list[str] = field(default_factory=list)  # ref- entities found
    has_flair: bool = False
    segmentation: str = ""  # SegmentationSource of the anat sidecars
    lesion_source: str = ""  # LesionMaskSource of the anat sidecars
    pvc_gtm: bool = False  # regional tables fitted to GTM-corrected TACs
    pvc_maps: str = "none"  # correction of the T1w-space maps' PET: "none", "rbv" or "iy"
    pvc_fwhm_mm: list[float] | None = None  # PET FWHM the correction assumed (sidecar)
    fd_threshold_mm: float | None = None  # recorded in the confounds sidecar
    phenotype_rule: dict = field(default_factory=dict)  # PhenotypeRule of the lesion table
    has_lesions: bool = False  # a lesion table was written


def _segmentation_text(facts: RunFacts) -> tuple[str, list[str]]:
    seg, lesion = facts.segmentation.lower(), facts.lesion_source.lower()
    cite = []
    if seg.startswith("supplied"):
        text = "The whole-brain segmentation was supplied by the user (not computed by the app)"
    else:
        inputs = "T1w and FLAIR" if facts.has_flair else "T1w"
        text = f"Whole-brain segmentation was computed with SAMSEG [samseg] from the {inputs}"
        cite.append("samseg")
    if lesion.startswith("supplied"):
        text += "; the lesion mask was supplied by the user"
    elif "samseg" in lesion:
        text += "; MS lesions were segmented with SAMSEG's lesion mode"
        cite.append("samseg")
    elif lesion == "none":
        text += "; no lesion mask was available, so lesions were not segmented"
    text += (
        ". TSPO-MS regions (lesions, perilesional white matter, normal-appearing white matter, "
        "cortical and deep grey matter, cerebellar grey-matter reference) were derived from it."
    )
    return text, cite


def methods_paragraphs(cfg: Mapping, facts: RunFacts) -> tuple[list[str], list[str]]:
    """(paragraphs, cited reference keys) describing what this run did.

    ``cfg``: the run's saved configuration (:meth:`~tspo_bidsapp.config.Config.to_dict`);
    ``facts``: what its derivatives record (:class:`RunFacts`).
    """
    versions = software_versions()
    cite: list[str] = ["nipype", "pybids"]
    text = [
        f"Results were produced by tspo-bidsapp {versions.get('tspo-bidsapp', '?')}, a "
        f"workflow built on Nipype {versions.get('nipype', '?')} [nipype]; the input dataset "
        "was queried with PyBIDS [pybids]."
    ]
    fd = facts.fd_threshold_mm
    if fd is None:
        fd = float(cfg.get("fd_threshold_mm", DEFAULT_FD_THRESHOLD_MM))
    frames = f" ({facts.n_frames} frames)" if facts.n_frames else ""
    if cfg.get("hmc", True):
        start = float(cfg.get("hmc_start_time_s", DEFAULT_HMC_START_TIME_S))
        pet = (
            f"Each frame of the dynamic {facts.tracer or 'TSPO'} PET{frames} starting at or "
            f"after {start:g} s was rigidly realigned to a reference frame with ANTsPy [ants]; "
            "framewise displacement was computed as in Power et al. [fd] and frames above "
            f"{fd:g} mm were flagged."
        )
        cite += ["ants", "fd"]
    else:
        pet = f"Head-motion correction of the dynamic {facts.tracer or 'TSPO'} PET{frames} was off."
        cite.append("ants")
    text.append(
        pet + " The PET reference was co-registered rigidly to the T1-weighted image (ANTs, "
        "mutual information) [ants]."
    )
    anat, more = _segmentation_text(facts)
    text.append(anat)
    cite += more
    refs = []
    for ref in facts.references:
        if ref == "svca":
            refs.append("a supervised cluster analysis (SVCA) pseudo-reference [svca]")
            cite.append("svca")
        elif ref == "cerebellum":
            refs.append("the lesion-free cerebellar grey matter")
        elif ref == "wholebrain":
            refs.append("the whole brain minus lesions (a pseudo-reference)")
        else:  # a named TSPO-MS region (ref- entity: the name without hyphens)
            name = {ref_entity(n): n for n in NAMED_REF_REGIONS}.get(ref, ref)
            refs.append(f"the TSPO-MS region {name} minus lesions")
    if refs:
        text.append("The reference region was " + " and ".join(refs) + ".")
    if facts.pvc_gtm:
        text.append(_pvc_text(cfg, facts, cite))
    text += _model_text(cfg, facts.models, cite)
    rule = facts.phenotype_rule
    if facts.has_lesions and not rule:
        text.append("Lesions were classified as rim-active, overall-active or inactive from the "
                    "DVR of their core and of a perilesional rim [phenotypes].")  # fmt: skip
        cite.append("phenotypes")
    elif rule:
        text.append(_phenotype_text(rule))
        cite.append("phenotypes")
    return text, list(dict.fromkeys(cite))


def _pvc_text(cfg: Mapping, facts: RunFacts, cite: list[str]) -> str:
    """Regional (GTM) and voxel-wise (RBV, iterative Yang) correction, as the sidecars record."""
    fwhm = facts.pvc_fwhm_mm or cfg.get("pet_fwhm_mm")
    fwhm = [fwhm] if isinstance(fwhm, int | float) else list(fwhm or [])
    res = " x ".join(f"{f:g}" for f in (fwhm[:1] if len(set(fwhm)) == 1 else fwhm))
    text = ("Regional TACs were corrected for partial-volume effects with the geometric transfer "
            "matrix method [gtm]" + (f" (PET resolution {res} mm FWHM)" if res else ""))  # fmt: skip
    cite.append("gtm")
    if facts.pvc_maps in ("rbv", "iy"):
        name = {"rbv": "region-based voxel-wise correction (RBV) [rbv]",
                "iy": "iterative Yang correction [iy]"}[facts.pvc_maps]  # fmt: skip
        cite.append(facts.pvc_maps)
        return (text + "; voxel-wise maps were computed from the PET corrected frame by frame "
                f"with {name}, with the same corrected reference TAC as the regional fits.")  # fmt: skip
    return text + "; voxel-wise maps were not corrected."


def _phenotype_text(rule: Mapping) -> str:
    """The phenotype rule of the lesion table's sidecar, with its threshold and correction."""
    corr = str(rule.get("correction") or "none")
    on = ("the uncorrected DVR map" if corr == "none"
          else f"the {corr.upper()} partial-volume-corrected DVR map")  # fmt: skip
    if rule.get("values") == "regional":
        how = "GTM" if corr in ("gtm", "rbv") else corr.upper()
        on = (f"the DVR of each lesion core's and rim's own {how} partial-volume-corrected TAC "
              "(every lesion core and rim a region of the correction; fitted with the reference "
              "TAC and k2' of the regional fits)")  # fmt: skip
    if rule.get("method") == "lesion":
        lo, hi = rule.get("shell_mm", (3, 6))
        return (
            f"Lesions were classified as rim-active, overall-active or inactive on {on} by "
            f"comparing the mean DVR of their core and of a {rule.get('rim_mm', 2):g} mm "
            f"perilesional rim with the participant's own {lo:g}-{hi:g} mm perilesional "
            f"white-matter shell (active above it by more than {rule.get('core_excess', 0):.0%} "
            f"(core) or {rule.get('rim_excess', 0):.0%} (rim); rim-active when the rim also "
            f"exceeds the core by more than {rule.get('rim_over_core', 0):.0%}) [phenotypes]."
        )
    source = rule.get("threshold_source", "user")
    cls = f" {rule['threshold_class']}" if rule.get("threshold_class") else ""
    how = (
        f"mean + {rule.get('threshold_k'):g} SD of{cls} healthy controls' white-matter DVR"
        if source == "healthy-controls" and rule.get("threshold_k") is not None
        else "set by the user"
    )
    thr, rim = f"{rule['threshold_dvr']:.3g}", f"{rule.get('rim_mm', 2):g}"
    if rule.get("values") == "regional":
        return (
            f"Lesions were classified as rim-active, overall-active or inactive on {on} by "
            f"comparing the DVR of their core and of a {rim} mm perilesional rim with a "
            f"threshold (DVR > {thr}, {how}) [phenotypes]."
        )
    return (
        f"Lesions were classified as rim-active, overall-active or inactive on {on} from the "
        f"fraction of active voxels (DVR > {thr}, {how}) in their core and in a {rim} mm "
        "perilesional rim [phenotypes]."
    )


def _model_text(cfg: Mapping, models: list[str], cite: list[str]) -> list[str]:
    parts = []
    for model in models:
        key = model.lower()
        if key == "srtm":
            estimator = cfg.get("voxelwise_estimator") or DEFAULT_SRTM_MAP_ESTIMATOR
            text, keys = SRTM_MAP_METHODS[estimator]
            parts.append(f"SRTM [srtm] (regional weighted non-linear fit; voxel-wise {text})")
            cite += ["srtm", *keys]
        elif key in ("srtm2", "mrtm2"):
            k2p = cfg.get("k2prime")
            fixed = f"k2' = {k2p:g} /min" if k2p else "k2' fixed to the median regional SRTM value"
            parts.append(f"{model} [{key}] ({fixed})")
            cite.append(key)
        elif key == "logan":
            tstar = float(cfg.get("logan_tstar_min", DEFAULT_TSTAR_MIN))
            parts.append(f"the Logan reference plot [logan] (t* = {tstar:g} min)")
            cite.append("logan")
        elif key == "suvr":
            window = cfg.get("suvr_window_min")
            parts.append("SUVR (" + (f"{window[0]:g}-{window[1]:g} min" if window
                                     else "last 20 min of the scan") + ")")  # fmt: skip
        else:
            parts.append(model)
    if not parts:
        return []
    return [
        "Binding potential (BPND) and distribution volume ratio (DVR = 1 + BPND) were "
        "estimated with " + ", ".join(parts) + ". Every regional fit was checked for parameters "
        "at their bounds, implausible values, residuals larger than the frame noise and "
        "non-identifiable parameters; flagged values are marked in the tables and left out of "
        "group statistics."
    ]
