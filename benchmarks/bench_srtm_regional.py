"""Regional SRTM (NLLS) on 100 noisy TACs: time and BPND error, this tree vs a baseline tree.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_srtm_regional.py [--baseline /path/to/checkout]``.
The same script runs itself in a subprocess with ``PYTHONPATH`` set to the baseline checkout
(default ``/work/main``) and prints both rows side by side. TACs: SRTM curves (R1 0.7-1.3,
k2' 0.05-0.3/min, BPND 0-1.5) on the 22-frame 60-min TSPO schedule, 3 % Gaussian noise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def run_here(n: int, repeats: int) -> dict:
    from tspo_bidsapp.io.timing import TSPO_60MIN_DURATIONS_S, FrameTiming
    from tspo_bidsapp.kinetics import simulate as sim
    from tspo_bidsapp.kinetics.frames import InterpolatedReference
    from tspo_bidsapp.kinetics.srtm import fit_srtm_regions

    ft = FrameTiming.from_durations_s(TSPO_60MIN_DURATIONS_S)
    s, e = ft.start_min, ft.end_min
    t = sim.fine_grid(e[-1])
    ref = sim.frame_average(t, sim.reference_tac(t), s, e)
    interp = InterpolatedReference(s, e, ref)
    rng = np.random.default_rng(0)
    r1 = rng.uniform(0.7, 1.3, n)
    k2 = r1 * rng.uniform(0.05, 0.3, n)
    bp = rng.uniform(0.0, 1.5, n)
    k2a = k2 / (1 + bp)
    tacs = {
        f"r{i}": (r1[i] * ref + (k2[i] - r1[i] * k2a[i]) * interp.conv_frames(k2a[i]))
        * (1 + 0.03 * rng.standard_normal(ref.size))
        for i in range(n)
    }
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = fit_srtm_regions(s, e, ref, tacs)
        times.append(time.perf_counter() - t0)
    est = np.array([r.BPND for r in res])
    err = np.abs(est - bp)
    return {
        "time_s": min(times),
        "median_abs_err": float(np.median(err)),
        "max_abs_err": float(np.max(err)),
        "n_edge": int(sum(r.edge for r in res)),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", default="/work/main")
    parser.add_argument("-n", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.json:
        print(json.dumps(run_here(args.n, args.repeats)))
        return
    here = Path(__file__).resolve().parents[1]
    rows = {}
    for name, root in (("baseline " + args.baseline, args.baseline), ("this tree", str(here))):
        env = {**os.environ, "PYTHONPATH": root}
        cmd = [sys.executable, str(Path(__file__).resolve()), "--json", "-n", str(args.n),
               "--repeats", str(args.repeats)]  # fmt: skip
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        rows[name] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"regional SRTM, {args.n} TACs, min of {args.repeats}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(
        f"{'code':40s} {'time s':>7s} {'ms/TAC':>7s} {'BPND MAE':>9s} {'max err':>8s} {'edge':>5s}"
    )
    for name, r in rows.items():
        print(f"{name:40s} {r['time_s']:7.2f} {r['time_s'] * 1e3 / args.n:7.1f} "
              f"{r['median_abs_err']:9.4f} {r['max_abs_err']:8.4f} {r['n_edge']:5d}")  # fmt: skip
    base, new = rows.values()
    print(f"speed-up x{base['time_s'] / new['time_s']:.1f}")


if __name__ == "__main__":
    main()
