"""Static (single-frame) PET: the SUV map and regional SUV table beside the SUVR outputs.

A static run goes through the same steps as a dynamic one (decay correction to injection,
co-registration, one resampling to T1w, regions, reference, SUVR as the only model, lesion
phenotypes from the SUVR map); this workflow adds SUV when body weight and injected
radioactivity are known (:func:`tspo_bidsapp.quant.suv.suv_inputs`).
"""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from tspo_bidsapp.interfaces.bids import DerivativesDataSink
from tspo_bidsapp.interfaces.suv import StaticSUV
from tspo_bidsapp.io import derivatives as D


def init_pet_suv_wf(
    *, output_dir: str, source_file: str, suv: dict, name: str = "pet_suv_wf"
) -> pe.Workflow:
    """Inputs: ``pet_t1w``, ``tacs`` (regional TAC table), ``brain_mask``; ``suv``: the
    keyword inputs of :class:`~tspo_bidsapp.interfaces.suv.StaticSUV` (weight, dose, units)."""
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(
        niu.IdentityInterface(fields=["pet_t1w", "tacs", "brain_mask"]), name="inputnode"
    )
    node = pe.Node(StaticSUV(**suv), name="suv")
    ds_map = pe.Node(
        DerivativesDataSink(base_directory=output_dir, source_file=source_file,
                            **D.SUV_MAP.sink()),
        name="ds_suv_map",
    )  # fmt: skip
    ds_table = pe.Node(
        DerivativesDataSink(base_directory=output_dir, source_file=source_file,
                            **D.SUV_KINPAR.sink()),
        name="ds_suv_table",
    )  # fmt: skip
    workflow.connect([
        (inputnode, node, [("pet_t1w", "pet_file"), ("tacs", "tacs_tsv"),
                           ("brain_mask", "brain_mask")]),
        (node, ds_map, [("out_map", "in_file"), ("out_meta", "meta_dict")]),
        (node, ds_table, [("out_tsv", "in_file"), ("out_meta", "meta_dict")]),
    ])  # fmt: skip
    return workflow
