"""Plasma-input models against curves simulated independently by integrating the model ODEs.

The tissue curves are solved with scipy's ODE solver for a smooth (Feng) plasma input and a
separate whole-blood curve, then averaged over each frame; the fits only see the frame averages
and the input sampled every second, as from a blood-processing pipeline.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.integrate import solve_ivp

from tspo_bidsapp.blood import InputFunction
from tspo_bidsapp.cli.fit import main
from tspo_bidsapp.io.timing import FrameTiming
from tspo_bidsapp.kinetics.plasma import PlasmaFrames
from tspo_bidsapp.kinetics.plasma_bfm import one_tcm_bfm
from tspo_bidsapp.kinetics.plasma_compartment import fit_compartment, fit_delay
from tspo_bidsapp.kinetics.plasma_graphical import fit_graphical, graphical_vt_map
from tspo_bidsapp.kinetics.simulate import feng_input, fine_grid, frame_average
from tspo_bidsapp.quant.maps import voxelwise_maps
from tspo_bidsapp.quant.regional import ModelSettings, fit_regions

DUR_S = [10] * 8 + [20] * 4 + [30] * 4 + [60] * 4 + [180] * 4 + [300] * 14  # 90.7 min
END = np.cumsum(DUR_S) / 60.0
START = END - np.asarray(DUR_S) / 60.0
TRUTH = {
    "1tcm": {"K1": 0.10, "k2": 0.05, "vB": 0.05},
    "2tcm": {"K1": 0.12, "k2": 0.08, "k3": 0.04, "k4": 0.03, "vB": 0.05},
    "2tcm1k": {"K1": 0.12, "k2": 0.08, "k3": 0.04, "k4": 0.03, "Kb": 0.05, "vB": 0.05},
}
#: Two-tissue kinetics fast enough for the graphical methods' linear phase to start by 30 min.
FAST_2TCM = {"K1": 0.12, "k2": 0.1, "k3": 0.06, "k4": 0.08, "vB": 0.05}


def plasma(t):
    return 0.05 * feng_input(t)  # peak ~ 40 kBq/mL, tail ~ 1 kBq/mL


def blood(t):
    return 0.9 * plasma(t) + 0.4 * (1.0 - np.exp(-0.2 * np.asarray(t)))  # + radiometabolites


def vt_of(p: dict) -> float:
    return p["K1"] / p["k2"] * (1.0 + p.get("k3", 0.0) / p.get("k4", 1.0))


def simulate(p: dict, delay_min: float = 0.0) -> np.ndarray:
    """Frame averages of ``(1 - vB)(C1 + C2) + vB (Cb + Ce)`` by ODE integration."""
    k3, k4, kb = p.get("k3", 0.0), p.get("k4", 0.0), p.get("Kb", 0.0)

    def rhs(t, c):
        cp = plasma(t - delay_min)
        return [p["K1"] * cp - (p["k2"] + k3) * c[0] + k4 * c[1], k3 * c[0] - k4 * c[1], kb * cp]

    t = fine_grid(END[-1], 0.5 / 60.0)
    sol = solve_ivp(rhs, (0, t[-1]), [0, 0, 0], t_eval=t, rtol=1e-9, atol=1e-12, max_step=0.02)
    c = (1 - p["vB"]) * (sol.y[0] + sol.y[1]) + p["vB"] * (blood(t - delay_min) + sol.y[2])
    return frame_average(t, c, START, END)


@pytest.fixture(scope="module")
def inp() -> InputFunction:
    t = np.arange(0.0, END[-1] * 60 + 1) / 60.0
    return InputFunction(t, plasma(t), blood(t))


@pytest.fixture(scope="module")
def tacs() -> dict[str, np.ndarray]:
    return {model: simulate(p) for model, p in {**TRUTH, "fast2tcm": FAST_2TCM}.items()}


@pytest.mark.parametrize("model", list(TRUTH))
def test_compartment_model_recovers_vt(inp, tacs, model):
    res = fit_compartment(PlasmaFrames(inp, START, END), tacs[model], model)
    truth = TRUTH[model]
    assert res.VT == pytest.approx(vt_of(truth), rel=0.02)
    assert res.vB == pytest.approx(truth["vB"], abs=0.005)
    assert res.success and res.identifiable and np.isfinite(res.VT_cov)


def test_2tcm_on_one_tissue_data_flags_k3_k4(inp, tacs):
    res = fit_compartment(PlasmaFrames(inp, START, END), tacs["1tcm"], "2tcm")
    assert res.VT == pytest.approx(vt_of(TRUTH["1tcm"]), rel=0.02)
    assert not res.identifiable


def test_aic_prefers_the_true_model(inp, tacs):
    rng = np.random.default_rng(0)
    y = tacs["2tcm"] * (1 + 0.01 * rng.standard_normal(END.size))
    pf = PlasmaFrames(inp, START, END)
    assert fit_compartment(pf, y, "2tcm").aic < fit_compartment(pf, y, "1tcm").aic - 10


@pytest.mark.parametrize("model", ["logan-plasma", "ma1"])
@pytest.mark.parametrize("truth", ["1tcm", "fast2tcm"])
def test_graphical_recovers_vt(inp, tacs, model, truth):
    pf = PlasmaFrames(inp, START, END)
    res = fit_graphical(pf, tacs[truth], model, tstar_min=30.0, vb=0.05)
    assert res.VT == pytest.approx(vt_of({**TRUTH, "fast2tcm": FAST_2TCM}[truth]), rel=0.02)


def test_voxelwise_maps_recover_vt(inp):
    k2 = np.array([0.03, 0.05, 0.08, 0.15])
    truths = [{"K1": 0.1, "k2": k, "vB": 0.05} for k in k2]
    data = np.stack([simulate(p) for p in truths]).reshape(2, 2, -1).astype(np.float32)
    data[0, 0, 3] = np.nan  # an unusable voxel
    vt = (0.1 / k2).reshape(2, 2)
    pf = PlasmaFrames(inp, START, END)
    for res in (one_tcm_bfm(pf, data), one_tcm_bfm(pf, data, vb=0.05)):
        assert res.n_invalid == 1 and np.isnan(res["VT"][0, 0])
        np.testing.assert_allclose(res["VT"].ravel()[1:], vt.ravel()[1:], rtol=0.02)
        np.testing.assert_allclose(res["K1"].ravel()[1:], 0.1, rtol=0.02)
    for model in ("logan-plasma", "ma1"):
        res = graphical_vt_map(pf, data, model, tstar_min=30.0, vb=0.05, chunk_voxels=2)
        np.testing.assert_allclose(res["VT"].ravel()[1:], vt.ravel()[1:], rtol=0.02)


def test_delay_is_recovered(inp):
    y = simulate(TRUTH["1tcm"], delay_min=0.15)
    delay, res = fit_delay(inp, START, END, y)
    assert delay == pytest.approx(0.15, abs=1.5 / 60.0)
    assert res.VT == pytest.approx(vt_of(TRUTH["1tcm"]), rel=0.02)


def _write_inputs(tmp_path, inp, tacs, regions=("1tcm",)):
    table = {"frame_start": START * 60, "frame_end": END * 60}
    table.update({f"r{m}": tacs[m] for m in regions})
    table["WB"] = tacs["1tcm"]
    pd.DataFrame(table).to_csv(tmp_path / "tacs.tsv", sep="\t", index=False)
    pd.DataFrame({"time": inp.time_min * 60, "AIF": inp.aif,
                  "whole_blood_radioactivity": inp.whole_blood}).to_csv(
        tmp_path / "input.tsv", sep="\t", index=False)  # fmt: skip
    return tmp_path / "tacs.tsv", tmp_path / "input.tsv"


@pytest.mark.parametrize(
    "model,extra",
    [("1tcm", []), ("2tcm", []), ("2tcm1k", []),
     ("logan-plasma", ["--vb", "0.05", "--tstar", "30"]), ("ma1", ["--vb", "0.05"])],
)  # fmt: skip
def test_fit_cli_plasma_models(tmp_path, inp, tacs, model, extra):
    own = {"1tcm": ["1tcm"], "2tcm": ["2tcm"], "2tcm1k": ["2tcm1k"]}.get(
        model, ["1tcm", "fast2tcm"]
    )
    tsv, inp_tsv = _write_inputs(tmp_path, inp, tacs, own)
    out = tmp_path / "out.tsv"
    argv = [str(tsv), "--input-function", str(inp_tsv), "--model", model, *extra, "-o", str(out)]
    assert main(argv) == 0
    table = pd.read_csv(out, sep="\t", na_values="n/a").set_index("region")
    assert table.columns[:2].tolist() == ["model", "VT"]
    assert abs(table.loc["WB", "delay_min"]) < 1.5 / 60.0  # fitted on WB by default
    for region in own:
        truth = {**TRUTH, "fast2tcm": FAST_2TCM}[region]
        assert table.loc[f"r{region}", "VT"] == pytest.approx(vt_of(truth), rel=0.02)


def test_fit_cli_bad_input(tmp_path, inp, tacs, capsys):
    tsv, inp_tsv = _write_inputs(tmp_path, inp, tacs)
    good = pd.read_csv(inp_tsv, sep="\t")
    out = tmp_path / "out.tsv"

    def run(table: pd.DataFrame, *extra) -> tuple[int, str]:
        path = tmp_path / "bad_input.tsv"
        table.to_csv(path, sep="\t", index=False)
        rc = main([str(tsv), "--input-function", str(path), "--model", "1tcm", *extra,
                   "-o", str(out)])  # fmt: skip
        return rc, capsys.readouterr().err

    rc, err = run(good.drop(columns="AIF"))
    assert rc == 16 and "bad_input.tsv" in err and "'AIF'" in err
    rc, err = run(good.iloc[[0, 2, 1, *range(3, len(good))]])
    assert rc == 16 and "'time'" in err and "increasing" in err
    rc, err = run(good[good["time"] < 1800])
    assert rc == 16 and "'time'" in err and "scan runs" in err
    rc, err = run(good, "--delay-region", "nowhere")
    assert rc == 16 and "'nowhere'" in err
    assert not out.exists()
    assert main([str(tsv), "--model", "1tcm"]) == 64


def test_quant_layer_fits_plasma_models(inp, tacs):
    timing = FrameTiming.from_start_end_s(START * 60, END * 60)
    settings = ModelSettings(models=("1TCM",))
    res, info = fit_regions(timing, None, {"WB": tacs["1tcm"]}, settings, input_function=inp)
    assert abs(info["delay_min"]) < 1.5 / 60.0 and info["delay_region"] == "WB"
    assert res["1TCM"][0].VT == pytest.approx(vt_of(TRUTH["1tcm"]), rel=0.02)
    data = tacs["1tcm"].reshape(1, 1, -1)
    maps, _ = voxelwise_maps(timing, None, data, np.ones((1, 1), bool), settings,
                             input_function=inp, delay_min=info["delay_min"])  # fmt: skip
    assert maps[("1TCM", "VT")][0, 0] == pytest.approx(vt_of(TRUTH["1tcm"]), rel=0.02)
    assert maps[("1TCM", "K1")][0, 0] == pytest.approx(TRUTH["1tcm"]["K1"], rel=0.02)


def test_reported_cov_matches_the_spread_over_noise(inp, tacs):
    """1TCM %COV (Jacobian; V_T by the delta method) against 100 noisy fits, noise var ∝ 1/w."""
    pf = PlasmaFrames(inp, START, END)
    y0 = tacs["1tcm"]
    sd = 0.05 * y0.mean() * np.sqrt(END - START).max() / np.sqrt(END - START)
    rng = np.random.default_rng(1)
    fits = [fit_compartment(pf, y0 + sd * rng.standard_normal(y0.size), "1tcm") for _ in range(100)]
    for name in ("VT", "K1"):
        values = np.array([getattr(f, name) for f in fits])
        empirical = 100 * values.std() / values.mean()
        reported = np.median([getattr(f, f"{name}_cov") for f in fits])
        assert reported == pytest.approx(empirical, rel=0.25), name
