"""Thin nipype interface over :mod:`tspo_bidsapp.io.blood_input`: a run's arterial input.

The input function (processed from the BIDS blood recordings, or the supplied one) is written
as ``inputfunction.tsv`` with its provenance (:func:`~tspo_bidsapp.blood.write_input_function`)
for the plasma-input fits and as a derivative.
"""

from __future__ import annotations

import json
from pathlib import Path

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    Str,
    TraitedSpec,
    isdefined,
    traits,
)

from tspo_bidsapp.blood import write_input_function
from tspo_bidsapp.blood.recordings import sidecar_of
from tspo_bidsapp.io.blood_input import (
    INPUT_FUNCTION,
    RECORDINGS,
    ArterialSource,
    injection_offset_s,
    load_arterial_input,
)
from tspo_bidsapp.io.pet_sidecar import read_pet_sidecar


class _ArterialInputSpec(BaseInterfaceInputSpec):
    source_kind = traits.Enum(RECORDINGS, INPUT_FUNCTION, mandatory=True, desc="blood source")
    source_files = traits.List(File(exists=True), mandatory=True, desc="blood TSV file(s)")
    sidecar_file = File(exists=True, mandatory=True, desc="BIDS PET sidecar (units, frames)")
    parent_fraction_model = Str(desc="parent-fraction model; default: chosen by AIC")


class _ArterialOutputSpec(TraitedSpec):
    out_tsv = File(exists=True, desc="input function: time (s), AIF, whole blood")
    out_meta = traits.Dict(desc="its JSON sidecar (units, provenance)")


class ArterialInputFunction(SimpleInterface):
    """The metabolite-corrected arterial input of one PET run, checked against its frames."""

    input_spec = _ArterialInputSpec
    output_spec = _ArterialOutputSpec

    def _run_interface(self, runtime):
        inp = self.inputs
        sidecar = read_pet_sidecar(inp.sidecar_file)
        source = ArterialSource(inp.source_kind, tuple(Path(f) for f in inp.source_files))
        model = inp.parent_fraction_model if isdefined(inp.parent_fraction_model) else None
        offset = injection_offset_s(sidecar)  # the run's own, also for a rewritten sidecar
        curve = load_arterial_input(source, sidecar, parent_fraction_model=model, offset_s=offset)
        out = write_input_function(curve, Path(runtime.cwd) / "inputfunction.tsv",
                                   units=sidecar.units, injection_offset_s=offset)  # fmt: skip
        self._results["out_tsv"] = str(out)
        self._results["out_meta"] = json.loads(sidecar_of(out).read_text())
        return runtime
