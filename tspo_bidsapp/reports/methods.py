"""The methods paragraph of the report, written from the settings and sidecars of the run."""

from __future__ import annotations

from tspo_bidsapp.interfaces.bids import software_versions

REFERENCES: dict[str, str] = {
    "srtm": "Lammertsma AA, Hume SP. Simplified reference tissue model for PET receptor "
    "studies. NeuroImage 4:153-158 (1996).",
    "bfm": "Gunn RN, Lammertsma AA, Hume SP, Cunningham VJ. Parametric imaging of ligand-receptor "
    "binding in PET using a simplified reference region model. NeuroImage 6:279-287 (1997).",
    "srtm2": "Wu Y, Carson RE. Noise reduction in the simplified reference tissue model for "
    "neuroreceptor functional imaging. J Cereb Blood Flow Metab 22:1440-1452 (2002).",
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
    "phenotypes": "Nylund M et al. Phenotyping of multiple sclerosis lesions according to "
    "innate immune cell activation using 18 kDa translocator protein-PET. Brain Commun "
    "4:fcab301 (2022).",
}


def methods_paragraphs(
    *,
    tracer: str | None,
    n_frames: int | None,
    models: list[str],
    references: list[str],
    fd_threshold_mm: float,
    has_flair: bool,
    has_lesions: bool,
) -> tuple[list[str], list[str]]:
    """(paragraphs, cited references) describing what this run did."""
    versions = software_versions()
    cite: list[str] = ["nipype", "pybids"]
    text = [
        f"Results were produced by tspo-bidsapp {versions.get('tspo-bidsapp', '?')}, a "
        f"workflow built on Nipype {versions.get('nipype', '?')} [nipype]; the input dataset "
        "was queried with PyBIDS [pybids]."
    ]
    pet = (
        f"Each frame of the dynamic {tracer or 'TSPO'} PET"
        + (f" ({n_frames} frames)" if n_frames else "")
        + " was rigidly realigned to a reference frame with ANTsPy [ants]; framewise "
        f"displacement was computed as in Power et al. [fd] and frames above "
        f"{fd_threshold_mm:g} mm were flagged. The motion-corrected PET reference was "
        "co-registered rigidly to the T1-weighted image (ANTs, mutual information) [ants]."
    )
    cite += ["ants", "fd"]
    text.append(pet)
    anat = (
        "Whole-brain segmentation"
        + (" and MS lesion segmentation" if has_flair else "")
        + " were obtained with SAMSEG [samseg]"
        + (" from the T1w and FLAIR images" if has_flair else " from the T1w image")
        + "; TSPO-MS regions (lesions, perilesional white matter, normal-appearing white matter, "
        "cortical and deep grey matter, cerebellar grey-matter reference) were derived from it."
    )
    cite.append("samseg")
    text.append(anat)
    if references:
        refs = []
        for ref in references:
            if ref == "svca":
                refs.append("a supervised cluster analysis (SVCA) pseudo-reference [svca]")
                cite.append("svca")
            else:
                refs.append(f"the {ref} grey matter")
        text.append("The reference region was " + " and ".join(refs) + ".")
    if models:
        parts = []
        for model in models:
            key = model.lower()
            if key == "srtm":
                parts.append("SRTM [srtm] (regional non-linear fit; voxel-wise basis functions "
                             "[bfm])")  # fmt: skip
                cite += ["srtm", "bfm"]
            elif key == "srtm2":
                parts.append("SRTM2 [srtm2]")
                cite.append("srtm2")
            elif key in REFERENCES:
                parts.append(f"{model} [{key}]")
                cite.append(key)
            else:
                parts.append(model)
        text.append(
            "Binding potential (BPND) and distribution volume ratio (DVR = 1 + BPND) were "
            "estimated with " + ", ".join(parts) + "."
        )
    if has_lesions:
        text.append(
            "Lesions were classified as rim-active, overall-active or inactive from the DVR of "
            "their core and of a 2 mm perilesional rim [phenotypes]."
        )
        cite.append("phenotypes")
    return text, list(dict.fromkeys(cite))
