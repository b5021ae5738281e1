"""Top-level workflow: one sub-workflow per participant, one ``pet_<run-id>_wf`` per PET run.

Per participant: the anatomical workflow (SAMSEG or supplied segmentations -> TSPO-MS regions).
Per PET run: a check of the frames against the validated sidecar (the image-wide mean TAC,
``*_desc-imagemean_tacs.tsv``), motion correction, co-registration to the preprocessed T1w,
one resampling of every frame to T1w (motion and co-registration composed) and quantification
(reference region, regional TACs and fits, voxel-wise maps, lesion phenotypes).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from nipype.interfaces.utility import IdentityInterface
from nipype.pipeline.engine import Node, Workflow

from tspo_bidsapp.config import WORKFLOW_NAME, Config
from tspo_bidsapp.interfaces.bids import DerivativesDataSink, SummarizePETRun
from tspo_bidsapp.interfaces.decay import DecayCorrectPET
from tspo_bidsapp.io import derivatives as D
from tspo_bidsapp.io.bids_input import PetRun, SubjectData
from tspo_bidsapp.io.participants import genotype_warnings

LOGGER = logging.getLogger("tspo_bidsapp")

# What the per-run summary is stored as (the group level looks for it).
RUN_SUMMARY_ENTITIES = D.RUN_SUMMARY.sink()
PET_INPUT_FIELDS = [
    "pet_file", "sidecar_file", "pet_metadata", "participant", "t1w_preproc", "brain_mask",
    "tspoms_dseg", "tspoms_tsv", "lesion_ids", "lesion_mask", "ref_candidate", "gm_mask",
    "wm_mask",
]  # fmt: skip


def init_tspo_wf(*, config: Config, subjects: list[SubjectData]) -> Workflow:
    """The whole participant-level run: one single-subject workflow per participant."""
    workflow = Workflow(name=WORKFLOW_NAME, base_dir=str(config.work_dir))
    for subject in subjects:
        workflow.add_nodes([init_single_subject_wf(config=config, subject=subject)])
    return workflow


def init_single_subject_wf(*, config: Config, subject: SubjectData) -> Workflow:
    """One participant: the anatomical workflow and one workflow per PET run."""
    from tspo_bidsapp.anat.regions import RegionParams
    from tspo_bidsapp.interfaces.quant import TSPOMSMasks
    from tspo_bidsapp.workflows.anat import init_anat_wf

    workflow = Workflow(name=f"sub_{subject.label}_wf")
    inputnode = Node(IdentityInterface(fields=["t1w", "flair", "t2w"]), name="inputnode")
    inputnode.inputs.t1w = str(subject.t1w)
    if subject.flair is not None:
        inputnode.inputs.flair = str(subject.flair)
    if subject.t2w is not None:
        inputnode.inputs.t2w = str(subject.t2w)
    anat_wf = init_anat_wf(
        subject=subject.label,
        has_flair=subject.flair is not None,
        derivatives=[str(p) for p in config.derivatives],
        omp_nthreads=config.omp_nthreads,
        output_dir=str(config.output_dir),
        region_params=RegionParams(min_lesion_volume_mm3=config.min_lesion_volume_mm3),
        lesion_threshold=config.lesion_threshold,
        lesion_detection=config.lesion_detection,
        has_t2w=subject.t2w is not None,
    )
    tspoms_masks = Node(TSPOMSMasks(), name="tspoms_masks")
    workflow.connect([
        (inputnode, anat_wf, [("t1w", "inputnode.t1w"), ("flair", "inputnode.flair"),
                              ("t2w", "inputnode.t2w")]),
        (anat_wf, tspoms_masks, [("outputnode.tspoms_dseg", "dseg_file"),
                                 ("outputnode.tspoms_tsv", "dseg_tsv")]),
    ])  # fmt: skip
    for run in subject.pet_runs:
        pet_wf = init_pet_wf(config=config, subject=subject, run=run)
        workflow.connect([
            (anat_wf, pet_wf, [
                ("outputnode.t1w_preproc", "inputnode.t1w_preproc"),
                ("outputnode.brain_mask", "inputnode.brain_mask"),
                ("outputnode.tspoms_dseg", "inputnode.tspoms_dseg"),
                ("outputnode.tspoms_tsv", "inputnode.tspoms_tsv"),
                ("outputnode.lesion_ids", "inputnode.lesion_ids"),
                ("outputnode.lesion_mask", "inputnode.lesion_mask"),
            ]),
            (tspoms_masks, pet_wf, [
                ("ref_candidate", "inputnode.ref_candidate"),
                ("gm_mask", "inputnode.gm_mask"),
                ("wm_mask", "inputnode.wm_mask"),
            ]),
        ])  # fmt: skip
    return workflow


def run_metadata(subject: SubjectData, run: PetRun) -> dict:
    """Participant facts and genotype flags stored with a run's summary."""
    info = subject.participant
    return {
        "participant_id": f"sub-{subject.label}",
        "group": None if info is None else info.group,
        "TSPOGenotype": None if info is None else info.tspo_genotype,
        "GenotypeFlags": genotype_warnings(info, run.sidecar.tracer),
        "ExcludeFromGroupStatistics": bool(
            info is not None
            and info.tspo_genotype == "LAB"
            and run.sidecar.tracer is not None
            and run.sidecar.tracer.genotype_sensitive
        ),
        "ValidationWarnings": list(run.sidecar.warnings),
    }


