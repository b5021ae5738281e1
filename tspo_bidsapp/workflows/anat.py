"""Anatomical workflow: whole-brain + MS-lesion segmentation and the TSPO-MS region set.

Default: SAMSEG on T1w + FLAIR in lesion mode, then a FLAIR-hyperintensity stage that adds the
small lesions SAMSEG misses (``lesion_detection="samseg+flair"``; SAMSEG's own lesion mask is kept
as ``desc-samseg``). Segmentations and lesion masks found in
``--derivatives`` directories replace the computed ones (decided when the workflow is built); the
sidecars of the stored outputs and the ``sources`` report say which was used.
"""

from __future__ import annotations

import logging

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from tspo_bidsapp.anat.lesion_detect import DEFAULT_METHOD, METHODS
from tspo_bidsapp.anat.regions import DEFAULT_REGION_PARAMS, RegionParams
from tspo_bidsapp.anat.samseg import DEFAULT_LESION_THRESHOLD, DEFAULT_SEED
from tspo_bidsapp.anat.supplied import SuppliedAnat, find_supplied
from tspo_bidsapp.interfaces.anat import (
    AnatSourcesReport,
    DetectLesions,
    EmptyLesionMask,
    ImportLesionMask,
    ImportSegmentation,
    N4BiasFieldCorrection,
    TSPOMSRegions,
)
from tspo_bidsapp.interfaces.samseg import Samseg
from tspo_bidsapp.io import derivatives as D

LOGGER = logging.getLogger("tspo_bidsapp.anat")

OUTPUT_FIELDS = [
    "t1w_preproc", "brain_mask", "dseg", "dseg_tsv", "lesion_mask", "lesion_probseg",
    "lesion_ids", "lesion_tsv", "tspoms_dseg", "tspoms_tsv", "morph_tsv", "sources_report",
    "samseg_lesion_mask",
]  # fmt: skip


def anat_sources(
    supplied: SuppliedAnat, *, has_flair: bool, lesion_detection: str = DEFAULT_METHOD
) -> tuple[dict, list[str]]:
    """Which segmentation and lesion mask the workflow uses, and the warnings that go with it."""
    warnings: list[str] = []
    mode = "T1w+FLAIR, lesion mode" if has_flair else "T1w only"
    if supplied.dseg is not None:
        seg = f"supplied: {supplied.dseg} ({supplied.dseg_tsv})"
    else:
        seg = f"computed: SAMSEG ({mode})"
    if supplied.lesion_mask is not None:
        lesion = f"supplied: {supplied.lesion_mask}"
    elif has_flair and lesion_detection == "samseg+flair":
        lesion = (
            "computed: SAMSEG lesion mode (T1w+FLAIR) + FLAIR hyperintensity in WM "
            "(lesion_detection samseg+flair)"
        )
    elif has_flair:
        lesion = "computed: SAMSEG lesion mode (T1w+FLAIR, FLAIR hyperintense)"
    else:
        lesion = "none"
        warnings.append(
            "No FLAIR and no supplied lesion mask: lesions were NOT segmented; lesion, "
            "perilesional and NAWM regions treat all cerebral WM as lesion-free."
        )
    if not has_flair and supplied.lesion_mask is not None:
        warnings.append("No FLAIR: T1w-only SAMSEG; lesions come from the supplied mask only.")
    return {D.SOURCES_SEGMENTATION_KEY: seg, D.SOURCES_LESION_KEY: lesion}, warnings


