"""Rigid PET -> T1w co-registration (nipype workflow)."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from tspo_bidsapp.interfaces.ants import PETCoregistration


def init_pet_coreg_wf(
    *,
    use_brain_mask: bool = True,
    omp_nthreads: int = 1,
    seed: int = 20120401,
    name: str = "pet_coreg_wf",
) -> pe.Workflow:
    """Build the PET -> T1w co-registration workflow (ANTsPy rigid, Mattes MI).

    Inputs: ``petref`` (from motion correction), ``t1w_preproc``, ``t1w_mask`` (brain
    mask on the T1w grid; used when ``use_brain_mask``).
    Outputs: ``itk_pet_to_t1w`` (ITK text file mapping T1w points to petref points, i.e.
    the ``from-petref_to-T1w_mode-image`` transform) and ``petref_t1w`` (petref resampled
    onto the T1w grid). Compose it with the motion transforms to bring any frame to T1w in
    one interpolation (:class:`tspo_bidsapp.interfaces.ants.ResamplePETToT1w`).
    """
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(
        niu.IdentityInterface(fields=["petref", "t1w_preproc", "t1w_mask"]), name="inputnode"
    )
    outputnode = pe.Node(
        niu.IdentityInterface(fields=["itk_pet_to_t1w", "petref_t1w"]), name="outputnode"
    )
    pet_coreg = pe.Node(
        PETCoregistration(omp_nthreads=omp_nthreads, seed=seed),
        name="pet_coreg",
        n_procs=omp_nthreads,
        mem_gb=1.0,
    )
    # fmt: off
    workflow.connect([
        (inputnode, pet_coreg, [("petref", "petref"), ("t1w_preproc", "t1w")]),
        (pet_coreg, outputnode, [
            ("itk_transform", "itk_pet_to_t1w"),
            ("petref_t1w", "petref_t1w"),
        ]),
    ])
    if use_brain_mask:
        workflow.connect([(inputnode, pet_coreg, [("t1w_mask", "brain_mask")])])
    # fmt: on
    return workflow
