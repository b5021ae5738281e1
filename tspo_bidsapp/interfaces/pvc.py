"""Thin nipype interfaces: partial-volume correction and lesion phenotypes.

Science in :mod:`tspo_bidsapp.quant.pvc`, :mod:`~tspo_bidsapp.quant.pvc_voxel`,
:mod:`~tspo_bidsapp.quant.phenotypes` and :mod:`~tspo_bidsapp.quant.phenotypes_regional`.
All images given to one interface share one grid (the T1w grid).
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    Str,
    TraitedSpec,
    isdefined,
    traits,
)

from tspo_bidsapp.anat.labels import read_dseg_tsv
from tspo_bidsapp.interfaces.quant import _load, _model_settings, _save, _timing
from tspo_bidsapp.io import derivatives as D
from tspo_bidsapp.kinetics.logan import DEFAULT_TSTAR_MIN
from tspo_bidsapp.kinetics.registry import model_entity
from tspo_bidsapp.quant.phenotypes import PhenotypeRule, lesion_phenotypes, phenotype_summary
from tspo_bidsapp.quant.phenotypes_regional import (
    SHELL_REGION,
    dvr_of_tacs,
    lesion_tac_columns,
    regional_lesion_phenotypes,
)
from tspo_bidsapp.quant.pvc import PVC_NAMES, gtm_correct, resampled_fwhm_xyz
from tspo_bidsapp.quant.pvc_voxel import (
    LESION_RIM_MM,
    lesion_tacs,
    parent_tacs,
    pvc_regions,
    voxel_pvc,
)
from tspo_bidsapp.quant.tacs import read_tacs_tsv, write_tacs_tsv

VOXEL_COUNTS_KEY = "VoxelCounts"  # lesion TAC table sidecar: voxels of every column
NAWM_REGION = "NAWM"  # comparison region when the perilesional shell is too small


class _RuleInputSpec(BaseInterfaceInputSpec):
    threshold_dvr = traits.Float(desc="voxel activity threshold (DVR; the voxel rule needs it)")
    rule = traits.Enum("voxel", "lesion", usedefault=True, desc="phenotype rule")
    correction = Str("none", usedefault=True, desc="partial-volume correction of the values")
    threshold_source = Str("user", usedefault=True, desc="'user' or 'healthy-controls'")
    threshold_k = traits.Float(desc="k of mean + k SD, when derived from controls")
    threshold_class = Str(desc="binding class (HAB/MAB) whose controls gave threshold_dvr")
    min_active_fraction = traits.Float(0.5, usedefault=True, desc="active core/rim fraction")
    rim_mm = traits.Float(2.0, usedefault=True, desc="rim width (mm)")
    participant = traits.Dict(Str, traits.Any, desc="genotype and flags for every row")


class _PhenotypeInputSpec(_RuleInputSpec):
    dvr_file = File(exists=True, mandatory=True, desc="DVR map on the lesion-id grid")
    lesion_ids = File(exists=True, mandatory=True, desc="one integer id per lesion")
    wm_mask = File(exists=True, mandatory=True, desc="white-matter mask (rims stay within it)")


class _PhenotypeOutputSpec(TraitedSpec):
    out_tsv = File(exists=True, desc="one row per lesion with its phenotype")
    summary = traits.Dict(desc="counts, proportions, Polvinen predictor")
    out_meta = traits.Dict(desc="rule parameters and summary for the sidecar")


def _rule(inp, values: str) -> PhenotypeRule:
    return PhenotypeRule(
        inp.threshold_dvr if isdefined(inp.threshold_dvr) else None,
        inp.min_active_fraction, inp.rim_mm, inp.threshold_source,
        inp.threshold_k if isdefined(inp.threshold_k) else None,
        method=inp.rule, correction=inp.correction,
        threshold_class=inp.threshold_class if isdefined(inp.threshold_class) else None,
        values=values,
    )  # fmt: skip


def _write_table(self, runtime, table, rule: PhenotypeRule, extra: dict | None = None) -> None:
    for key, value in (
        self.inputs.participant if isdefined(self.inputs.participant) else {}
    ).items():
        table[key] = value
    path = Path(runtime.cwd) / "desc-lesions_kinpar.tsv"
    table.to_csv(path, **D.TSV_FORMAT)
    summary = phenotype_summary(table)
    self._results.update(out_tsv=str(path), summary=summary)
    meta = {D.PHENOTYPE_RULE_KEY: rule.as_dict(), "Summary": summary, **(extra or {})}
    self._results["out_meta"] = json.loads(json.dumps(meta))


class LesionPhenotypes(SimpleInterface):
    """Per-lesion core/rim activity and phenotype from a DVR map (``quant.phenotypes``)."""

    input_spec = _PhenotypeInputSpec
    output_spec = _PhenotypeOutputSpec

    def _run_interface(self, runtime):
        inp = self.inputs
        img, dvr = _load(inp.dvr_file)
        ids = _load(inp.lesion_ids, np.int32)[1]
        wm = _load(inp.wm_mask, np.uint8)[1] > 0
        rule = _rule(inp, "map")
        zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
        _write_table(self, runtime, lesion_phenotypes(dvr, ids, wm, zooms, rule), rule)
        return runtime


class _RegionalPhenotypeInputSpec(_RuleInputSpec):
    lesion_tsv = File(exists=True, mandatory=True, desc="corrected lesion core/rim + shell TACs")
    voxel_counts = traits.Dict(Str, traits.Int, mandatory=True, desc="voxels of every column")
    voxel_ml = traits.Float(mandatory=True, desc="voxel volume (mL) of the lesion-id grid")
    tacs_tsv = File(exists=True, mandatory=True, desc="corrected region TACs (k2' rule)")
    ref_tsv = File(exists=True, mandatory=True, desc="corrected reference TAC")
    preference = traits.List(Str, mandatory=True, desc="DVR models, first available is used")
    tstar_min = traits.Float(DEFAULT_TSTAR_MIN, usedefault=True, desc="Logan t* (minutes)")
    suvr_window_min = traits.Tuple(traits.Float, traits.Float, desc="--suvr-window (minutes)")
    k2prime = traits.Float(desc="--k2prime (1/min); default: the registry's regional rule")
    min_shell_voxels = traits.Int(10, usedefault=True, desc="smaller shell: compare with NAWM")


class _RegionalPhenotypeOutputSpec(_PhenotypeOutputSpec):
    model = Str(desc="model entity of the DVR values")


class RegionalLesionPhenotypes(SimpleInterface):
    """Phenotypes from per-lesion corrected TACs (``quant.phenotypes_regional``)."""

    input_spec = _RegionalPhenotypeInputSpec
    output_spec = _RegionalPhenotypeOutputSpec

    def _run_interface(self, runtime):
        inp = self.inputs
        timing, tacs = read_tacs_tsv(inp.lesion_tsv)
        _, regions = read_tacs_tsv(inp.tacs_tsv)
        _, ref = read_tacs_tsv(inp.ref_tsv)
        model = inp.preference[0]
        settings = _model_settings(
            inp, (model,), k2prime=inp.k2prime if isdefined(inp.k2prime) else None
        )
        dvr, info = dvr_of_tacs(timing, ref["reference"], tacs, regions, model, settings)
        counts = dict(inp.voxel_counts)
        shell = SHELL_REGION
        if counts.get(shell, 0) < inp.min_shell_voxels:
            shell = NAWM_REGION
        rule = _rule(inp, "regional")
        table = regional_lesion_phenotypes(
            dvr, counts, inp.voxel_ml, (dvr.get(shell, np.nan), counts.get(shell, 0)), rule
        )
        k2p = {k: v for k, v in info.items() if k.startswith("k2prime")}
        extra = {"LesionValues": {"Model": info["model"], "ShellRegion": shell, **k2p}}
        _write_table(self, runtime, table, rule, extra)
        self._results["model"] = model_entity(info["model"])
        return runtime


class _GTMInputSpec(BaseInterfaceInputSpec):
    pet_file = File(exists=True, mandatory=True, desc="4D PET on the grid of dseg_file")
    sidecar_file = File(exists=True, mandatory=True, desc="BIDS PET sidecar (frame timing)")
    dseg_file = File(exists=True, mandatory=True, desc="seg-tspoms label map (0 = background)")
    dseg_tsv = File(exists=True, mandatory=True, desc="its dseg.tsv (index, name)")
    ref_mask = File(exists=True, mandatory=True, desc="reference mask: one more GTM region")
    fwhm_mm = traits.List(traits.Float, mandatory=True, desc="--pet-fwhm: FWHM (mm), 1 or x y z")
    resampled_from = File(exists=True, desc="PET-space image: add the resampling blur of its grid")
    lesion_ids = File(exists=True, desc="lesion ids: each lesion core and rim its own region")
    method = traits.Enum("gtm", "rbv", "iy", usedefault=True, desc="--pvc")
    rim_mm = traits.Float(LESION_RIM_MM, usedefault=True, desc="lesion rim width (mm)")


class _GTMOutputSpec(TraitedSpec):
    out_pet = File(exists=True, desc="voxel-wise corrected 4D PET (rbv, iy)")
    out_tsv = File(exists=True, desc="corrected region TACs")
    ref_tsv = File(exists=True, desc="corrected reference TAC ('reference' column)")
    out_meta = traits.Dict(desc="JSON sidecar content")
    lesion_tsv = File(exists=True, desc="corrected TAC of every lesion core and rim, and shell")
    lesion_meta = traits.Dict(desc="JSON sidecar of lesion_tsv (voxel counts per column)")
    voxel_counts = traits.Dict(Str, traits.Int, desc="voxels of every lesion_tsv column")
    voxel_ml = traits.Float(desc="voxel volume (mL)")


class GTMCorrect(SimpleInterface):
    """Partial-volume correction of every region and the reference (:mod:`~tspo_bidsapp.quant.pvc`).

    The reference voxels become a region of their own (they are taken out of their label).
    With ``lesion_ids`` every lesion core and rim is a region of its own and the background is
    split (:func:`~tspo_bidsapp.quant.pvc_voxel.pvc_regions`); their corrected TACs are
    pooled back into the ``seg-tspoms`` regions, and kept per lesion in ``lesion_tsv`` (with
    the perilesional 3-6 mm shell and NAWM). ``rbv``/``iy`` also correct the image.
    """

    input_spec = _GTMInputSpec
    output_spec = _GTMOutputSpec
    #: white matter in which lesion rims lie (infratentorial lesions: cerebellar WM, brainstem)
    WM_NAMES = ("WM-lesions", "perilesional-WM-0-3mm", SHELL_REGION, NAWM_REGION,
                "cerebellar-WM", "brainstem")  # fmt: skip

    def _run_interface(self, runtime):
        inp = self.inputs
        img, data = _load(inp.pet_file)
        sidecar = _timing(inp.sidecar_file, data.shape[-1])
        labels = _load(inp.dseg_file, np.int32)[1]
        table = read_dseg_tsv(inp.dseg_tsv)
        ref_label = max([int(labels.max()), *table]) + 1
        labels[_load(inp.ref_mask, np.uint8)[1] > 0] = ref_label
        fwhm = tuple(float(f) for f in inp.fwhm_mm)
        if isdefined(inp.resampled_from):
            fwhm = resampled_fwhm_xyz(fwhm, nib.load(inp.resampled_from).header.get_zooms()[:3])
        zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
        names = {**table, ref_label: "reference"}
        cwd = Path(runtime.cwd)
        meta = {"Units": sidecar.units, "PartialVolumeCorrection": PVC_NAMES[inp.method],
                "PETResolutionFWHMmm": list(inp.fwhm_mm), "GTMFWHMmm": list(fwhm)}  # fmt: skip
        if isdefined(inp.lesion_ids):
            ids = _load(inp.lesion_ids, np.int32)[1]
            wm = np.isin(labels, [i for i, n in table.items() if n in self.WM_NAMES])
            regions = pvc_regions(labels, ids, wm, zooms, rim_mm=inp.rim_mm)
            if inp.method == "gtm":
                res = gtm_correct(data, regions.labels, zooms, fwhm)
            else:
                out = voxel_pvc(data, regions.labels, zooms, fwhm, inp.method)
                res = out.regional
                self._results["out_pet"] = _save(out.image, img, cwd / "pet_pvc.nii.gz")
            pooled = parent_tacs(regions, res)
            tacs = {names.get(i, i): tac for i, tac in pooled.items()}
            les, counts = lesion_tac_columns(lesion_tacs(regions, res))
            parent = regions.parent[res.region_ids]
            for idx, name in table.items():
                if name in (SHELL_REGION, NAWM_REGION) and idx in pooled:
                    les[name] = pooled[idx]
                    counts[name] = int(res.voxels[parent == idx].sum())
            path = write_tacs_tsv(sidecar.timing, les, cwd / "lesion_tacs.tsv")
            voxel_ml = float(np.prod(zooms)) / 1000.0
            self._results.update(lesion_tsv=str(path), voxel_counts=counts, voxel_ml=voxel_ml)
            self._results["lesion_meta"] = {**meta, VOXEL_COUNTS_KEY: counts,
                                            "VoxelVolumeML": voxel_ml}  # fmt: skip
        else:
            if inp.method != "gtm":
                raise ValueError(f"--pvc {inp.method} needs the lesion-id map")
            res = gtm_correct(data, labels, zooms, fwhm)
            tacs = res.as_dict(names)
        ref = tacs.pop("reference")
        tacs = {name: tac for name, tac in tacs.items() if isinstance(name, str)}
        self._results["out_tsv"] = str(write_tacs_tsv(sidecar.timing, tacs, cwd / "gtm_tacs.tsv"))
        self._results["ref_tsv"] = str(
            write_tacs_tsv(sidecar.timing, {"reference": ref}, cwd / "gtm_ref_tacs.tsv")
        )
        self._results["out_meta"] = {
            **meta, "GTMConditionNumber": res.condition, "Warnings": res.warnings,
            "LesionAwareRegions": isdefined(inp.lesion_ids),
        }  # fmt: skip
        return runtime