def init_pet_wf(*, config: Config, subject: SubjectData, run: PetRun) -> Workflow:
    """One PET run: motion correction, co-registration, one resampling to T1w, kinetics.

    The anatomy (``t1w_preproc``, ``brain_mask``, the ``seg-tspoms`` regions and masks, the
    lesions) arrives on ``inputnode`` from the participant's anatomical workflow.
    """
    from tspo_bidsapp.interfaces.ants import ResamplePETToT1w
    from tspo_bidsapp.io.thresholds import run_threshold
    from tspo_bidsapp.workflows.blood import run_models
    from tspo_bidsapp.workflows.pet import init_pet_coreg_wf, init_pet_hmc_wf
    from tspo_bidsapp.workflows.pet.outputs import init_pet_preproc_derivatives_wf
    from tspo_bidsapp.workflows.quant import init_pet_quant_wf, uses_threshold

    workflow = Workflow(name=f"pet_{run.run_id}_wf")
    inputnode = Node(IdentityInterface(fields=PET_INPUT_FIELDS), name="inputnode")
    inputnode.inputs.pet_file = str(run.pet_file)
    inputnode.inputs.sidecar_file = str(run.sidecar_file)
    inputnode.inputs.pet_metadata = json.loads(Path(run.sidecar_file).read_text())
    metadata = run_metadata(subject, run)
    inputnode.inputs.participant = {
        k: metadata[k] for k in ("participant_id", "group", "TSPOGenotype")
    } | {"GenotypeFlags": "; ".join(metadata["GenotypeFlags"]),
         "ExcludeFromGroupStatistics": metadata["ExcludeFromGroupStatistics"]}  # fmt: skip
    outputnode = Node(
        IdentityInterface(fields=["frames_tsv", "summary", "kinpar", "maps"]), name="outputnode"
    )

    # First step: decay-corrected to injection, sidecar on the injection time axis.
    decay = Node(DecayCorrectPET(), name="decay_correct")
    if config.injection_time_offset_s is not None:
        decay.inputs.injection_start_s = config.injection_time_offset_s
    workflow.connect([(inputnode, decay, [("pet_file", "pet_file"),
                                          ("sidecar_file", "sidecar_file")])])  # fmt: skip
    summarize = Node(SummarizePETRun(metadata=metadata), name="summarize")
    ds_frames = Node(
        DerivativesDataSink(
            base_directory=str(config.output_dir),
            source_file=str(run.pet_file),
            **RUN_SUMMARY_ENTITIES,
        ),
        name="ds_frames",
        run_without_submitting=True,
    )
    workflow.connect([
        (decay, summarize, [("out_file", "pet_file"), ("out_sidecar", "sidecar_file")]),
        (summarize, ds_frames, [("out_tsv", "in_file"), ("out_meta", "meta_dict")]),
        (summarize, outputnode, [("out_meta", "summary")]),
        (ds_frames, outputnode, [("out_file", "frames_tsv")]),
    ])  # fmt: skip
    static = run.sidecar.is_static
    models, window, ref_region = config.models, config.suvr_window_min, config.ref_region
    if static:  # one frame: no motion correction, SUVR (and SUV) instead of kinetic models
        timing = run.sidecar.timing
        models = ("SUVR",)
        if ref_region == "svca":  # SVCA classifies voxel TACs: it needs dynamic PET
            LOGGER.warning("%s: static PET: cerebellum reference instead of svca",
                           run.pet_file.name)  # fmt: skip
            ref_region = "cerebellum"
        window = window or (float(timing.start_min[0]), float(timing.end_min[0]))
        LOGGER.warning(
            "%s: static (single-frame) PET: no motion correction or kinetic modelling; SUVR "
            "over %g-%g min after injection (and SUV when weight and dose are known)",
            run.pet_file.name, *window,
        )  # fmt: skip
    hmc = config.hmc and not static
    if hmc and run.sidecar.timing.start_s.max() < config.hmc_start_time_s:
        LOGGER.warning(
            "%s: no frame starts after --hmc-start-time %g s: motion correction is skipped",
            run.pet_file.name,
            config.hmc_start_time_s,
        )
        hmc = False
    nthreads = config.omp_nthreads
    pet_hmc_wf = init_pet_hmc_wf(
        hmc_start_time=config.hmc_start_time_s,
        hmc_off=not hmc,
        fd_threshold=config.fd_threshold_mm,
        omp_nthreads=nthreads,
    )
    pet_coreg_wf = init_pet_coreg_wf(omp_nthreads=nthreads)
    pet_to_t1w = Node(
        ResamplePETToT1w(omp_nthreads=nthreads), name="pet_to_t1w", n_procs=nthreads, mem_gb=2.0
    )
    pet_preproc_derivatives_wf = init_pet_preproc_derivatives_wf(output_dir=str(config.output_dir))
    pet_preproc_derivatives_wf.inputs.inputnode.source_file = str(run.pet_file)
    blood = None
    if not static:  # plasma-input models where the run has blood
        models, blood = run_models(config, run)
    threshold, threshold_class = run_threshold(config, subject, run,
                                               needed=uses_threshold(config))  # fmt: skip
    pet_quant_wf = init_pet_quant_wf(
        output_dir=str(config.output_dir),
        ref_region=ref_region,
        svca_classes=None if config.svca_classes is None else str(config.svca_classes),
        models=models,
        suvr_window_min=window,
        logan_tstar_min=config.logan_tstar_min,
        k2prime=config.k2prime,
        active_threshold=threshold,
        active_k=config.active_k if config.active_threshold_file is not None else None,
        threshold_class=threshold_class,
        pvc=config.pvc,
        pet_fwhm_mm=config.pet_fwhm_mm,
        phenotype_rule=config.phenotype_rule,
        phenotype_values=config.phenotype_values,
        pet_space_maps=True,
        blood=blood,
        plasma_vb=config.plasma_vb,
        parent_fraction_model=config.parent_fraction_model,
        voxelwise_estimator=config.voxelwise_estimator,
    )
    pet_quant_wf.inputs.inputnode.source_file = str(run.pet_file)
    workflow.connect([
        (decay, pet_hmc_wf, [("out_file", "inputnode.pet_file"),
                             ("out_meta", "inputnode.pet_metadata")]),
        (pet_hmc_wf, pet_coreg_wf, [("outputnode.petref", "inputnode.petref")]),
        (inputnode, pet_coreg_wf, [("t1w_preproc", "inputnode.t1w_preproc"),
                                   ("brain_mask", "inputnode.t1w_mask")]),
        (decay, pet_to_t1w, [("out_file", "in_file")]),
        (inputnode, pet_to_t1w, [("t1w_preproc", "t1w_ref")]),
        (pet_hmc_wf, pet_to_t1w, [("outputnode.hmc_xforms", "hmc_xforms")]),
        (pet_coreg_wf, pet_to_t1w, [("outputnode.itk_pet_to_t1w", "coreg_xform")]),
        (pet_hmc_wf, pet_preproc_derivatives_wf, [
            ("outputnode.petref", "inputnode.petref"),
            ("outputnode.pet_mc", "inputnode.pet_mc"),
            ("outputnode.pet_metadata", "inputnode.pet_metadata"),
            ("outputnode.confounds", "inputnode.confounds"),
            ("outputnode.confounds_metadata", "inputnode.confounds_metadata"),
            ("outputnode.hmc_xforms", "inputnode.hmc_xforms"),
        ]),
        (pet_coreg_wf, pet_preproc_derivatives_wf, [
            ("outputnode.itk_pet_to_t1w", "inputnode.itk_pet_to_t1w"),
            ("outputnode.petref_t1w", "inputnode.petref_t1w"),
        ]),
        (pet_to_t1w, pet_quant_wf, [("out_file", "inputnode.pet_t1w")]),
        (pet_hmc_wf, pet_quant_wf, [("outputnode.pet_mc", "inputnode.pet_file"),
                                    ("outputnode.petref", "inputnode.petref")]),
        (pet_coreg_wf, pet_quant_wf, [("outputnode.itk_pet_to_t1w", "inputnode.coreg_xform")]),
        (decay, pet_quant_wf, [("out_sidecar", "inputnode.sidecar_file")]),
        (inputnode, pet_quant_wf, [
            ("tspoms_dseg", "inputnode.tspoms_dseg"),
            ("tspoms_tsv", "inputnode.tspoms_tsv"),
            ("lesion_ids", "inputnode.lesion_ids"),
            ("lesion_mask", "inputnode.lesion_mask"),
            ("ref_candidate", "inputnode.ref_candidate"),
            ("brain_mask", "inputnode.brain_mask"),
            ("gm_mask", "inputnode.gm_mask"),
            ("wm_mask", "inputnode.wm_mask"),
            ("participant", "inputnode.participant"),
        ]),
        (pet_quant_wf, outputnode, [("outputnode.kinpar", "kinpar"),
                                    ("outputnode.maps", "maps")]),
    ])  # fmt: skip
    if static:
        _connect_suv(workflow, config, subject, run, pet_to_t1w, pet_quant_wf)
    return workflow


def _connect_suv(workflow, config, subject, run, pet_to_t1w, pet_quant_wf) -> None:
    """SUV of a static run when body weight and injected radioactivity are known."""
    from tspo_bidsapp.quant.suv import suv_inputs
    from tspo_bidsapp.workflows.pet.static import init_pet_suv_wf

    info = subject.participant
    weight = None if info is None else info.extra.get("weight")
    meta = json.loads(Path(run.sidecar_file).read_text())
    suv, reason = suv_inputs(meta, weight, path=run.sidecar_file)
    if suv is None:
        LOGGER.warning("%s: no SUV (%s); SUVR only", run.pet_file.name, reason)
        return
    suv_wf = init_pet_suv_wf(
        output_dir=str(config.output_dir), source_file=str(run.pet_file), suv=suv
    )
    workflow.connect([
        (pet_to_t1w, suv_wf, [("out_file", "inputnode.pet_t1w")]),
        (pet_quant_wf, suv_wf, [("outputnode.tacs", "inputnode.tacs")]),
        (workflow.get_node("inputnode"), suv_wf, [("brain_mask", "inputnode.brain_mask")]),
    ])  # fmt: skip
