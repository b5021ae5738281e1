"""nipype interface running SAMSEG (see :mod:`tspo_bidsapp.anat.samseg`)."""

from __future__ import annotations

from pathlib import Path

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)

from tspo_bidsapp.anat.labels import FREESURFER_LABELS, write_dseg_tsv
from tspo_bidsapp.anat.samseg import DEFAULT_LESION_THRESHOLD, DEFAULT_SEED, run_samseg


class _SamsegInputSpec(BaseInterfaceInputSpec):
    t1w = File(exists=True, mandatory=True, desc="T1w image")
    flair = File(exists=True, desc="FLAIR on the T1w grid/space; enables the lesion mode")
    threads = traits.Int(1, usedefault=True, desc="threads (follows --omp-nthreads)")
    seed = traits.Int(DEFAULT_SEED, usedefault=True, desc="random seed of the lesion sampler")
    lesion_threshold = traits.Float(
        DEFAULT_LESION_THRESHOLD, usedefault=True, desc="lesion posterior threshold"
    )


class _SamsegOutputSpec(TraitedSpec):
    t1w_preproc = File(exists=True, desc="bias-corrected T1w")
    flair_preproc = File(desc="bias-corrected FLAIR; lesion mode only")
    brain_mask = File(exists=True, desc="brain mask (SAMSEG brain labels)")
    dseg = File(exists=True, desc="whole-brain FreeSurfer-labelled segmentation")
    dseg_tsv = File(exists=True, desc="index/name table of dseg")
    lesion_mask = File(desc="SAMSEG lesion mask (label 99); lesion mode only")
    lesion_probseg = File(desc="lesion posterior probability; lesion mode only")
    samseg_dir = traits.Directory(desc="SAMSEG's own output folder")
    wall_s = traits.Float(desc="SAMSEG wall time (s)")
    peak_rss_mb = traits.Float(desc="peak resident memory of the SAMSEG process (MB)")


class Samseg(SimpleInterface):
    """Whole-brain (+ lesion, when FLAIR is given) segmentation with SAMSEG."""

    input_spec = _SamsegInputSpec
    output_spec = _SamsegOutputSpec

    def _run_interface(self, runtime):
        import nibabel as nib
        import numpy as np

        flair = self.inputs.flair if isdefined(self.inputs.flair) else None
        out = run_samseg(
            self.inputs.t1w,
            flair,
            Path(runtime.cwd) / "samseg",
            threads=self.inputs.threads,
            seed=self.inputs.seed,
            lesion_threshold=self.inputs.lesion_threshold,
        )
        self._results.update(
            t1w_preproc=out.t1w_preproc,
            brain_mask=out.brain_mask,
            dseg=out.dseg,
            samseg_dir=out.out_dir,
            wall_s=out.wall_s,
            peak_rss_mb=out.peak_rss_mb,
        )
        self._results["dseg_tsv"] = str(
            write_dseg_tsv(Path(runtime.cwd) / "dseg.tsv", FREESURFER_LABELS)
        )
        if flair is not None:
            seg = nib.load(out.dseg)
            mask = np.asarray(seg.dataobj) == 99
            path = Path(runtime.cwd) / "samseg_lesion_mask.nii.gz"
            nib.save(nib.Nifti1Image(mask.astype(np.uint8), seg.affine), str(path))
            self._results["lesion_mask"] = str(path)
            self._results["lesion_probseg"] = out.lesion_probseg
            self._results["flair_preproc"] = out.flair_preproc
        return runtime
