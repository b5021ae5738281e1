"""``tspo-bidsapp-fit`` on a TSV written from simulated SRTM curves with known parameters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tspo_bidsapp.cli.fit import main
from tspo_bidsapp.io.timing import TSPO_60MIN_DURATIONS_S, FrameTiming
from tspo_bidsapp.kinetics import simulate as sim
from tspo_bidsapp.kinetics.kinpar import KINPAR_COLUMNS

TRUTH = {"thalamus": (0.9, 0.09, 0.8), "lesion": (1.1, 0.11, 1.5), "nawm": (0.7, 0.07, 0.3)}
K2PRIME = 0.1  # every region has k2/R1 = 0.1/min


@pytest.fixture()
def tacs_tsv(tmp_path):
    ft = FrameTiming.from_durations_s(TSPO_60MIN_DURATIONS_S)
    t = sim.fine_grid(ft.end_min[-1])
    cr = sim.reference_tac(t)
    table = {"frame_start": ft.start_s, "frame_end": ft.end_s,
             "cerebellum": sim.frame_average(t, cr, ft.start_min, ft.end_min)}  # fmt: skip
    for name, (r1, k2, bp) in TRUTH.items():
        table[name] = sim.frame_average(
            t, sim.srtm_tissue(t, cr, r1, k2, bp), ft.start_min, ft.end_min
        )
    path = tmp_path / "sub-01_tacs.tsv"
    pd.DataFrame(table).to_csv(path, sep="\t", index=False)
    return path


@pytest.mark.parametrize(
    "model,extra,tol",
    [("srtm", [], 0.01), ("srtm2", [], 0.02), ("mrtm2", [], 0.02),
     ("logan", ["--k2prime", "0.1", "--tstar", "10"], 0.02)],
)  # fmt: skip
def test_models_recover_bpnd(tacs_tsv, tmp_path, model, extra, tol):
    out = tmp_path / f"{model}.tsv"
    rc = main([str(tacs_tsv), "--ref", "cerebellum", "--model", model, *extra, "-o", str(out)])
    assert rc == 0
    table = pd.read_csv(out, sep="\t", na_values="n/a")
    assert tuple(table.columns) == KINPAR_COLUMNS
    assert list(table["region"]) == list(TRUTH)
    for _, row in table.iterrows():
        bp = TRUTH[row["region"]][2]
        assert row["BPND"] == pytest.approx(bp, abs=tol * (1 + bp))
        assert row["model"] == model
    if model in ("srtm2", "mrtm2"):  # k2' from the median of the regional SRTM fits
        assert table["k2prime"].iloc[0] == pytest.approx(K2PRIME, rel=0.01)


def test_suvr(tacs_tsv, tmp_path):
    out = tmp_path / "suvr.tsv"
    assert main([str(tacs_tsv), "--ref", "cerebellum", "--model", "suvr",
                 "--suvr-window", "40", "60", "-o", str(out)]) == 0  # fmt: skip
    table = pd.read_csv(out, sep="\t", na_values="n/a")
    raw = pd.read_csv(tacs_tsv, sep="\t")
    late = raw["frame_start"] >= 2400
    dur = (raw["frame_end"] - raw["frame_start"])[late]
    expected = (raw["lesion"][late] @ dur) / (raw["cerebellum"][late] @ dur)
    assert table.set_index("region").loc["lesion", "SUVR"] == pytest.approx(expected, rel=1e-5)
    assert table["BPND"].isna().all()


def test_errors(tacs_tsv, tmp_path, capsys):
    assert main([str(tmp_path / "nope.tsv"), "--ref", "x", "--model", "srtm"]) == 66
    with pytest.raises(SystemExit) as exc:
        main([str(tacs_tsv), "--ref", "cerebellum", "--model", "bogus"])
    assert exc.value.code == 64
    assert main([str(tacs_tsv), "--ref", "cerebellm", "--model", "srtm"]) == 16
    assert "cerebellm" in capsys.readouterr().err
    raw = pd.read_csv(tacs_tsv, sep="\t")
    bad = raw.astype(object)
    bad.loc[3, "lesion"] = "abc"
    path = tmp_path / "bad_tacs.tsv"
    bad.to_csv(path, sep="\t", index=False)
    assert main([str(path), "--ref", "cerebellum", "--model", "srtm"]) == 16
    err = capsys.readouterr().err
    assert "bad_tacs.tsv" in err and "'lesion'" in err
    swapped = raw.copy()
    swapped.iloc[[4, 5]] = swapped.iloc[[5, 4]].to_numpy()
    swapped.to_csv(path, sep="\t", index=False)
    assert main([str(path), "--ref", "cerebellum", "--model", "srtm"]) == 16
    assert "out of order" in capsys.readouterr().err
    assert np.isfinite(raw.to_numpy(float)).all()
