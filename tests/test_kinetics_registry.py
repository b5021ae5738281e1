"""The kinetic-model registry: one k2' rule, one regional SRTM2, inputs checked per model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tspo_bidsapp.cli.fit import main
from tspo_bidsapp.io.timing import TSPO_60MIN_DURATIONS_S, FrameTiming
from tspo_bidsapp.kinetics import simulate as sim
from tspo_bidsapp.kinetics.kinpar import KineticResult
from tspo_bidsapp.kinetics.registry import (
    INPUT_FUNCTION,
    MODELS,
    REFERENCE,
    FitData,
    fit_regional,
    get_model,
    model_names,
    resolve_k2prime,
)
from tspo_bidsapp.quant.regional import ModelSettings, fit_regions


def test_every_model_is_complete():
    assert set(model_names(REFERENCE)) == {"SRTM", "SRTM2", "Logan", "MRTM2", "SUVR"}
    assert set(model_names(INPUT_FUNCTION)) == {"1TCM", "2TCM", "2TCM1K", "Logan-plasma", "MA1"}
    for spec in MODELS.values():
        assert callable(spec.regional)
        assert (spec.voxelwise is None) == (spec.map_measures == ())
    assert get_model("logan-PLASMA").name == "Logan-plasma"
    with pytest.raises(ValueError, match="unknown model"):
        get_model("3tcm")


def test_k2prime_rule_uses_only_reliable_fits_with_positive_binding():
    def fit(k2p, bp, success=True, edge=False):
        return KineticResult(k2prime=k2p, BPND=bp, success=success, edge=edge)

    fits = [fit(0.10, 0.5), fit(0.12, 0.3), fit(0.30, -0.1), fit(0.5, 0.4, edge=True),
            fit(0.9, 0.2, success=False), fit(0.14, 0.8)]  # fmt: skip
    assert resolve_k2prime(None, fits) == (pytest.approx(0.12), "median-srtm")
    assert resolve_k2prime(0.2, fits) == (0.2, "user")
    with pytest.raises(ValueError):
        resolve_k2prime(None, [fit(0.3, -0.1)])


def test_plasma_model_without_input_is_refused():
    data = FitData(np.array([0.0, 1.0]), np.array([1.0, 2.0]), {"a": np.ones(2)})
    with pytest.raises(ValueError, match="needs an arterial input function"):
        fit_regional(["1TCM"], data)


def test_pipeline_and_fit_command_share_srtm2(tmp_path):
    ft = FrameTiming.from_durations_s(TSPO_60MIN_DURATIONS_S)
    t = sim.fine_grid(ft.end_min[-1])
    cr = sim.reference_tac(t)
    ref = sim.frame_average(t, cr, ft.start_min, ft.end_min)
    tacs = {name: sim.frame_average(t, sim.srtm_tissue(t, cr, r1, 0.1 * r1, bp), ft.start_min,
                                    ft.end_min) for name, r1, bp in (("a", 0.9, 0.8),
                                                                      ("b", 1.1, 0.3))}  # fmt: skip
    pipeline, info = fit_regions(ft, ref, tacs, ModelSettings(models=("SRTM2",)))
    path = tmp_path / "tacs.tsv"
    pd.DataFrame({"frame_start": ft.start_s, "frame_end": ft.end_s, "ref": ref, **tacs}).to_csv(
        path, sep="\t", index=False
    )
    out = tmp_path / "out.tsv"
    assert main([str(path), "--ref", "ref", "--model", "srtm2", "-o", str(out)]) == 0
    table = pd.read_csv(out, sep="\t").set_index("region")
    for res, bp in zip(pipeline["SRTM2"], (0.8, 0.3), strict=True):
        assert res.BPND == pytest.approx(bp, abs=0.02)
        assert table.loc[res.region, "BPND"] == pytest.approx(res.BPND, rel=1e-5)
        assert table.loc[res.region, "k2prime"] == pytest.approx(info["k2prime"], rel=1e-5)
