"""BIDS-Derivatives outputs of PET preprocessing (motion correction + co-registration)."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from tspo_bidsapp.interfaces.bids import DerivativesDataSink
from tspo_bidsapp.io import derivatives as D


def copy_beside(anchor_file: str, in_file: str, old_tail: str, new_tail: str) -> str:
    """Copy ``in_file`` next to ``anchor_file``, named as the anchor with ``old_tail``
    replaced by ``new_tail`` (keeps every source entity of the anchor's name)."""
    from pathlib import Path

    from tspo_bidsapp.writing import copy_file_atomic

    anchor = Path(anchor_file)
    if not anchor.name.endswith(old_tail):
        raise ValueError(f"{anchor}: expected a name ending in {old_tail}")
    out = anchor.with_name(anchor.name[: -len(old_tail)] + new_tail)
    copy_file_atomic(in_file, out)
    return str(out)


def init_pet_preproc_derivatives_wf(
    *, output_dir: str, name: str = "pet_preproc_derivatives_wf"
) -> pe.Workflow:
    """Store motion-correction and co-registration results in ``output_dir``.

    Writes, in ``sub-<p>/[ses-<s>/]pet/`` with the source entities kept:
    ``*_desc-hmc_petref.nii.gz``, ``*_desc-mc_pet.nii.gz`` (+ JSON with the PET timing),
    ``*_desc-confounds_timeseries.tsv`` (+ JSON), ``*_space-T1w_desc-hmc_petref.nii.gz``,
    ``*_from-petref_to-T1w_mode-image_xfm.txt`` and
    ``*_from-orig_to-petref_mode-image_desc-hmc_xfm.txt`` (one transform per frame).
    """
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(
        niu.IdentityInterface(
            fields=[
                "source_file",
                "petref",
                "pet_mc",
                "pet_metadata",
                "confounds",
                "confounds_metadata",
                "hmc_xforms",
                "itk_pet_to_t1w",
                "petref_t1w",
            ]
        ),
        name="inputnode",
    )
    outputnode = pe.Node(
        niu.IdentityInterface(
            fields=["petref", "pet_mc", "confounds", "petref_t1w", "xfm_pet_to_t1w", "xfm_hmc"]
        ),
        name="outputnode",
    )

    def sink(node_name: str, **entities) -> pe.Node:
        return pe.Node(
            DerivativesDataSink(base_directory=str(output_dir), **entities),
            name=node_name,
            run_without_submitting=True,
        )

    ds_petref = sink("ds_petref", **D.PETREF.sink())
    ds_pet_mc = sink("ds_pet_mc", **D.PET_MC.sink())
    ds_confounds = sink("ds_confounds", **D.CONFOUNDS.sink())
    ds_petref_t1w = sink("ds_petref_t1w", **D.PETREF_T1W.sink())
    # Transforms carry from-/to-/mode- entities: named from the stored petref's name.
    ds_xfm_pet_to_t1w = pe.Node(
        niu.Function(
            function=copy_beside,
            input_names=["anchor_file", "in_file", "old_tail", "new_tail"],
            output_names=["out_file"],
        ),
        name="ds_xfm_pet_to_t1w",
        run_without_submitting=True,
        overwrite=True,  # like a datasink: runs again whatever the work folder holds
    )
    ds_xfm_pet_to_t1w.inputs.old_tail = "_" + D.PETREF.tail()
    ds_xfm_pet_to_t1w.inputs.new_tail = D.XFM_PET_TO_T1W_TAIL
    ds_xfm_hmc = ds_xfm_pet_to_t1w.clone("ds_xfm_hmc")
    ds_xfm_hmc.inputs.new_tail = D.XFM_HMC_TAIL

    # fmt: off
    workflow.connect([
        (inputnode, ds_petref, [("source_file", "source_file"), ("petref", "in_file")]),
        (inputnode, ds_pet_mc, [("source_file", "source_file"), ("pet_mc", "in_file"),
                                ("pet_metadata", "meta_dict")]),
        (inputnode, ds_confounds, [("source_file", "source_file"), ("confounds", "in_file"),
                                   ("confounds_metadata", "meta_dict")]),
        (inputnode, ds_petref_t1w, [("source_file", "source_file"),
                                    ("petref_t1w", "in_file")]),
        (ds_petref, ds_xfm_pet_to_t1w, [("out_file", "anchor_file")]),
        (inputnode, ds_xfm_pet_to_t1w, [("itk_pet_to_t1w", "in_file")]),
        (ds_petref, ds_xfm_hmc, [("out_file", "anchor_file")]),
        (inputnode, ds_xfm_hmc, [("hmc_xforms", "in_file")]),
        (ds_petref, outputnode, [("out_file", "petref")]),
        (ds_pet_mc, outputnode, [("out_file", "pet_mc")]),
        (ds_confounds, outputnode, [("out_file", "confounds")]),
        (ds_petref_t1w, outputnode, [("out_file", "petref_t1w")]),
        (ds_xfm_pet_to_t1w, outputnode, [("out_file", "xfm_pet_to_t1w")]),
        (ds_xfm_hmc, outputnode, [("out_file", "xfm_hmc")]),
    ])
    # fmt: on
    return workflow