def init_anat_wf(
    *,
    subject: str,
    session: str | None = None,
    has_flair: bool = True,
    derivatives: list[str] | tuple[str, ...] = (),
    omp_nthreads: int = 1,
    output_dir: str | None = None,
    region_params: RegionParams = DEFAULT_REGION_PARAMS,
    lesion_threshold: float = DEFAULT_LESION_THRESHOLD,
    seed: int = DEFAULT_SEED,
    lesion_detection: str = DEFAULT_METHOD,
    has_t2w: bool = False,
    name: str = "anat_wf",
) -> pe.Workflow:
    """Build the anatomical workflow of one subject/session.

    Inputs: ``inputnode.t1w`` and (when ``has_flair``) ``inputnode.flair`` on the T1w grid;
    ``inputnode.t2w`` (when ``has_t2w``, T1w space) sharpens the FLAIR stage of ``lesion_detection``
    (one of :data:`~tspo_bidsapp.anat.lesion_detect.METHODS`).
    SAMSEG runs unless a supplied segmentation and (with FLAIR) a supplied lesion mask make it
    unnecessary. Outputs are in T1w space; with ``output_dir`` they are stored as BIDS-Derivatives.
    """
    if lesion_detection not in METHODS:
        raise ValueError(f"lesion_detection must be one of {METHODS}, got {lesion_detection!r}")
    supplied = find_supplied(list(derivatives), subject, session) if derivatives else SuppliedAnat()
    sources, warnings = anat_sources(
        supplied, has_flair=has_flair, lesion_detection=lesion_detection
    )
    for text in warnings:
        LOGGER.warning("sub-%s: %s", subject, text)
    run_samseg = supplied.dseg is None or (has_flair and supplied.lesion_mask is None)

    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=["t1w", "flair", "t2w"]), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=OUTPUT_FIELDS), name="outputnode")

    tspoms = pe.Node(
        TSPOMSRegions(
            min_lesion_volume_mm3=region_params.min_lesion_volume_mm3,
            connectivity=region_params.connectivity,
            shell_edges_mm=tuple(region_params.shell_edges_mm),
            cerebellum_erosion_mm=region_params.cerebellum_erosion_mm,
            sources=sources,
        ),
        name="tspoms",
    )
    report_sources = pe.Node(
        AnatSourcesReport(sources=sources, warnings=warnings), name="report_sources"
    )
    workflow.connect([
        (inputnode, tspoms, [("t1w", "reference")]),
        (tspoms, outputnode, [
            ("tspoms_dseg", "tspoms_dseg"), ("tspoms_tsv", "tspoms_tsv"),
            ("lesion_ids", "lesion_ids"), ("lesion_mask", "lesion_mask"),
            ("lesion_tsv", "lesion_tsv"), ("morph_tsv", "morph_tsv"),
        ]),
        (report_sources, outputnode, [("out_report", "sources_report")]),
    ])  # fmt: skip

    if run_samseg:
        samseg = pe.Node(
            Samseg(threads=omp_nthreads, seed=seed, lesion_threshold=lesion_threshold),
            name="samseg",
            n_procs=omp_nthreads,
        )
        workflow.connect([(inputnode, samseg, [("t1w", "t1w")])])
        if has_flair:
            workflow.connect([(inputnode, samseg, [("flair", "flair")])])
        workflow.connect([(samseg, outputnode, [("t1w_preproc", "t1w_preproc")])])

    if supplied.dseg is not None:
        import_dseg = pe.Node(
            ImportSegmentation(dseg=str(supplied.dseg), dseg_tsv=str(supplied.dseg_tsv)),
            name="import_dseg",
        )
        workflow.connect([
            (inputnode, import_dseg, [("t1w", "reference")]),
            (import_dseg, tspoms, [("dseg", "dseg")]),
            (import_dseg, outputnode, [
                ("dseg", "dseg"), ("dseg_tsv", "dseg_tsv"), ("brain_mask", "brain_mask"),
            ]),
        ])  # fmt: skip
        if not run_samseg:
            n4 = pe.Node(N4BiasFieldCorrection(), name="n4")
            workflow.connect([
                (inputnode, n4, [("t1w", "in_file")]),
                (import_dseg, n4, [("brain_mask", "mask")]),
                (n4, outputnode, [("out_file", "t1w_preproc")]),
            ])  # fmt: skip
    else:
        workflow.connect([
            (samseg, tspoms, [("dseg", "dseg")]),
            (samseg, outputnode, [
                ("dseg", "dseg"), ("dseg_tsv", "dseg_tsv"), ("brain_mask", "brain_mask"),
            ]),
        ])  # fmt: skip

    if supplied.lesion_mask is not None:
        import_lesion = pe.Node(
            ImportLesionMask(lesion_mask=str(supplied.lesion_mask)), name="import_lesion"
        )
        workflow.connect([
            (inputnode, import_lesion, [("t1w", "reference")]),
            (import_lesion, tspoms, [("lesion_mask", "lesion_mask")]),
        ])  # fmt: skip
    elif has_flair and lesion_detection == "samseg+flair":
        detect = pe.Node(DetectLesions(), name="detect_lesions")
        workflow.connect([
            (samseg, detect, [
                ("dseg", "dseg"), ("lesion_probseg", "lesion_probseg"),
                ("flair_preproc", "flair"), ("t1w_preproc", "t1w"),
            ]),
            (detect, tspoms, [("lesion_mask", "lesion_mask")]),
            (samseg, outputnode, [
                ("lesion_probseg", "lesion_probseg"), ("lesion_mask", "samseg_lesion_mask"),
            ]),
        ])  # fmt: skip
        if has_t2w:
            workflow.connect([(inputnode, detect, [("t2w", "t2w")])])
    elif has_flair:
        workflow.connect([
            (samseg, tspoms, [("lesion_mask", "lesion_mask")]),
            (samseg, outputnode, [("lesion_probseg", "lesion_probseg")]),
        ])  # fmt: skip
    else:
        empty_lesion = pe.Node(EmptyLesionMask(), name="empty_lesion")
        workflow.connect([
            (inputnode, empty_lesion, [("t1w", "reference")]),
            (empty_lesion, tspoms, [("lesion_mask", "lesion_mask")]),
        ])  # fmt: skip

    if output_dir:
        lesion_probseg = has_flair and supplied.lesion_mask is None
        _connect_datasinks(
            workflow, output_dir, sources, lesion_probseg=lesion_probseg,
            samseg_mask=lesion_probseg and lesion_detection == "samseg+flair",
        )  # fmt: skip
    return workflow


