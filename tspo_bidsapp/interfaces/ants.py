"""nipype interfaces around the ANTsPy registration functions of :mod:`tspo_bidsapp.registration`.

ANTsPy ships no ANTs command-line programs, so these replace nipype's ANTs interfaces.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    InputMultiObject,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)

from tspo_bidsapp.io.derivatives import TSV_FORMAT
from tspo_bidsapp.io.pet_sidecar import REQUIRED_TIMING_FIELDS, REQUIRED_TRACER_FIELDS
from tspo_bidsapp.io.timing import FrameTiming
from tspo_bidsapp.registration.confounds import DEFAULT_FD_THRESHOLD_MM
from tspo_bidsapp.registration.hmc import DEFAULT_HMC_START_TIME_S
from tspo_bidsapp.registration.images import DEFAULT_SEED

#: Sidecar fields copied into the motion-corrected PET's JSON.
PET_TIMING_FIELDS = (
    *REQUIRED_TIMING_FIELDS,
    "ImageDecayCorrected",
    "ImageDecayCorrectionTime",
    *REQUIRED_TRACER_FIELDS,
)


def frame_timing_from_metadata(metadata: dict, source: str) -> FrameTiming:
    """:class:`FrameTiming` from a PET sidecar dict; errors name the file and the field."""
    for field in ("FrameTimesStart", "FrameDuration"):
        if field not in metadata:
            raise ValueError(f"{source}: PET sidecar field {field!r} is missing")
    try:
        return FrameTiming(metadata["FrameTimesStart"], metadata["FrameDuration"])
    except ValueError as err:
        raise ValueError(f"{source}: {err}") from err


class _PETMotionCorrectionInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="4D dynamic PET")
    metadata = traits.Dict(mandatory=True, desc="PET JSON sidecar (FrameTimesStart, FrameDuration)")
    start_time_s = traits.Float(
        DEFAULT_HMC_START_TIME_S, usedefault=True, desc="frames starting earlier: not registered"
    )
    smooth_fwhm_mm = traits.Float(6.0, usedefault=True, desc="smoothing before registration (mm)")
    fd_threshold_mm = traits.Float(
        DEFAULT_FD_THRESHOLD_MM, usedefault=True, desc="FD above which a frame is flagged"
    )
    enabled = traits.Bool(True, usedefault=True, desc="False: identity transforms (--hmc-off)")
    omp_nthreads = traits.Int(1, usedefault=True, desc="ITK/OpenMP threads")
    seed = traits.Int(DEFAULT_SEED, usedefault=True, desc="random seed of the metric sampling")


class _PETMotionCorrectionOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="motion-corrected 4D PET (PET space)")
    petref = File(exists=True, desc="reference image (time-weighted mean of corrected late frames)")
    confounds = File(exists=True, desc="confounds table (TSV)")
    confounds_metadata = traits.Dict(desc="JSON description of the confounds columns")
    xforms = File(exists=True, desc="ITK text file: one petref -> frame transform per frame")
    xforms_list = traits.List(File(exists=True), desc="one ITK text transform file per frame")
    pet_metadata = traits.Dict(desc="PET timing fields copied from the input sidecar")


class PETMotionCorrection(SimpleInterface):
    """Frame-wise rigid motion correction (:func:`tspo_bidsapp.registration.correct_motion`)."""

    input_spec = _PETMotionCorrectionInputSpec
    output_spec = _PETMotionCorrectionOutputSpec

    def _run_interface(self, runtime):
        from tspo_bidsapp.registration import (
            confounds_description,
            correct_motion,
            grid_center_ras,
            motion_confounds,
        )
        from tspo_bidsapp.registration.images import load_pet_4d
        from tspo_bidsapp.registration.transforms import write_itk_transform_list

        source = self.inputs.in_file
        timing = frame_timing_from_metadata(self.inputs.metadata, source)
        pet = load_pet_4d(source)
        result = correct_motion(
            pet,
            timing.start_s,
            timing.duration_s,
            start_time_s=self.inputs.start_time_s,
            smooth_fwhm_mm=self.inputs.smooth_fwhm_mm,
            enabled=self.inputs.enabled,
            omp_nthreads=self.inputs.omp_nthreads,
            seed=self.inputs.seed,
        )
        cwd = Path(runtime.cwd)
        header = pet.header.copy()
        header.set_data_dtype(np.float32)
        out = nib.Nifti1Image(result.corrected, pet.affine, header)
        out.header.set_xyzt_units("mm", "sec")
        nib.save(out, cwd / "pet_mc.nii.gz")
        nib.save(_image3d(result.petref, pet.affine), cwd / "petref.nii.gz")
        centre = grid_center_ras(pet.shape, pet.affine)
        table = motion_confounds(
            result.itk_matrices, centre, fd_threshold_mm=self.inputs.fd_threshold_mm, source=source
        )
        table.to_csv(cwd / "confounds.tsv", **TSV_FORMAT)
        xforms_list = []
        for k, matrix in enumerate(result.itk_matrices):
            xforms_list.append(
                str(write_itk_transform_list(matrix[None], cwd / f"hmc_{k:04d}.txt"))
            )
        write_itk_transform_list(result.itk_matrices, cwd / "hmc_xforms.txt")
        meta = {k: self.inputs.metadata[k] for k in PET_TIMING_FIELDS if k in self.inputs.metadata}
        meta["MotionCorrection"] = {
            "Software": "ANTsPy (antspyx) rigid registration, Mattes mutual information",
            "Enabled": bool(self.inputs.enabled),
            "StartTimeSeconds": self.inputs.start_time_s,
            "SmoothingFWHMmm": self.inputs.smooth_fwhm_mm,
        }
        meta["SkullStripped"] = False
        self._results.update(
            out_file=str(cwd / "pet_mc.nii.gz"),
            petref=str(cwd / "petref.nii.gz"),
            confounds=str(cwd / "confounds.tsv"),
            confounds_metadata=confounds_description(centre, self.inputs.fd_threshold_mm),
            xforms=str(cwd / "hmc_xforms.txt"),
            xforms_list=xforms_list,
            pet_metadata=meta,
        )
        return runtime


class _PETCoregistrationInputSpec(BaseInterfaceInputSpec):
    petref = File(exists=True, mandatory=True, desc="PET reference image")
    t1w = File(exists=True, mandatory=True, desc="T1w image")
    brain_mask = File(exists=True, desc="brain mask on the T1w grid (guides the metric)")
    omp_nthreads = traits.Int(1, usedefault=True, desc="ITK/OpenMP threads")
    seed = traits.Int(DEFAULT_SEED, usedefault=True, desc="random seed of the metric sampling")


class _PETCoregistrationOutputSpec(TraitedSpec):
    itk_transform = File(exists=True, desc="ITK text transform (T1w points -> petref points)")
    petref_t1w = File(exists=True, desc="petref resampled to the T1w grid")


class PETCoregistration(SimpleInterface):
    """Rigid PET -> T1w registration (:func:`tspo_bidsapp.registration.coregister_pet_to_t1w`)."""

    input_spec = _PETCoregistrationInputSpec
    output_spec = _PETCoregistrationOutputSpec

    def _run_interface(self, runtime):
        from tspo_bidsapp.registration import (
            coregister_pet_to_t1w,
            resample_to_t1w,
            write_itk_transform,
        )

        petref = nib.load(self.inputs.petref)
        t1w = nib.load(self.inputs.t1w)
        mask = nib.load(self.inputs.brain_mask) if isdefined(self.inputs.brain_mask) else None
        itk = coregister_pet_to_t1w(
            petref,
            t1w,
            brain_mask=mask,
            omp_nthreads=self.inputs.omp_nthreads,
            seed=self.inputs.seed,
        )
        cwd = Path(runtime.cwd)
        write_itk_transform(itk, cwd / "petref_to_t1w.txt")
        nib.save(resample_to_t1w(petref, t1w, itk), cwd / "petref_t1w.nii.gz")
        self._results.update(
            itk_transform=str(cwd / "petref_to_t1w.txt"),
            petref_t1w=str(cwd / "petref_t1w.nii.gz"),
        )
        return runtime


class _ResamplePETToT1wInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="4D PET in its original (uncorrected) space")
    hmc_xforms = InputMultiObject(
        File(exists=True), mandatory=True, desc="ITK file(s): petref -> frame, one per frame"
    )
    coreg_xform = File(exists=True, mandatory=True, desc="ITK file: T1w -> petref")
    t1w_ref = File(exists=True, mandatory=True, desc="T1w grid to resample onto")
    omp_nthreads = traits.Int(1, usedefault=True, desc="ITK/OpenMP threads")


class _ResamplePETToT1wOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="4D PET on the T1w grid (one interpolation per frame)")


class ResamplePETToT1w(SimpleInterface):
    """Motion correction and co-registration applied together, one resampling per frame."""

    input_spec = _ResamplePETToT1wInputSpec
    output_spec = _ResamplePETToT1wOutputSpec

    def _run_interface(self, runtime):
        from tspo_bidsapp.registration import read_itk_transform, resample_pet_to_t1w
        from tspo_bidsapp.registration.images import load_pet_4d
        from tspo_bidsapp.registration.transforms import read_itk_transform_list

        hmc = np.concatenate([read_itk_transform_list(f) for f in self.inputs.hmc_xforms])
        out = resample_pet_to_t1w(
            load_pet_4d(self.inputs.in_file),
            hmc,
            read_itk_transform(self.inputs.coreg_xform),
            nib.load(self.inputs.t1w_ref),
            omp_nthreads=self.inputs.omp_nthreads,
        )
        out_file = Path(runtime.cwd) / "pet_space-T1w.nii.gz"
        nib.save(out, out_file)
        self._results["out_file"] = str(out_file)
        return runtime


def _image3d(data: np.ndarray, affine: np.ndarray) -> nib.Nifti1Image:
    img = nib.Nifti1Image(np.asarray(data, dtype=np.float32), affine)
    img.header.set_xyzt_units("mm", "sec")
    return img


class _MaskToPETInputSpec(BaseInterfaceInputSpec):
    mask = File(exists=True, mandatory=True, desc="binary mask on the T1w grid")
    petref = File(exists=True, mandatory=True, desc="PET reference image (target grid)")
    coreg_xform = File(exists=True, mandatory=True, desc="ITK file: T1w -> petref")


class _MaskToPETOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="the mask on the petref grid (nearest neighbour)")


class MaskToPET(SimpleInterface):
    """Bring a T1w-space mask onto the PET grid with the inverse of the co-registration."""

    input_spec = _MaskToPETInputSpec
    output_spec = _MaskToPETOutputSpec

    def _run_interface(self, runtime):
        from tspo_bidsapp.registration import read_itk_transform, resample_to_t1w

        petref = nib.load(self.inputs.petref)
        # resample_to_t1w maps target-grid points through the matrix into the moving image:
        # the inverse of T1w -> petref takes petref points to T1w points.
        inverse = np.linalg.inv(read_itk_transform(self.inputs.coreg_xform))
        mask = nib.load(self.inputs.mask)
        mask = nib.Nifti1Image(np.asarray(mask.dataobj, np.float32), mask.affine)
        out = resample_to_t1w(mask, petref, inverse, interpolation="linear")
        data = (np.asarray(out.dataobj) >= 0.5).astype(np.uint8)
        img = nib.Nifti1Image(data, petref.affine)
        img.header.set_xyzt_units("mm")
        out_file = Path(runtime.cwd) / "mask_pet.nii.gz"
        nib.save(img, out_file)
        self._results["out_file"] = str(out_file)
        return runtime
