"""Top-level workflow: one sub-workflow per participant, one ``pet_<run-id>_wf`` per PET run.

The per-run workflow takes the PET image, its sidecar and the participant's T1w/FLAIR on its
``inputnode``; for now it checks the PET frames against the validated sidecar and stores the
frame timing with the image-wide mean of every frame (``*_desc-imagemean_tacs.tsv`` + JSON).
Motion correction, co-registration, anatomy and kinetics plug into the same graph.
"""

from __future__ import annotations

from nipype.interfaces.utility import IdentityInterface
from nipype.pipeline.engine import Node, Workflow

from tspo_bidsapp.config import WORKFLOW_NAME, Config
from tspo_bidsapp.interfaces.bids import DerivativesDataSink, SummarizePETRun
from tspo_bidsapp.io.bids_input import PetRun, SubjectData
from tspo_bidsapp.io.participants import genotype_warnings

# What the per-run summary is stored as (the group level looks for it).
RUN_SUMMARY_ENTITIES = {"desc": "imagemean", "suffix": "tacs", "extension": ".tsv"}


def init_tspo_wf(*, config: Config, subjects: list[SubjectData]) -> Workflow:
    """The whole participant-level run: one single-subject workflow per participant."""
    workflow = Workflow(name=WORKFLOW_NAME, base_dir=str(config.work_dir))
    for subject in subjects:
        workflow.add_nodes([init_single_subject_wf(config=config, subject=subject)])
    return workflow


def init_single_subject_wf(*, config: Config, subject: SubjectData) -> Workflow:
    """One participant: anatomy on ``inputnode`` (t1w, flair) and one workflow per PET run."""
    workflow = Workflow(name=f"sub_{subject.label}_wf")
    inputnode = Node(IdentityInterface(fields=["t1w", "flair"]), name="inputnode")
    inputnode.inputs.t1w = str(subject.t1w)
    if subject.flair is not None:
        inputnode.inputs.flair = str(subject.flair)
    for run in subject.pet_runs:
        pet_wf = init_pet_wf(config=config, subject=subject, run=run)
        workflow.connect(
            [(inputnode, pet_wf, [("t1w", "inputnode.t1w"), ("flair", "inputnode.flair")])]
        )
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
    """One PET run: check its frames against the sidecar and store the timing summary."""
    workflow = Workflow(name=f"pet_{run.run_id}_wf")
    inputnode = Node(
        IdentityInterface(fields=["pet_file", "sidecar_file", "t1w", "flair"]), name="inputnode"
    )
    inputnode.inputs.pet_file = str(run.pet_file)
    inputnode.inputs.sidecar_file = str(run.sidecar_file)
    outputnode = Node(IdentityInterface(fields=["frames_tsv", "summary"]), name="outputnode")

    summarize = Node(SummarizePETRun(metadata=run_metadata(subject, run)), name="summarize")
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
        (inputnode, summarize, [("pet_file", "pet_file"), ("sidecar_file", "sidecar_file")]),
        (summarize, ds_frames, [("out_tsv", "in_file"), ("out_meta", "meta_dict")]),
        (summarize, outputnode, [("out_meta", "summary")]),
        (ds_frames, outputnode, [("out_file", "frames_tsv")]),
    ])  # fmt: skip
    return workflow
