"""Thin nipype interfaces over :mod:`tspo_bidsapp.quant` (TACs, reference, fits, masks).

Partial-volume correction and lesion phenotypes: :mod:`tspo_bidsapp.interfaces.pvc`.

All images given to one interface share one grid (the T1w grid when the PET was resampled
once into T1w space). Frame timing comes from the validated BIDS PET sidecar (seconds).
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    Str,
    TraitedSpec,
    Undefined,
    isdefined,
    traits,
)

from tspo_bidsapp.anat.labels import read_dseg_tsv
from tspo_bidsapp.blood import read_input_function
from tspo_bidsapp.io.derivatives import TSV_FORMAT
from tspo_bidsapp.io.pet_sidecar import read_pet_sidecar
from tspo_bidsapp.kinetics.logan import DEFAULT_TSTAR_MIN
from tspo_bidsapp.kinetics.registry import model_entity
from tspo_bidsapp.quant.maps import MEASURE_UNITS, voxelwise_maps
from tspo_bidsapp.quant.reference import (
    cerebellum_reference,
    check_reference,
    region_reference,
)
from tspo_bidsapp.quant.regional import PLASMA_UNITS, ModelSettings, fit_regions, model_table
from tspo_bidsapp.quant.svca import (
    read_svca_classes,
    resample_classes,
    svca_normalisation,
    svca_reference,
)
from tspo_bidsapp.quant.tacs import read_tacs_tsv, region_tacs, write_tacs_tsv


def _load(path, dtype=np.float32):
    img = nib.load(str(path))
    return img, np.asarray(img.dataobj, dtype=dtype)


def _save(data, like, path, dtype=np.float32) -> str:
    img = nib.Nifti1Image(np.asarray(data, dtype), like.affine)
    img.header.set_xyzt_units("mm")
    nib.save(img, str(path))
    return str(path)


def _timing(sidecar, n_frames):
    return read_pet_sidecar(sidecar, n_frames=n_frames)


def _input_function(inputs):
    """The arterial input of a fit interface, or None (reference models only)."""
    if not isdefined(inputs.input_function):
        return None
    return read_input_function(inputs.input_function)


def _model_settings(inputs, models, **fields) -> ModelSettings:
    """Model settings of a fit interface: ``models``, Logan t*, and the SUVR window, vB and
    voxel-wise estimator where the interface has them and they are set; then ``fields``."""
    optional = ("suvr_window_min", "vb", "voxelwise_estimator")
    given = {name: getattr(inputs, name, Undefined) for name in optional}
    return ModelSettings(tuple(models), inputs.tstar_min,
                         **{k: v for k, v in given.items() if isdefined(v) and v != ""},
                         **fields)  # fmt: skip


class _ExtractTACsInputSpec(BaseInterfaceInputSpec):
    pet_file = File(exists=True, mandatory=True, desc="4D PET on the grid of dseg_file")
    sidecar_file = File(exists=True, mandatory=True, desc="BIDS PET sidecar (frame timing)")
    dseg_file = File(exists=True, mandatory=True, desc="seg-tspoms label map")
    dseg_tsv = File(exists=True, mandatory=True, desc="its dseg.tsv (index, name)")
    brain_mask = File(exists=True, desc="brain mask: SVCA frame normalisation in the sidecar")


class _ExtractTACsOutputSpec(TraitedSpec):
    out_tsv = File(exists=True, desc="frame_start, frame_end (s) and one column per region")
    volumes = traits.Dict(Str, traits.Float, desc="region volumes (mL)")
    out_meta = traits.Dict(desc="JSON sidecar content")
    time_meta = traits.Dict(desc="time axis and decay correction (for the model sidecars)")


class ExtractTACs(SimpleInterface):
    """Mean TAC of every region of a label map (:func:`~tspo_bidsapp.quant.tacs.region_tacs`)."""

    input_spec = _ExtractTACsInputSpec
    output_spec = _ExtractTACsOutputSpec

    def _run_interface(self, runtime):
        img, data = _load(self.inputs.pet_file)
        sidecar = _timing(self.inputs.sidecar_file, data.shape[-1])
        _, labels = _load(self.inputs.dseg_file, np.int32)
        voxel_ml = float(np.prod(img.header.get_zooms()[:3])) / 1000.0
        tacs, volumes = region_tacs(data, labels, read_dseg_tsv(self.inputs.dseg_tsv), voxel_ml)
        out = Path(runtime.cwd) / "seg-tspoms_tacs.tsv"
        write_tacs_tsv(sidecar.timing, tacs, out)
        self._results.update(out_tsv=str(out), volumes=volumes)
        self._results["out_meta"] = {"Units": sidecar.units, "VolumesML": volumes}
        if isdefined(self.inputs.brain_mask):
            brain = _load(self.inputs.brain_mask, np.uint8)[1] > 0
            zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
            self._results["out_meta"]["SVCANormalisation"] = svca_normalisation(
                data, sidecar.timing.mid_min, brain, zooms
            )
        self._results["out_meta"].update(sidecar.time_axis_record())
        self._results["time_meta"] = sidecar.time_axis_record()
        return runtime


class _ReferenceInputSpec(BaseInterfaceInputSpec):
    pet_file = File(exists=True, mandatory=True, desc="4D PET")
    sidecar_file = File(exists=True, mandatory=True, desc="BIDS PET sidecar")
    method = traits.Str("cerebellum", usedefault=True, desc="--ref-region (or a TSPO-MS region)")
    dseg_file = File(exists=True, desc="TSPO-MS segmentation (a named region)")
    dseg_tsv = File(exists=True, desc="its label table (index, name)")
    candidate_mask = File(exists=True, desc="cerebellar GM reference candidate (cerebellum)")
    lesion_mask = File(exists=True, desc="lesion mask (removed; cerebellar overlap warned)")
    cerebellum_mask = File(exists=True, desc="whole cerebellar GM, for the lesion check")
    brain_mask = File(exists=True, desc="brain mask (svca, wholebrain)")
    gm_mask = File(exists=True, desc="grey-matter mask (svca)")
    svca_classes = File(exists=True, desc="--svca-classes TSV (time in minutes + 4 classes)")
    gm_fraction_min = traits.Float(0.9, usedefault=True, desc="SVCA GM fraction cut-off")


class _ReferenceOutputSpec(TraitedSpec):
    out_tsv = File(exists=True, desc="reference TAC table")
    out_mask = File(exists=True, desc="selected reference mask")
    gm_fraction = File(desc="SVCA grey-matter fraction map")
    warnings = traits.List(Str, desc="reference checks, for the log and the report")
    out_meta = traits.Dict(desc="JSON sidecar content")


class ReferenceRegion(SimpleInterface):
    """Reference mask and TAC by ``cerebellum``, ``svca``, ``wholebrain`` or a TSPO-MS region
    name, with the TSPO plausibility checks."""

    input_spec = _ReferenceInputSpec
    output_spec = _ReferenceOutputSpec

    def _run_interface(self, runtime):
        inp = self.inputs
        img, data = _load(inp.pet_file)
        sidecar = _timing(inp.sidecar_file, data.shape[-1])
        voxel_ml = float(np.prod(img.header.get_zooms()[:3])) / 1000.0
        lesion = _load(inp.lesion_mask, np.uint8)[1] > 0 if isdefined(inp.lesion_mask) else None
        warnings, meta, lesion_ml = [], {"ReferenceRegion": inp.method}, 0.0
        cwd = Path(runtime.cwd)
        if inp.method == "cerebellum":
            if not isdefined(inp.candidate_mask):
                raise ValueError("--ref-region cerebellum needs the cerebellar GM candidate mask")
            candidate = _load(inp.candidate_mask, np.uint8)[1] > 0
            mask, tac = cerebellum_reference(data, candidate, lesion)
            if lesion is not None:
                cereb = candidate
                if isdefined(inp.cerebellum_mask):
                    cereb = _load(inp.cerebellum_mask, np.uint8)[1] > 0
                lesion_ml = float((cereb & lesion).sum()) * voxel_ml
        elif inp.method == "wholebrain":  # pseudo-reference: brain minus lesions
            if not isdefined(inp.brain_mask):
                raise ValueError("--ref-region wholebrain needs the brain mask")
            mask, tac = cerebellum_reference(data, _load(inp.brain_mask, np.uint8)[1] > 0, lesion)
        elif inp.method != "svca":  # a named TSPO-MS region minus lesions
            if not (isdefined(inp.dseg_file) and isdefined(inp.dseg_tsv)):
                raise ValueError(f"--ref-region {inp.method} needs the TSPO-MS segmentation")
            index = {name: i for i, name in read_dseg_tsv(inp.dseg_tsv).items()}.get(inp.method)
            if index is None:
                raise ValueError(f"{inp.dseg_tsv}: no region named {inp.method!r}")
            mask, tac = region_reference(data, _load(inp.dseg_file, np.int32)[1], index, lesion)
            meta["ReferenceLabel"] = {"index": index, "name": inp.method}
        else:
            if not (isdefined(inp.svca_classes) and isdefined(inp.brain_mask)):
                raise ValueError("--ref-region svca needs --svca-classes and a brain mask")
            time_min, classes = read_svca_classes(inp.svca_classes)
            sampled, warnings = resample_classes(time_min, classes, sidecar.timing.mid_min)
            brain = _load(inp.brain_mask, np.uint8)[1] > 0
            gm = _load(inp.gm_mask, np.uint8)[1] > 0 if isdefined(inp.gm_mask) else brain
            res = svca_reference(data, brain, gm, sampled, gm_fraction_min=inp.gm_fraction_min)
            mask, tac = res.reference_mask, res.reference_tac
            warnings += res.warnings
            self._results["gm_fraction"] = _save(res.gm_fraction, img, cwd / "gmfrac.nii.gz")
            meta.update(SVCAClasses=str(inp.svca_classes), GMFractionMin=inp.gm_fraction_min)
        volume = float(mask.sum()) * voxel_ml
        warnings += check_reference(
            tac, sidecar.timing, volume, cerebellar_lesion_ml=lesion_ml, ref_region=inp.method
        )
        meta.update(Units=sidecar.units, VolumeML=volume, Warnings=warnings)
        meta.update(sidecar.time_axis_record())
        self._results["out_tsv"] = str(
            write_tacs_tsv(sidecar.timing, {"reference": tac}, cwd / "ref_tacs.tsv")
        )
        self._results["out_mask"] = _save(mask, img, cwd / "ref_mask.nii.gz", np.uint8)
        self._results.update(warnings=warnings, out_meta=meta)
        return runtime


class _KineticsInputSpec(BaseInterfaceInputSpec):
    tacs_tsv = File(exists=True, mandatory=True, desc="region TACs")
    ref_tsv = File(exists=True, mandatory=True, desc="reference TAC ('reference' column)")
    volumes = traits.Dict(Str, traits.Float, desc="region volumes (mL)")
    models = traits.List(Str, ["SRTM"], usedefault=True, desc="--models")
    tstar_min = traits.Float(DEFAULT_TSTAR_MIN, usedefault=True, desc="Logan t* (minutes)")
    suvr_window_min = traits.Tuple(traits.Float, traits.Float, desc="--suvr-window (minutes)")
    participant = traits.Dict(Str, traits.Any, desc="genotype and flags for every row")
    k2prime = traits.Float(desc="--k2prime (1/min); default: median regional SRTM")
    extra_meta = traits.Dict(Str, traits.Any, desc="added to every sidecar (e.g. PVC settings)")
    time_meta = traits.Dict(Str, traits.Any, desc="time axis and decay correction (sidecars)")
    input_function = File(exists=True, desc="arterial input (plasma-input models)")
    vb = traits.Float(desc="fixed blood volume of the plasma-input models")


class _KineticsOutputSpec(TraitedSpec):
    out_tsvs = traits.Dict(Str, File(exists=True), desc="model -> _kinpar.tsv")
    out_files = traits.List(File(exists=True), desc="the tables, one per model")
    out_models = traits.List(Str, desc="model of each table")
    out_metas = traits.List(traits.Dict, desc="sidecar of each table")
    k2prime = traits.Float(desc="k2' (1/min) used by SRTM2/MRTM2")
    delay_min = traits.Float(desc="blood-tissue delay (min) of the plasma-input models")
    out_meta = traits.Dict(desc="model settings for the sidecars")


class RegionalKinetics(SimpleInterface):
    """One ``_kinpar.tsv`` per model from region and reference TACs."""

    input_spec = _KineticsInputSpec
    output_spec = _KineticsOutputSpec

    def _run_interface(self, runtime):
        inp = self.inputs
        timing, tacs = read_tacs_tsv(inp.tacs_tsv)
        _, ref = read_tacs_tsv(inp.ref_tsv)
        k2p = inp.k2prime if isdefined(inp.k2prime) else None
        settings = _model_settings(inp, inp.models, k2prime=k2p)
        arterial = _input_function(inp)
        results, info = fit_regions(timing, ref["reference"], tacs, settings,
                                    input_function=arterial)  # fmt: skip
        volumes = inp.volumes if isdefined(inp.volumes) else {}
        person = inp.participant if isdefined(inp.participant) else {}
        outs = {}
        for model, rows in results.items():
            path = Path(runtime.cwd) / f"model-{model}_kinpar.tsv"
            model_table(rows, volumes, person).to_csv(path, **TSV_FORMAT)
            outs[model] = str(path)
        self._results["out_tsvs"] = outs
        if "k2prime" in info:
            self._results["k2prime"] = info["k2prime"]
        if "delay_min" in info:
            self._results["delay_min"] = info["delay_min"]
        meta = {
            **settings.as_dict(), **info, "TimeUnits": "min",
            "Units": {"k2": "1/min", "k2prime": "1/min", "k2a": "1/min", "BPND": "1",
                      "DVR": "1", "R1": "1", "SUVR": "1", "volume_ml": "mL"},
            **(inp.extra_meta if isdefined(inp.extra_meta) else {}),
            **(inp.time_meta if isdefined(inp.time_meta) else {}),
        }  # fmt: skip
        if arterial is not None:
            meta["Units"].update(PLASMA_UNITS)
            meta["InputFunction"] = {"File": inp.input_function, **arterial.provenance}
        self._results["out_meta"] = meta
        self._results["out_files"] = list(outs.values())
        self._results["out_models"] = [model_entity(m) for m in outs]
        self._results["out_metas"] = [{**meta, "Model": m} for m in outs]
        return runtime


class _MapsInputSpec(BaseInterfaceInputSpec):
    pet_file = File(exists=True, mandatory=True, desc="4D PET")
    ref_tsv = File(exists=True, mandatory=True, desc="reference TAC")
    brain_mask = File(exists=True, mandatory=True, desc="brain mask on the PET grid")
    models = traits.List(Str, ["SRTM"], usedefault=True, desc="--models")
    tstar_min = traits.Float(DEFAULT_TSTAR_MIN, usedefault=True, desc="Logan t* (minutes)")
    suvr_window_min = traits.Tuple(traits.Float, traits.Float, desc="--suvr-window (minutes)")
    k2prime = traits.Float(desc="k2' (1/min) for SRTM2/MRTM2")
    time_meta = traits.Dict(Str, traits.Any, desc="time axis and decay correction (sidecars)")
    extra_meta = traits.Dict(Str, traits.Any, desc="added to every sidecar (e.g. PVC settings)")
    input_function = File(exists=True, desc="arterial input (plasma-input models)")
    delay_min = traits.Float(0.0, usedefault=True, desc="blood-tissue delay (min), regional fit")
    vb = traits.Float(desc="fixed blood volume of the plasma-input models")
    voxelwise_estimator = Str(desc="--voxelwise-estimator (SRTM maps); default: the registry's")


class _MapsOutputSpec(TraitedSpec):
    out_maps = traits.List(File(exists=True), desc="one NIfTI per model and measure")
    models = traits.List(Str, desc="model of each map")
    measures = traits.List(Str, desc="measure of each map")
    out_metas = traits.List(traits.Dict, desc="sidecar of each map")


class VoxelwiseMaps(SimpleInterface):
    """Brain-masked parametric maps of every model (:func:`~tspo_bidsapp.quant.maps.voxelwise_maps`)."""

    input_spec = _MapsInputSpec
    output_spec = _MapsOutputSpec

    def _run_interface(self, runtime):
        inp = self.inputs
        img, data = _load(inp.pet_file)
        timing, ref = read_tacs_tsv(inp.ref_tsv)
        brain = _load(inp.brain_mask, np.uint8)[1] > 0
        settings = _model_settings(inp, inp.models)
        k2p = inp.k2prime if isdefined(inp.k2prime) else None
        maps, info = voxelwise_maps(timing, ref["reference"], data, brain, settings, k2prime=k2p,
                                    input_function=_input_function(inp),
                                    delay_min=inp.delay_min)  # fmt: skip
        files, models, measures, metas = [], [], [], []
        for (model, meas), values in maps.items():
            path = Path(runtime.cwd) / f"model-{model}_meas-{meas}_mimap.nii.gz"
            files.append(_save(values, img, path))
            models.append(model_entity(model))
            measures.append(meas)
            metas.append({"Units": MEASURE_UNITS[meas], "Model": model, **info[model]})
            if isdefined(inp.time_meta):
                metas[-1].update(inp.time_meta)
            metas[-1].update(inp.extra_meta if isdefined(inp.extra_meta) else {})
        self._results.update(out_maps=files, models=models, measures=measures, out_metas=metas)
        return runtime


class _TSPOMSMasksInputSpec(BaseInterfaceInputSpec):
    dseg_file = File(exists=True, mandatory=True, desc="seg-tspoms label map (T1w grid)")
    dseg_tsv = File(exists=True, mandatory=True, desc="its dseg.tsv (index, name)")


class _TSPOMSMasksOutputSpec(TraitedSpec):
    ref_candidate = File(exists=True, desc="lesion-free eroded cerebellar GM")
    gm_mask = File(exists=True, desc="grey matter: cortex, deep GM, cerebellar GM")
    wm_mask = File(exists=True, desc="cerebral white matter incl. lesions and shells")


class TSPOMSMasks(SimpleInterface):
    """Binary masks the quantification needs, read off the ``seg-tspoms`` labels by name."""

    input_spec = _TSPOMSMasksInputSpec
    output_spec = _TSPOMSMasksOutputSpec

    GROUPS = {
        "ref_candidate": ("cerebellar-GM-reference",),
        "gm_mask": ("cortical-GM", "thalamus", "caudate", "putamen", "pallidum",
                    "hippocampus", "amygdala", "cerebellar-GM-reference",
                    "cerebellar-GM-excluded"),
        "wm_mask": ("WM-lesions", "perilesional-WM-0-3mm", "perilesional-WM-3-6mm", "NAWM"),
    }  # fmt: skip

    def _run_interface(self, runtime):
        img, labels = _load(self.inputs.dseg_file, dtype=np.int32)
        index = {name: idx for idx, name in read_dseg_tsv(self.inputs.dseg_tsv).items()}
        for output, names in self.GROUPS.items():
            missing = [n for n in names if n not in index]
            if output == "ref_candidate" and missing:
                raise ValueError(f"{self.inputs.dseg_tsv}: no region named {missing[0]!r}")
            wanted = [index[n] for n in names if n in index]
            mask = np.isin(labels, wanted).astype(np.uint8)
            path = Path(runtime.cwd) / f"{output}.nii.gz"
            self._results[output] = _save(mask, img, path, dtype=np.uint8)
        return runtime
