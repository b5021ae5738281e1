"""Quantification workflow: regional TACs, reference region, kinetic tables, maps, phenotypes.

Everything runs on the T1w grid: ``inputnode.pet_t1w`` is the motion-corrected PET resampled
once to T1w space, and the masks and labels come from the anatomical workflow. Outputs are
stored as BIDS-Derivatives named after ``inputnode.source_file`` (the BIDS PET).
"""

from __future__ import annotations

import numpy as np
from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from tspo_bidsapp.interfaces.bids import DerivativesDataSink
from tspo_bidsapp.interfaces.pvc import GTMCorrect, LesionPhenotypes, RegionalLesionPhenotypes
from tspo_bidsapp.interfaces.quant import (
    ExtractTACs,
    ReferenceRegion,
    RegionalKinetics,
    VoxelwiseMaps,
)
from tspo_bidsapp.io import derivatives as D
from tspo_bidsapp.kinetics.logan import DEFAULT_TSTAR_MIN
from tspo_bidsapp.quant.phenotypes import rule_for, values_for
from tspo_bidsapp.quant.pvc import PVC_NAMES
from tspo_bidsapp.quant.pvc_voxel import VOXEL_METHODS
from tspo_bidsapp.quant.reference import REF_REGIONS, parse_ref_region, ref_entity

INPUT_FIELDS = [
    "source_file", "pet_t1w", "pet_file", "sidecar_file", "tspoms_dseg", "tspoms_tsv",
    "lesion_ids", "lesion_mask", "ref_candidate", "brain_mask", "gm_mask", "wm_mask",
    "participant", "petref", "coreg_xform",
]  # fmt: skip
OUTPUT_FIELDS = ["tacs", "tacs_pvc", "ref_tacs", "ref_mask", "kinpar", "maps", "lesions"]


def pick_dvr(maps, models, measures, preference):
    """The DVR map of the first model of ``preference`` that has one, and that model."""
    for model in preference:
        for path, m, meas in zip(maps, models, measures, strict=True):
            if m == model and meas in ("DVR", "SUVR"):  # SUVR: static PET
                return path, m
    raise ValueError(f"no DVR map among the models {sorted(set(models))}")


def phenotype_settings(pvc: str, rule: str | None, values: str | None) -> tuple[str, str]:
    """``(rule, values)`` of a run: values "regional" (per-lesion corrected TACs) by default
    when ``pvc`` is on, else "map"; rule "lesion" by default on corrected values, else "voxel"."""
    values = values_for(values, pvc)
    if values == "regional" and pvc == "none":
        raise ValueError("regional lesion values need partial-volume correction (pvc)")
    return rule_for(rule, values == "regional" or pvc in VOXEL_METHODS), values


def uses_threshold(config) -> bool:
    """True when a run of ``config`` classifies lesions with the voxel (DVR-threshold) rule."""
    rule, _ = phenotype_settings(config.pvc, config.phenotype_rule, config.phenotype_values)
    return rule == "voxel"


def unused_threshold_note(config) -> str | None:
    """A warning when ``config`` gives an active-voxel threshold that its phenotype rule ignores."""
    given = config.active_threshold is not None or config.active_threshold_file is not None
    if not given or uses_threshold(config):
        return None
    return (
        f"the active-voxel threshold is not used: with --pvc {config.pvc} lesions are classified "
        "by the lesion rule (core and rim against their own perilesional shell); add "
        "--phenotype-rule voxel to classify them against the threshold"
    )