def _connect_datasinks(
    workflow: pe.Workflow, output_dir: str, sources: dict, *, lesion_probseg: bool,
    samseg_mask: bool = False,
) -> None:  # fmt: skip
    """Store the outputs under ``OUTPUT_DIR/sub-<p>/[ses-<s>/]anat/``."""
    from tspo_bidsapp.interfaces.bids import DerivativesDataSink

    inputnode = workflow.get_node("inputnode")
    outputnode = workflow.get_node("outputnode")
    seg_meta = {D.SEGMENTATION_SOURCE_KEY: sources[D.SOURCES_SEGMENTATION_KEY]}
    lesion_meta = {D.LESION_SOURCE_KEY: sources[D.SOURCES_LESION_KEY]}
    specs = [
        ("ds_t1w_preproc", "t1w_preproc", D.T1W_PREPROC.sink(), {"SkullStripped": False}),
        ("ds_brain_mask", "brain_mask", D.BRAIN_MASK.sink(), {"Type": "Brain"}),
        ("ds_dseg", "dseg", D.DSEG.sink(), seg_meta),
        ("ds_dseg_tsv", "dseg_tsv", D.DSEG_TSV.sink(), None),
        ("ds_lesion_mask", "lesion_mask", D.LESION_MASK.sink(), lesion_meta),
        ("ds_lesion_ids", "lesion_ids", D.LESION_DSEG.sink(), lesion_meta),
        ("ds_lesion_tsv", "lesion_tsv", D.LESION_MORPH.sink(), None),
        ("ds_tspoms_dseg", "tspoms_dseg", D.TSPOMS_DSEG.sink(), {**seg_meta, **lesion_meta}),
        ("ds_tspoms_tsv", "tspoms_tsv", D.TSPOMS_TSV.sink(), None),
        ("ds_morph_tsv", "morph_tsv", D.TSPOMS_MORPH.sink(), None),
        ("ds_report_sources", "sources_report", D.ANAT_SOURCES.sink(), None),
    ]  # fmt: skip
    if lesion_probseg:
        specs.append(
            (
                "ds_lesion_probseg",
                "lesion_probseg",
                D.LESION_PROBSEG.sink(),
                lesion_meta,
            )
        )
    if samseg_mask:  # SAMSEG's own lesion label, kept for comparison
        specs.append((
            "ds_samseg_lesion_mask", "samseg_lesion_mask",
            D.LESION_MASK_SAMSEG.sink(),
            {"LesionMaskSource": "computed: SAMSEG lesion mode alone (label 99)"},
        ))  # fmt: skip
    for node_name, field, entities, meta in specs:
        sink = DerivativesDataSink(base_directory=output_dir, datatype="anat", **entities)
        if meta is not None:
            sink.inputs.meta_dict = meta
        node = pe.Node(sink, name=node_name, run_without_submitting=True)
        workflow.connect([
            (inputnode, node, [("t1w", "source_file")]),
            (outputnode, node, [(field, "in_file")]),
        ])  # fmt: skip
