"""nipype interfaces of the anatomical stage: imports, bias correction, lesion detection, TSPO-MS
regions, report."""

from __future__ import annotations

import json
from pathlib import Path

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)


class _ImportSegmentationInputSpec(BaseInterfaceInputSpec):
    dseg = File(exists=True, mandatory=True, desc="supplied FreeSurfer-labelled dseg")
    dseg_tsv = File(exists=True, mandatory=True, desc="its index/name table")
    reference = File(exists=True, mandatory=True, desc="T1w defining the output grid")


class _ImportSegmentationOutputSpec(TraitedSpec):
    dseg = File(exists=True)
    dseg_tsv = File(exists=True)
    brain_mask = File(exists=True)


class ImportSegmentation(SimpleInterface):
    """Supplied whole-brain segmentation, checked and put on the T1w grid; brain mask from it."""

    input_spec = _ImportSegmentationInputSpec
    output_spec = _ImportSegmentationOutputSpec

    def _run_interface(self, runtime):
        import shutil

        import nibabel as nib
        import numpy as np

        from tspo_bidsapp.anat import labels as L
        from tspo_bidsapp.anat.supplied import load_supplied_dseg

        ref = nib.load(self.inputs.reference)
        data = load_supplied_dseg(self.inputs.dseg, self.inputs.dseg_tsv, self.inputs.reference)
        cwd = Path(runtime.cwd)
        nib.save(nib.Nifti1Image(data, ref.affine), str(cwd / "dseg.nii.gz"))
        brain = ~L.in_labels(data, L.NON_BRAIN)
        nib.save(
            nib.Nifti1Image(brain.astype(np.uint8), ref.affine), str(cwd / "brain_mask.nii.gz")
        )
        shutil.copyfile(self.inputs.dseg_tsv, cwd / "dseg.tsv")
        self._results.update(
            dseg=str(cwd / "dseg.nii.gz"),
            dseg_tsv=str(cwd / "dseg.tsv"),
            brain_mask=str(cwd / "brain_mask.nii.gz"),
        )
        return runtime


class _ImportLesionMaskInputSpec(BaseInterfaceInputSpec):
    lesion_mask = File(exists=True, mandatory=True, desc="supplied lesion mask")
    reference = File(exists=True, mandatory=True, desc="T1w defining the output grid")


class _MaskOutputSpec(TraitedSpec):
    lesion_mask = File(exists=True)


class ImportLesionMask(SimpleInterface):
    """Supplied lesion mask (> 0 is lesion) on the T1w grid."""

    input_spec = _ImportLesionMaskInputSpec
    output_spec = _MaskOutputSpec

    def _run_interface(self, runtime):
        import nibabel as nib
        import numpy as np

        from tspo_bidsapp.anat.supplied import load_supplied_lesion_mask

        ref = nib.load(self.inputs.reference)
        mask = load_supplied_lesion_mask(self.inputs.lesion_mask, self.inputs.reference)
        out = Path(runtime.cwd) / "lesion_mask.nii.gz"
        nib.save(nib.Nifti1Image(mask.astype(np.uint8), ref.affine), str(out))
        self._results["lesion_mask"] = str(out)
        return runtime


class _EmptyMaskInputSpec(BaseInterfaceInputSpec):
    reference = File(exists=True, mandatory=True)


class EmptyLesionMask(SimpleInterface):
    """An all-zero lesion mask on the T1w grid (no FLAIR and no supplied mask)."""

    input_spec = _EmptyMaskInputSpec
    output_spec = _MaskOutputSpec

    def _run_interface(self, runtime):
        import nibabel as nib
        import numpy as np

        ref = nib.load(self.inputs.reference)
        out = Path(runtime.cwd) / "lesion_mask.nii.gz"
        nib.save(nib.Nifti1Image(np.zeros(ref.shape[:3], np.uint8), ref.affine), str(out))
        self._results["lesion_mask"] = str(out)
        return runtime


class _N4InputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True)
    mask = File(exists=True, desc="brain mask restricting the bias fit")


class _N4OutputSpec(TraitedSpec):
    out_file = File(exists=True)


class N4BiasFieldCorrection(SimpleInterface):
    """N4 bias-field correction with ANTsPy (Tustison et al., IEEE TMI 29:1310-1320, 2010)."""

    input_spec = _N4InputSpec
    output_spec = _N4OutputSpec

    def _run_interface(self, runtime):
        import ants

        img = ants.image_read(self.inputs.in_file)
        mask = ants.image_read(self.inputs.mask) if isdefined(self.inputs.mask) else None
        out = ants.n4_bias_field_correction(img, mask=mask)
        path = Path(runtime.cwd) / "t1w_preproc.nii.gz"
        ants.image_write(out, str(path))
        self._results["out_file"] = str(path)
        return runtime


class _TSPOMSInputSpec(BaseInterfaceInputSpec):
    dseg = File(exists=True, mandatory=True, desc="FreeSurfer-labelled whole-brain dseg")
    lesion_mask = File(exists=True, mandatory=True, desc="lesion mask (T1w grid)")
    reference = File(exists=True, mandatory=True, desc="T1w grid")
    min_lesion_volume_mm3 = traits.Float(10.0, usedefault=True)
    connectivity = traits.Enum(26, 18, 6, usedefault=True)
    shell_edges_mm = traits.Tuple((0.0, 3.0, 6.0), usedefault=True)
    cerebellum_erosion_mm = traits.Float(2.0, usedefault=True)
    sources = traits.Dict(desc="where dseg and lesion mask came from")