def init_pet_quant_wf(
    *,
    output_dir: str | None = None,
    ref_region: str = "cerebellum",
    svca_classes: str | None = None,
    models: tuple[str, ...] = ("SRTM",),
    suvr_window_min: tuple[float, float] | None = None,
    logan_tstar_min: float = DEFAULT_TSTAR_MIN,
    k2prime: float | None = None,
    active_threshold: float | None = None,
    active_k: float | None = None,
    threshold_class: str | None = None,
    pvc: str = "none",
    pet_fwhm_mm: float | tuple[float, float, float] | None = None,
    phenotype_rule: str | None = None,
    phenotype_values: str | None = None,
    pet_space_maps: bool = False,
    blood=None,
    plasma_vb: float | None = None,
    parent_fraction_model: str | None = None,
    voxelwise_estimator: str | None = None,
    name: str = "pet_quant_wf",
) -> pe.Workflow:
    """Build the quantification of one PET run (settings from :class:`~tspo_bidsapp.config.Config`).

    Regional tables come from the GTM-corrected TACs when ``pvc`` is not "none" (``pet_fwhm_mm``
    required, one FWHM or x, y, z; the resampling blur of the PET grid is added; every lesion
    core and rim is a GTM region). With ``pvc`` "rbv" or "iy" the PET is also corrected voxel
    by voxel and the maps come from it, with the same corrected reference TAC (and k2') as the
    regional fits; with "gtm" the maps stay uncorrected. Lesion phenotypes use
    ``phenotype_values`` (default with ``pvc``: "regional", the DVR of every lesion core's and
    rim's corrected TAC; else "map", the DVR map) and ``phenotype_rule`` (default: "lesion" on
    corrected values, else "voxel"); the voxel rule needs ``active_threshold`` (DVR; from the
    group level's controls or given; the controls' binding class ``threshold_class`` is
    recorded per lesion) and is skipped without it.
    With ``pet_space_maps`` the maps are also computed on the native PET grid from
    ``pet_file`` (motion-corrected, PET space), the brain mask being brought there with the
    inverse co-registration (``petref``, ``coreg_xform``). With ``blood`` (an :class:`~tspo_bidsapp.io.blood_input.ArterialSource`)
    the run's arterial input is built (``parent_fraction_model``), stored as
    ``_inputfunction.tsv`` and given to the plasma-input models of ``models`` (fixed blood
    volume ``plasma_vb`` when given), regional and voxel-wise; the maps use the regional delay.
    With ``output_dir`` the results are stored (``ds_*`` nodes).
    """
    ref_region = parse_ref_region(ref_region)
    if pvc != "none" and not pet_fwhm_mm:
        raise ValueError(f"pvc={pvc!r} needs pet_fwhm_mm (the PET resolution, FWHM in mm)")
    voxel_pvc = pvc in ("rbv", "iy")
    phenotype_rule, phenotype_values = phenotype_settings(pvc, phenotype_rule, phenotype_values)
    if ref_region == "svca" and not svca_classes:
        raise ValueError("ref_region='svca' needs svca_classes (a TSV of kinetic classes)")
    models = tuple(models)
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=INPUT_FIELDS), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=OUTPUT_FIELDS), name="outputnode")
    window = {"suvr_window_min": suvr_window_min} if suvr_window_min else {}
    fixed_k2p = {"k2prime": float(k2prime)} if k2prime is not None else {}

    extract_tacs = pe.Node(ExtractTACs(), name="extract_tacs")
    reference = pe.Node(ReferenceRegion(method=ref_region), name="reference")
    if svca_classes:
        reference.inputs.svca_classes = str(svca_classes)
    kinetics = pe.Node(
        RegionalKinetics(models=list(models), tstar_min=logan_tstar_min, **window, **fixed_k2p),
        name="kinetics",
    )
    maps = pe.Node(
        VoxelwiseMaps(models=list(models), tstar_min=logan_tstar_min, **window, **fixed_k2p),
        name="maps",
    )
    if voxelwise_estimator is not None:  # SRTM maps in both spaces (maps_pet is a clone)
        maps.inputs.voxelwise_estimator = voxelwise_estimator
    workflow.connect([
        (inputnode, extract_tacs, [("pet_t1w", "pet_file"), ("sidecar_file", "sidecar_file"),
                                   ("tspoms_dseg", "dseg_file"), ("tspoms_tsv", "dseg_tsv")]),
        (inputnode, extract_tacs, [("brain_mask", "brain_mask")]),
        (inputnode, reference, [("pet_t1w", "pet_file"), ("sidecar_file", "sidecar_file"),
                                ("lesion_mask", "lesion_mask"), ("brain_mask", "brain_mask"),
                                ("gm_mask", "gm_mask")]),
        (extract_tacs, kinetics, [("volumes", "volumes"), ("time_meta", "time_meta")]),
        (extract_tacs, maps, [("time_meta", "time_meta")]),
        (inputnode, kinetics, [("participant", "participant")]),
        (inputnode, maps, [("brain_mask", "brain_mask")]),
        (extract_tacs, outputnode, [("out_tsv", "tacs")]),
        (reference, outputnode, [("out_tsv", "ref_tacs"), ("out_mask", "ref_mask")]),
        (kinetics, outputnode, [("out_files", "kinpar")]),
        (maps, outputnode, [("out_maps", "maps")]),
    ])  # fmt: skip
    if ref_region == "cerebellum":
        workflow.connect([(inputnode, reference, [("ref_candidate", "candidate_mask")])])
    elif ref_region not in REF_REGIONS:  # a named TSPO-MS region
        workflow.connect([(inputnode, reference, [("tspoms_dseg", "dseg_file"),
                                                  ("tspoms_tsv", "dseg_tsv")])])  # fmt: skip
    fit_k2p = k2prime is None and bool({"SRTM2", "MRTM2"} & set(models))
    k2p_plain = kinetics  # k2' for maps of uncorrected PET: from fits sharing their reference
    if fit_k2p and pvc != "none":
        k2p_plain = kinetics.clone("kinetics_uncorrected")
        workflow.connect([
            (extract_tacs, k2p_plain, [("out_tsv", "tacs_tsv"), ("volumes", "volumes")]),
            (reference, k2p_plain, [("out_tsv", "ref_tsv")]),
        ])  # fmt: skip
    if fit_k2p:
        k2p_maps = kinetics if pvc in ("none", "rbv", "iy") else k2p_plain
        workflow.connect([(k2p_maps, maps, [("k2prime", "k2prime")])])

    if pvc != "none":
        fwhm = [float(f) for f in np.atleast_1d(pet_fwhm_mm)]
        gtm = pe.Node(GTMCorrect(fwhm_mm=fwhm, method=pvc), name="gtm")
        pvc_meta = {"PartialVolumeCorrection": pvc.upper(), "PETFWHMmm": fwhm,
                    "PartialVolumeCorrectionMethod": PVC_NAMES[pvc]}  # fmt: skip
        kinetics.inputs.extra_meta = pvc_meta
        maps.inputs.extra_meta = pvc_meta if voxel_pvc else {"PartialVolumeCorrection": "none"}
        workflow.connect([
            (inputnode, gtm, [("pet_t1w", "pet_file"), ("sidecar_file", "sidecar_file"),
                              ("tspoms_dseg", "dseg_file"), ("tspoms_tsv", "dseg_tsv"),
                              ("pet_file", "resampled_from"), ("lesion_ids", "lesion_ids")]),
            (reference, gtm, [("out_mask", "ref_mask")]),
            (gtm, kinetics, [("out_tsv", "tacs_tsv"), ("ref_tsv", "ref_tsv")]),
            (gtm, outputnode, [("out_tsv", "tacs_pvc")]),
        ])  # fmt: skip
    else:
        kinetics.inputs.extra_meta = {"PartialVolumeCorrection": "none"}
        workflow.connect([
            (extract_tacs, kinetics, [("out_tsv", "tacs_tsv")]),
            (reference, kinetics, [("out_tsv", "ref_tsv")]),
        ])  # fmt: skip
    if voxel_pvc:  # one reference for regions and maps: the corrected one
        workflow.connect([(gtm, maps, [("out_pet", "pet_file"), ("ref_tsv", "ref_tsv")])])
    else:
        workflow.connect([(inputnode, maps, [("pet_t1w", "pet_file")]),
                          (reference, maps, [("out_tsv", "ref_tsv")])])  # fmt: skip

    # SRTM2 first on corrected maps: small corrected lesions make free-k2' SRTM fits unstable
    order = (
        ("SRTM2", "SRTM", "MRTM2", "Logan", "SUVR")
        if voxel_pvc
        else ("SRTM", "SRTM2", "MRTM2", "Logan", "SUVR")
    )
    dvr_models = [m for m in order if m in models]
    if phenotype_values == "regional" and "SRTM" in dvr_models:  # per-lesion TACs: k2' fixed
        dvr_models = ["SRTM2", *(m for m in dvr_models if m not in ("SRTM", "SRTM2"))]
    run_phenotypes = dvr_models and (active_threshold is not None or phenotype_rule == "lesion")
    rule_inputs = {
        "threshold_source": "user" if active_k is None else "healthy-controls",
        **({} if active_k is None else {"threshold_k": float(active_k)}),
        **({} if active_threshold is None else {"threshold_dvr": float(active_threshold)}),
        **({} if threshold_class is None else {"threshold_class": threshold_class}),
        "rule": phenotype_rule,
    }
    if run_phenotypes and phenotype_values == "regional":  # per-lesion corrected TACs
        phenotypes = pe.Node(
            RegionalLesionPhenotypes(**rule_inputs, correction=pvc, preference=dvr_models,
                                     tstar_min=logan_tstar_min, **window, **fixed_k2p),
            name="phenotypes",
        )  # fmt: skip
        lesion_model = (phenotypes, "model")
        workflow.connect([
            (gtm, phenotypes, [("lesion_tsv", "lesion_tsv"), ("voxel_counts", "voxel_counts"),
                               ("voxel_ml", "voxel_ml"), ("out_tsv", "tacs_tsv"),
                               ("ref_tsv", "ref_tsv")]),
            (inputnode, phenotypes, [("participant", "participant")]),
            (phenotypes, outputnode, [("out_tsv", "lesions")]),
        ])  # fmt: skip
    elif run_phenotypes:
        select_dvr = pe.Node(
            niu.Function(
                function=pick_dvr,
                input_names=["maps", "models", "measures", "preference"],
                output_names=["dvr_file", "model"],
            ),
            name="select_dvr",
        )
        select_dvr.inputs.preference = dvr_models
        phenotypes = pe.Node(
            LesionPhenotypes(**rule_inputs, correction=pvc if voxel_pvc else "none"),
            name="phenotypes",
        )
        lesion_model = (select_dvr, "model")
        workflow.connect([
            (maps, select_dvr, [("out_maps", "maps"), ("models", "models"),
                                ("measures", "measures")]),
            (select_dvr, phenotypes, [("dvr_file", "dvr_file")]),
            (inputnode, phenotypes, [("lesion_ids", "lesion_ids"), ("wm_mask", "wm_mask"),
                                     ("participant", "participant")]),
            (phenotypes, outputnode, [("out_tsv", "lesions")]),
        ])  # fmt: skip

    if pet_space_maps:
        from tspo_bidsapp.interfaces.ants import MaskToPET

        brain_mask_pet = pe.Node(MaskToPET(), name="brain_mask_pet")
        maps_pet = maps.clone("maps_pet")
        maps_pet.inputs.extra_meta = {"PartialVolumeCorrection": "none"}  # native, uncorrected PET
        workflow.connect([
            (inputnode, brain_mask_pet, [("brain_mask", "mask"), ("petref", "petref"),
                                         ("coreg_xform", "coreg_xform")]),
            (inputnode, maps_pet, [("pet_file", "pet_file")]),
            (brain_mask_pet, maps_pet, [("out_file", "brain_mask")]),
            (reference, maps_pet, [("out_tsv", "ref_tsv")]),
        ])  # fmt: skip
        if fit_k2p:
            workflow.connect([(k2p_plain, maps_pet, [("k2prime", "k2prime")])])

    if blood is not None:  # arterial input for the plasma-input models
        from tspo_bidsapp.interfaces.blood import ArterialInputFunction

        arterial = pe.Node(
            ArterialInputFunction(
                source_kind=blood.kind, source_files=[str(f) for f in blood.files]
            ),
            name="arterial_input",
        )
        if parent_fraction_model is not None:
            arterial.inputs.parent_fraction_model = parent_fraction_model
        plasma_maps = [maps, maps_pet] if pet_space_maps else [maps]
        if plasma_vb is not None:
            for node in (kinetics, *plasma_maps):
                node.inputs.vb = float(plasma_vb)
        workflow.connect([
            (inputnode, arterial, [("sidecar_file", "sidecar_file")]),
            (arterial, kinetics, [("out_tsv", "input_function")]),
        ])  # fmt: skip
        for node in plasma_maps:
            workflow.connect([(arterial, node, [("out_tsv", "input_function")]),
                              (kinetics, node, [("delay_min", "delay_min")])])  # fmt: skip

    if output_dir is None:
        return workflow

    def sink(node_name, **entities):
        node = pe.Node(DerivativesDataSink(base_directory=str(output_dir), **entities), node_name)
        workflow.connect([(inputnode, node, [("source_file", "source_file")])])
        return node

    ds_tacs = sink("ds_tacs", **D.REGION_TACS.sink())
    ds_ref_tacs = sink("ds_ref_tacs", **D.REF_TACS.sink(ref=ref_entity(ref_region)))
    ds_ref_mask = sink("ds_ref_mask", **D.REF_MASK.sink(ref=ref_entity(ref_region)))
    ds_kinpar = pe.MapNode(
        DerivativesDataSink(
            base_directory=str(output_dir), **D.KINPAR.sink(ref=ref_entity(ref_region))
        ),
        iterfield=["in_file", "model", "meta_dict"],
        name="ds_kinpar",
    )
    ds_maps = pe.MapNode(
        DerivativesDataSink(
            base_directory=str(output_dir), **D.MIMAP.sink(space="T1w", ref=ref_entity(ref_region))
        ),
        iterfield=["in_file", "model", "meas", "meta_dict"],
        name="ds_maps",
    )
    workflow.connect([
        (extract_tacs, ds_tacs, [("out_tsv", "in_file"), ("out_meta", "meta_dict")]),
        (reference, ds_ref_tacs, [("out_tsv", "in_file"), ("out_meta", "meta_dict")]),
        (reference, ds_ref_mask, [("out_mask", "in_file"), ("out_meta", "meta_dict")]),
        (inputnode, ds_kinpar, [("source_file", "source_file")]),
        (kinetics, ds_kinpar, [("out_files", "in_file"), ("out_models", "model"),
                               ("out_metas", "meta_dict")]),
        (inputnode, ds_maps, [("source_file", "source_file")]),
        (maps, ds_maps, [("out_maps", "in_file"), ("models", "model"), ("measures", "meas"),
                         ("out_metas", "meta_dict")]),
    ])  # fmt: skip
    if pet_space_maps:
        ds_maps_pet = pe.MapNode(
            DerivativesDataSink(
                base_directory=str(output_dir),
                **D.MIMAP.sink(space="pet", ref=ref_entity(ref_region)),
            ),
            iterfield=["in_file", "model", "meas", "meta_dict"],
            name="ds_maps_pet",
        )
        workflow.connect([
            (inputnode, ds_maps_pet, [("source_file", "source_file")]),
            (maps_pet, ds_maps_pet, [("out_maps", "in_file"), ("models", "model"),
                                     ("measures", "meas"), ("out_metas", "meta_dict")]),
        ])  # fmt: skip
    if pvc != "none":
        ds_tacs_pvc = sink("ds_tacs_pvc", **D.REGION_TACS_GTM.sink())
        ds_ref_tacs_pvc = sink("ds_ref_tacs_pvc", **D.REF_TACS_GTM.sink(ref=ref_entity(ref_region)))
        workflow.connect([
            (gtm, ds_tacs_pvc, [("out_tsv", "in_file"), ("out_meta", "meta_dict")]),
            (gtm, ds_ref_tacs_pvc, [("ref_tsv", "in_file"), ("out_meta", "meta_dict")]),
        ])  # fmt: skip
        ds_lesion_tacs_pvc = sink("ds_lesion_tacs_pvc", **D.LESION_TACS_PVC.sink())
        workflow.connect([(gtm, ds_lesion_tacs_pvc, [("lesion_tsv", "in_file"),
                                                     ("lesion_meta", "meta_dict")])])  # fmt: skip
    if blood is not None:
        ds_input_function = sink("ds_input_function", **D.INPUT_FUNCTION.sink())
        workflow.connect([
            (arterial, ds_input_function, [("out_tsv", "in_file"), ("out_meta", "meta_dict")]),
        ])  # fmt: skip
    if run_phenotypes:
        ds_lesions = sink("ds_lesions", **D.LESION_KINPAR.sink(ref=ref_entity(ref_region)))
        workflow.connect([
            (lesion_model[0], ds_lesions, [(lesion_model[1], "model")]),
            (phenotypes, ds_lesions, [("out_tsv", "in_file"), ("out_meta", "meta_dict")]),
        ])  # fmt: skip
    return workflow
