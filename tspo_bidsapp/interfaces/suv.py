"""SUV map and regional SUV table of a static (single-frame) PET run (:mod:`..quant.suv`)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    Str,
    TraitedSpec,
    traits,
)

from tspo_bidsapp.io.derivatives import TSV_FORMAT
from tspo_bidsapp.quant.suv import concentration_factor, suv_scale
from tspo_bidsapp.quant.tacs import read_tacs_tsv


class _StaticSUVInputSpec(BaseInterfaceInputSpec):
    pet_file = File(exists=True, mandatory=True, desc="static PET on the T1w grid (kBq/mL)")
    tacs_tsv = File(exists=True, mandatory=True, desc="regional means (the run's TAC table)")
    brain_mask = File(exists=True, mandatory=True, desc="brain mask on the same grid")
    units = Str(mandatory=True, desc="the image's Units (sidecar)")
    weight_kg = traits.Float(mandatory=True, desc="body weight (kg)")
    weight_source = Str("", usedefault=True, desc="where the weight came from")
    injected_kbq = traits.Float(mandatory=True, desc="injected radioactivity at injection (kBq)")


class _StaticSUVOutputSpec(TraitedSpec):
    out_map = File(exists=True, desc="SUV map (g/mL), brain-masked")
    out_tsv = File(exists=True, desc="region, SUV")
    out_meta = traits.Dict(desc="sidecar: weight, dose, scale")


class StaticSUV(SimpleInterface):
    """``SUV = C x W / A_inj``: the map in the brain and the regional table."""

    input_spec = _StaticSUVInputSpec
    output_spec = _StaticSUVOutputSpec

    def _run_interface(self, runtime):
        inp = self.inputs
        scale = suv_scale(inp.weight_kg, inp.injected_kbq, concentration_factor(inp.units))
        img = nib.load(inp.pet_file)
        data = np.asarray(img.dataobj, np.float32)
        frame = data if data.ndim == 3 else data[..., -1]
        brain = np.asarray(nib.load(inp.brain_mask).dataobj) > 0
        suv = np.where(brain, frame * np.float32(scale), np.float32(np.nan)).astype(np.float32)
        cwd = Path(runtime.cwd)
        out_map = cwd / "suv.nii.gz"
        nib.Nifti1Image(suv, img.affine).to_filename(out_map)
        _, tacs = read_tacs_tsv(inp.tacs_tsv)
        table = pd.DataFrame(
            {"region": list(tacs), "SUV": [float(v[-1]) * scale for v in tacs.values()]}
        )
        out_tsv = cwd / "suv.tsv"
        table.to_csv(out_tsv, **TSV_FORMAT)
        self._results.update(
            out_map=str(out_map),
            out_tsv=str(out_tsv),
            out_meta={
                "Model": "SUV",
                "Units": "g/mL",
                "BodyWeightKg": inp.weight_kg,
                "BodyWeightSource": inp.weight_source,
                "InjectedRadioactivityKBq": inp.injected_kbq,
                "SUVScale": scale,
                "Description": "SUV = C (decay-corrected to injection) x body weight / "
                "injected radioactivity (Thie 2004)",
            },
        )
        return runtime
