"""Monte-Carlo bias and SD of BPND: SRTM basis functions vs regional NLLS on noisy curves.

Run: ``OMP_NUM_THREADS=2 python benchmarks/mc_bfm_vs_nlls.py``. Curves: continuous SRTM
(R1 1.0, k2 0.1/min, BPND 0.3 and 1.0), 22 frames over 60 min, frame averaged, Gaussian noise with
SD = level x sqrt(C / Δt) relative to the TAC mean (duration weights are then the right ones).
"""

from __future__ import annotations

import numpy as np

from tspo_bidsapp.io.timing import TSPO_60MIN_DURATIONS_S, FrameTiming
from tspo_bidsapp.kinetics import simulate as sim
from tspo_bidsapp.kinetics.bfm import fit_srtm_bfm
from tspo_bidsapp.kinetics.frames import InterpolatedReference
from tspo_bidsapp.kinetics.srtm import fit_srtm

N_CURVES = 300


def main() -> None:
    ft = FrameTiming.from_durations_s(TSPO_60MIN_DURATIONS_S)
    s, e, dur = ft.start_min, ft.end_min, ft.duration_min
    t = sim.fine_grid(e[-1])
    cr = sim.reference_tac(t)
    ref = InterpolatedReference(s, e, sim.frame_average(t, cr, s, e))
    rng = np.random.default_rng(1)
    print(f"BPND_true noise  method  bias      SD     (n = {N_CURVES} curves)")
    for bp in (0.3, 1.0):
        clean = sim.frame_average(t, sim.srtm_tissue(t, cr, 1.0, 0.1, bp), s, e)
        for level in (0.02, 0.05):
            sd = level * np.sqrt(clean / dur) / np.sqrt(clean.mean() / dur.mean()) * clean.mean()
            noisy = clean + rng.normal(size=(N_CURVES, clean.size)) * sd
            bfm = fit_srtm_bfm(s, e, ref.values, noisy, dtype=np.float64)["BPND"]
            nlls = np.array([fit_srtm(s, e, ref, y).BPND for y in noisy])
            for name, est in (("BFM", bfm), ("NLLS", nlls)):
                print(f"{bp:9.2f} {level:5.0%}  {name:6s} {np.nanmean(est) - bp:+.4f}  "
                      f"{np.nanstd(est):.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