class _TSPOMSOutputSpec(TraitedSpec):
    tspoms_dseg = File(exists=True)
    tspoms_tsv = File(exists=True)
    lesion_ids = File(exists=True)
    lesion_mask = File(exists=True)
    lesion_tsv = File(exists=True)
    morph_tsv = File(exists=True)
    regions_json = File(exists=True)


class TSPOMSRegions(SimpleInterface):
    """TSPO-MS region set (:func:`tspo_bidsapp.anat.regions.build_tspoms`)."""

    input_spec = _TSPOMSInputSpec
    output_spec = _TSPOMSOutputSpec

    def _run_interface(self, runtime):
        import nibabel as nib
        import numpy as np

        from tspo_bidsapp.anat.outputs import write_tspoms
        from tspo_bidsapp.anat.regions import RegionParams
        from tspo_bidsapp.anat.supplied import conform_to_reference

        params = RegionParams(
            min_lesion_volume_mm3=self.inputs.min_lesion_volume_mm3,
            connectivity=self.inputs.connectivity,
            shell_edges_mm=tuple(self.inputs.shell_edges_mm),
            cerebellum_erosion_mm=self.inputs.cerebellum_erosion_mm,
        )
        dseg = np.asarray(conform_to_reference(self.inputs.dseg, self.inputs.reference).dataobj)
        lesion = np.asarray(nib.load(self.inputs.lesion_mask).dataobj) > 0
        sources = self.inputs.sources if isdefined(self.inputs.sources) else {}
        out = write_tspoms(
            np.rint(dseg).astype(np.int16), lesion, self.inputs.reference, runtime.cwd, params,
            sources=sources,
        )  # fmt: skip
        self._results.update(out)
        return runtime


class _DetectLesionsInputSpec(BaseInterfaceInputSpec):
    dseg = File(exists=True, mandatory=True, desc="SAMSEG dseg (T1w grid)")
    lesion_probseg = File(exists=True, mandatory=True, desc="SAMSEG lesion posterior")
    flair = File(exists=True, mandatory=True, desc="bias-corrected FLAIR on the T1w grid")
    t1w = File(exists=True, mandatory=True, desc="bias-corrected T1w")
    t2w = File(exists=True, desc="T2w in T1w space (optional; resampled to the T1w grid)")


class _DetectLesionsOutputSpec(TraitedSpec):
    lesion_mask = File(exists=True)
    out_report = File(exists=True, desc="JSON: method, parameters, volumes, cost")


class DetectLesions(SimpleInterface):
    """SAMSEG lesions + FLAIR hyperintensity (:func:`tspo_bidsapp.anat.lesion_detect`)."""

    input_spec = _DetectLesionsInputSpec
    output_spec = _DetectLesionsOutputSpec

    def _run_interface(self, runtime):
        import time

        import nibabel as nib
        import numpy as np

        from tspo_bidsapp.anat.lesion_detect import DEFAULT_DETECT_PARAMS, detect_lesions
        from tspo_bidsapp.anat.supplied import conform_to_reference

        t0 = time.perf_counter()
        seg = nib.load(self.inputs.dseg)
        zooms = tuple(float(z) for z in seg.header.get_zooms()[:3])

        def load(path):
            return np.asarray(conform_to_reference(path, self.inputs.dseg, order=1).dataobj)

        t2w = load(self.inputs.t2w).astype(np.float32) if isdefined(self.inputs.t2w) else None
        samseg = np.asarray(seg.dataobj) == 99
        mask = detect_lesions(
            np.asarray(seg.dataobj), load(self.inputs.lesion_probseg), load(self.inputs.flair),
            zooms, t1w=load(self.inputs.t1w), t2w=t2w, params=DEFAULT_DETECT_PARAMS,
        )  # fmt: skip
        cwd = Path(runtime.cwd)
        nib.save(
            nib.Nifti1Image(mask.astype(np.uint8), seg.affine), str(cwd / "lesion_mask.nii.gz")
        )
        ml = float(np.prod(zooms)) / 1000.0
        report = {
            "method": "samseg+flair",
            "parameters": DEFAULT_DETECT_PARAMS.as_dict(),
            "used_t2w": t2w is not None,
            "samseg_lesion_ml": float(samseg.sum() * ml),
            "lesion_ml": float(mask.sum() * ml),
            "wall_s": time.perf_counter() - t0,
        }
        (cwd / "lesion_detection.json").write_text(json.dumps(report, indent=2))
        self._results.update(
            lesion_mask=str(cwd / "lesion_mask.nii.gz"),
            out_report=str(cwd / "lesion_detection.json"),
        )
        return runtime


class _SourcesInputSpec(BaseInterfaceInputSpec):
    sources = traits.Dict(mandatory=True, desc="what each anatomical output came from")
    warnings = traits.List(traits.Str, desc="warnings to show in the report")


class _SourcesOutputSpec(TraitedSpec):
    out_report = File(exists=True)


class AnatSourcesReport(SimpleInterface):
    """JSON record of which segmentation and lesion mask were used (supplied or computed)."""

    input_spec = _SourcesInputSpec
    output_spec = _SourcesOutputSpec

    def _run_interface(self, runtime):
        warnings = list(self.inputs.warnings) if isdefined(self.inputs.warnings) else []
        out = Path(runtime.cwd) / "anat_sources.json"
        out.write_text(json.dumps({**self.inputs.sources, "warnings": warnings}, indent=2))
        self._results["out_report"] = str(out)
        return runtime
