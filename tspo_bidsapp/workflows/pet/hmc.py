"""Frame-wise head-motion correction of dynamic PET (nipype workflow)."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from tspo_bidsapp.interfaces.ants import PETMotionCorrection
from tspo_bidsapp.registration.confounds import DEFAULT_FD_THRESHOLD_MM
from tspo_bidsapp.registration.hmc import DEFAULT_HMC_START_TIME_S
from tspo_bidsapp.registration.images import DEFAULT_SEED


def init_pet_hmc_wf(
    *,
    hmc_start_time: float = DEFAULT_HMC_START_TIME_S,
    hmc_off: bool = False,
    fd_threshold: float = DEFAULT_FD_THRESHOLD_MM,
    smooth_fwhm: float = 6.0,
    omp_nthreads: int = 1,
    seed: int = DEFAULT_SEED,
    name: str = "pet_hmc_wf",
) -> pe.Workflow:
    """Build the motion-correction workflow.

    Frames starting before ``hmc_start_time`` (s) take the transform of the first
    registered frame; the others are registered rigidly (ANTsPy, mutual information) to a
    time-weighted average of the registered frames, rebuilt once. ``hmc_off`` keeps every
    transform at identity. Frames with framewise displacement above ``fd_threshold`` (mm)
    are flagged in the confounds table and logged.

    Inputs: ``pet_file`` (4D PET), ``pet_metadata`` (sidecar dict).
    Outputs: ``pet_mc`` (4D, PET space), ``petref``, ``confounds`` (TSV),
    ``confounds_metadata`` (dict), ``hmc_xforms`` (one ITK text file, one transform per
    frame, petref -> frame), ``hmc_xforms_list`` (one file per frame), ``pet_metadata``
    (timing fields to copy into the corrected PET's sidecar).
    """
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(
        niu.IdentityInterface(fields=["pet_file", "pet_metadata"]), name="inputnode"
    )
    outputnode = pe.Node(
        niu.IdentityInterface(
            fields=[
                "pet_mc",
                "petref",
                "confounds",
                "confounds_metadata",
                "hmc_xforms",
                "hmc_xforms_list",
                "pet_metadata",
            ]
        ),
        name="outputnode",
    )
    pet_hmc = pe.Node(
        PETMotionCorrection(
            start_time_s=hmc_start_time,
            enabled=not hmc_off,
            fd_threshold_mm=fd_threshold,
            smooth_fwhm_mm=smooth_fwhm,
            omp_nthreads=omp_nthreads,
            seed=seed,
        ),
        name="pet_hmc",
        n_procs=omp_nthreads,
        mem_gb=1.0,
    )
    # fmt: off
    workflow.connect([
        (inputnode, pet_hmc, [("pet_file", "in_file"), ("pet_metadata", "metadata")]),
        (pet_hmc, outputnode, [
            ("out_file", "pet_mc"),
            ("petref", "petref"),
            ("confounds", "confounds"),
            ("confounds_metadata", "confounds_metadata"),
            ("xforms", "hmc_xforms"),
            ("xforms_list", "hmc_xforms_list"),
            ("pet_metadata", "pet_metadata"),
        ]),
    ])
    # fmt: on
    return workflow
