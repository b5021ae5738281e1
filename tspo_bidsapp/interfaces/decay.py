"""Bring a PET run onto the pipeline's time axis, decay-corrected to injection.

:class:`DecayCorrectPET` is the first step of every PET run: it reads the sidecar once
(:func:`~tspo_bidsapp.io.pet_sidecar.read_pet_sidecar`, with ``--injection-time-offset``),
scales each frame by its factor to "decay-corrected to injection"
(:func:`~tspo_bidsapp.io.decay.factors_to_injection`) and writes a sidecar whose times are
seconds after injection (``InjectionStart = 0``, ``ImageDecayCorrectionTime = 0``). Every
later step reads that sidecar, so all of them share one time axis.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import nibabel as nib
import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)

from tspo_bidsapp.io.decay import correct_to_injection
from tspo_bidsapp.io.pet_sidecar import PetSidecar, read_pet_sidecar


def _shift_clock(time_zero: str | None, seconds: float) -> str | None:
    """``hh:mm:ss`` moved by ``seconds`` (None stays None)."""
    if not time_zero:
        return time_zero
    parts = [float(p) for p in time_zero.split(":")] + [0.0] * 2
    clock = dt.datetime(2000, 1, 1) + dt.timedelta(
        hours=parts[0], minutes=parts[1], seconds=parts[2] + seconds
    )
    return clock.strftime("%H:%M:%S")


def injection_sidecar(meta: dict, sidecar: PetSidecar) -> dict:
    """The sidecar ``meta`` rewritten on the injection axis, decay-corrected to injection."""
    shift = sidecar.injection_start_s
    out = {k: v for k, v in meta.items() if k != "DecayCorrectionFactor"}
    out.update(
        TimeZero=_shift_clock(sidecar.time_zero, shift),
        InjectionStart=0.0,
        FrameTimesStart=sidecar.timing.start_s.tolist(),
        FrameDuration=sidecar.timing.duration_s.tolist(),
        ImageDecayCorrected=True,
        ImageDecayCorrectionTime=0.0,
        **{"TimeAxisProvenance": sidecar.time_axis_record()},
    )
    if sidecar.scan_start_s is not None:
        out["ScanStart"] = sidecar.scan_start_s - shift
    if "InjectionEnd" in meta and isinstance(meta["InjectionEnd"], int | float):
        out["InjectionEnd"] = meta["InjectionEnd"] - shift
    return {k: v for k, v in out.items() if v is not None}


class _DecayCorrectPETInputSpec(BaseInterfaceInputSpec):
    pet_file = File(exists=True, mandatory=True, desc="the BIDS PET image")
    sidecar_file = File(exists=True, mandatory=True, desc="its BIDS JSON sidecar")
    injection_start_s = traits.Float(desc="--injection-time-offset: InjectionStart (s)")


class _DecayCorrectPETOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="PET decay-corrected to injection")
    out_sidecar = File(exists=True, desc="sidecar on the injection axis")
    out_meta = traits.Dict(desc="content of out_sidecar")
    out_record = traits.Dict(desc="time axis and decay correction applied")


class DecayCorrectPET(SimpleInterface):
    """Decay-correct a PET run to injection and rewrite its sidecar on the injection axis."""

    input_spec = _DecayCorrectPETInputSpec
    output_spec = _DecayCorrectPETOutputSpec

    def _run_interface(self, runtime):
        img = nib.load(self.inputs.pet_file)
        n_frames = 1 if img.ndim == 3 else img.shape[3]
        offset = self.inputs.injection_start_s
        sidecar = read_pet_sidecar(
            self.inputs.sidecar_file,
            n_frames=n_frames,
            injection_start_s=offset if isdefined(offset) else None,
        )
        factors = sidecar.decay_factors()
        cwd = Path(runtime.cwd)
        out_file = self.inputs.pet_file
        if not np.allclose(factors, 1.0, rtol=1e-9, atol=0):
            out = nib.Nifti1Image(
                correct_to_injection(img.get_fdata(dtype=np.float32), factors).squeeze(),
                img.affine,
                img.header,
            )
            out.set_data_dtype(np.float32)
            out.header.set_slope_inter(1.0, 0.0)
            out_file = str(cwd / "pet_decaycorrected.nii.gz")
            out.to_filename(out_file)
        meta = injection_sidecar(json.loads(Path(self.inputs.sidecar_file).read_text()), sidecar)
        out_sidecar = cwd / Path(self.inputs.sidecar_file).name
        out_sidecar.write_text(json.dumps(meta, indent=2) + "\n")
        self._results.update(
            out_file=out_file,
            out_sidecar=str(out_sidecar),
            out_meta=meta,
            out_record=sidecar.time_axis_record(),
        )
        return runtime
