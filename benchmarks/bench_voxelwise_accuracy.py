"""Voxel-wise SRTM accuracy, speed and memory, side by side, on an independently generated truth.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_voxelwise_accuracy.py [--size small|hrrt] [--clock cpu]``
(one thread: with two, the idle BLAS thread's spinning inflates the floor's CPU time up to 3x).

Truth (made here, not with the project's forward model): a plasma input of three exponentials,
a one-tissue reference region and SRTM targets solved as ODEs by ``scipy.integrate.odeint`` on a
2-s grid, frame-averaged by the trapezoid rule; a brain-shaped phantom (ellipsoid, cortical GM
shell, WM core, high-binding lesions, smooth spatial variation of R1 and BPND), [11C]PK11195-like
kinetics (k2' 0.1/min). Noise: Gaussian with the variance of decay-corrected counts
(``∝ C e^{λt}/Δt``), scaled to CoV 15 % in the 5-min frame at 40-45 min of mean GM.

Methods: the tspo-bidsapp voxel-wise SRTM estimators (``--voxelwise-estimator``: basis functions,
two-pass, two-pass with a spatial k2a prior, SRTM2 with the 2x2x2 block prior, LRSC of Zhou
2003), SRTM2 basis functions with the median k2' of the full SRTM map; the floor (chunked GEMM +
square + argmax of the BFM's size, 200 functions, and of the block fit's 64); a
per-voxel scipy ``curve_fit`` SRTM on a subsample (time extrapolated); PETPAL in a subprocess if
``--petpal-python`` (default /work/petpal-venv/bin/python) exists, else skipped with a message.
Outlier: BPND error > 0.5 or not finite. Peak memory: tracemalloc peak during the fit; times:
min of 3 runs (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from scipy.integrate import odeint
from scipy.ndimage import gaussian_filter
from scipy.optimize import curve_fit
from scipy.signal import lfilter

from tspo_bidsapp.kinetics.bfm import DEFAULT_N_BASIS, fit_srtm2_bfm, fit_srtm_bfm, reliable_k2prime
from tspo_bidsapp.kinetics.bfm_block import BLOCK_N_BASIS, fit_srtm_bfm_block
from tspo_bidsapp.kinetics.bfm_spatial import fit_srtm_bfm_spatial, fit_srtm_bfm_two_pass
from tspo_bidsapp.kinetics.lrsc import fit_srtm_lrsc
from tspo_bidsapp.kinetics.registry_models import DEFAULT_SRTM_MAP_ESTIMATOR
from tspo_bidsapp.kinetics.voxelwise import DEFAULT_CHUNK_VOXELS

PETPAL_VERSION = "0.7.1"
_CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = _CLOCKS["wall"]
SIZES = {"small": (64, 76, 64), "hrrt": (150, 180, 150)}
DURATIONS_S = (15.0,) * 4 + (30.0,) * 4 + (60.0,) * 3 + (120.0,) * 2 + (300.0,) * 8 + (600.0,)
HALF_LIFE_MIN = 20.4  # 11C
K2PRIME = 0.1  # 1/min
DT = 1.0 / 30.0  # 2-s truth grid, minutes
PETPAL_TSTAR_MIN = 10.0  # start of the linear phase for PETPAL's original MRTM (Ichise 1996)


def truth_curves(start, end, k2a_levels):
    """Reference frame averages and, per k2a, frame averages of v with dv/dt = C_R - k2a v."""
    t = np.arange(0.0, end[-1] + DT, DT)

    def cp(x):  # plasma input, kBq/mL: a fast bolus peak and two washout phases
        x = np.maximum(x - 0.3, 0.0)
        return 40.0 * x * np.exp(-3.0 * x) + 1.5 * np.exp(-0.2 * x) * (x > 0) + 0.8 * (x > 0)

    cr = odeint(lambda c, x: 0.12 * cp(x) - 0.25 * c, 0.0, t, hmax=DT)[:, 0]

    def frames(curve):
        out = np.empty(len(start))
        for i, (a, b) in enumerate(zip(start, end, strict=True)):
            sel = (t >= a - 1e-9) & (t <= b + 1e-9)
            c, x = curve[sel], t[sel]
            out[i] = np.sum(0.5 * (c[1:] + c[:-1]) * np.diff(x)) / (b - a)  # trapezoid
        return out

    def v_of(k):
        return odeint(lambda v, x: np.interp(x, t, cr) - k * v, 0.0, t, hmax=DT)[:, 0]

    return frames(cr), np.stack([frames(v_of(k)) for k in k2a_levels]), t, cr


def phantom(shape, rng):
    """Mask and truth maps R1, BPND, k2a-level index (k2a snapped to 128 levels)."""
    axes = [np.linspace(-1.1, 1.1, n, dtype=np.float32) for n in shape]
    x, y, z = np.meshgrid(*axes, indexing="ij", sparse=True)
    rad = np.sqrt(x**2 + (y / 1.15) ** 2 + z**2)
    mask = rad <= 1.0
    gm = mask & (rad > 0.8)
    r1 = np.where(gm, 1.05, 0.75).astype(np.float32)
    bp = np.where(gm, 0.45, 0.25).astype(np.float32)
    for c in rng.uniform(-0.5, 0.5, (12, 3)):  # lesions, radius 4-10 % of the brain
        les = (x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2 <= rng.uniform(0.04, 0.1) ** 2
        r1[les], bp[les] = 0.9, rng.uniform(0.8, 1.6)
    for arr, amp in ((r1, 0.1), (bp, 0.25)):  # smooth biological variation
        arr *= 1 + amp * np.tanh(gaussian_filter(rng.standard_normal(shape), 4) * 8)
    levels = np.geomspace(0.015, 0.2, 128)
    k2a = K2PRIME * r1 / (1 + bp)
    idx = np.clip(np.searchsorted(levels, k2a), 0, levels.size - 1).astype(np.int16)
    bp = (K2PRIME * r1 / levels[idx] - 1).astype(np.float32)
    return mask, r1, bp, idx, levels


def noisy_image(shape, rng, start, end):
    mask, r1, bp, idx, levels = phantom(shape, rng)
    ref, v, _, _ = truth_curves(start, end, levels)
    n_f = len(start)
    mid, dur = 0.5 * (start + end), end - start
    var_shape = np.exp(np.log(2) * mid / HALF_LIFE_MIN) / dur
    late = int(np.argmin(np.abs(mid - 42.5)))
    data = np.zeros(shape + (n_f,), np.float32)
    vox = np.flatnonzero(mask)
    r1f, idxf = r1.ravel()[vox], idx.ravel()[vox]
    k2a = levels[idxf]
    tac = r1f[:, None] * ref + (K2PRIME * r1f - r1f * k2a)[:, None] * v[idxf]
    mean_late = float(np.mean(tac[:, late]))
    scale = 0.15 * mean_late / np.sqrt(mean_late * var_shape[late])
    tac += scale * np.sqrt(np.clip(tac, 0, None) * var_shape) * rng.standard_normal(tac.shape)
    data.reshape(-1, n_f)[vox] = tac
    return data, mask, bp, ref


def measure(fn, repeats: int = 3):
    """Result, min wall time of ``repeats`` runs, tracemalloc peak (MiB) of the first run."""
    tracemalloc.start()
    out = fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    times = []
    for _ in range(repeats):
        t0 = _clock()
        fn()
        times.append(_clock() - t0)
    return out, min(times), peak / 2**20


def score(est, truth):
    err = np.abs(np.asarray(est, float) - truth)
    bad = ~np.isfinite(err) | (err > 0.5)
    return float(np.nanmedian(err)), float(bad.mean())


def floor_gemm(tacs, n_basis=DEFAULT_N_BASIS, chunk=DEFAULT_CHUNK_VOXELS):
    """Chunked GEMM + square + argmax of the BFM's size (float32), on the brain voxels' TACs
    already gathered into one contiguous (voxels x frames) array (gather not timed)."""
    q = np.random.default_rng(0).standard_normal((tacs.shape[-1], n_basis)).astype(np.float32)
    t0 = _clock()
    for lo in range(0, tacs.shape[0], chunk):
        p = tacs[lo : lo + chunk] @ q
        np.multiply(p, p, out=p)
        p.argmax(axis=1)
    return _clock() - t0


def scipy_per_voxel(start, end, ref, tacs):
    """Per-voxel SRTM by curve_fit, its own rectangle-rule convolution on a 6-s grid."""
    step = 0.1
    t = np.arange(0, end[-1] + step, step)
    mid = 0.5 * (start + end)
    cr = np.interp(t, np.r_[0, mid], np.r_[0, ref])
    sel = [(t >= a) & (t < b) for a, b in zip(start, end, strict=True)]
    w = np.sqrt(end - start)

    def model(_, r1, k2, bp):
        k2a = k2 / (1 + bp)
        conv = lfilter([step], [1, -np.exp(-k2a * step)], cr)
        ct = r1 * cr + (k2 - r1 * k2a) * conv
        return np.array([ct[s].mean() for s in sel]) * w

    out = np.full(len(tacs), np.nan)
    for i, y in enumerate(tacs):
        try:
            p, _ = curve_fit(model, None, y * w, p0=(1, 0.1, 0.5),
                             bounds=((0, 1e-3, -0.9), (5, 2, 10)), max_nfev=400)  # fmt: skip
            out[i] = p[2]
        except RuntimeError:
            pass
    return out


PETPAL_SCRIPT = r"""
import json, sys, time, numpy as np
from petpal.kinetic_modeling import reference_tissue_models as rtm
d = np.load(sys.argv[1])
y, ref, mid, tstar = d["tacs"], d["ref"], d["mid"], float(d["tstar"])
y = np.where(y == 0, 1e-6, y)  # PETPAL 0.7.1 drops zero frames but not their weights: avoid exact 0
rtm.fit_mrtm_original_to_tac(mid, y[0], ref, tstar)  # numba compilation, not timed
t0 = time.perf_counter()
bp = [rtm.calc_bp_from_mrtm_original_fit(rtm.fit_mrtm_original_to_tac(mid, v, ref, tstar)[0])
      for v in y]
print(json.dumps({"time": time.perf_counter() - t0, "bp": [float(b) for b in bp]}))
"""


def petpal(python, start, end, ref, tacs):
    if not Path(python).exists():
        return (
            None,
            f"PETPAL skipped: {python} not found (pip install petpal into a Python 3.12 venv)",
        )
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "d.npz"
        np.savez(f, tacs=tacs, ref=ref, mid=0.5 * (start + end), tstar=PETPAL_TSTAR_MIN)
        run = subprocess.run([python, "-c", PETPAL_SCRIPT, str(f)], capture_output=True, text=True)
    if run.returncode:
        return None, "PETPAL failed: " + " | ".join(run.stderr.strip().splitlines()[-4:])
    res = json.loads(run.stdout.strip().splitlines()[-1])
    return (
        res,
        f"PETPAL {PETPAL_VERSION}: original MRTM per voxel (numba), t* {PETPAL_TSTAR_MIN} min",
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", choices=SIZES, default="small")
    parser.add_argument("--subsample", type=int, default=200, help="voxels for scipy/PETPAL")
    parser.add_argument("--petpal-subsample", type=int, default=20000)
    parser.add_argument("--petpal-python", default="/work/petpal-venv/bin/python")
    parser.add_argument("--clock", choices=_CLOCKS, default="wall",
                        help="cpu: process CPU time (all threads), robust on a loaded machine")  # fmt: skip
    parser.add_argument("--skip-slow", action="store_true", help="no scipy/PETPAL baselines")
    args = parser.parse_args()
    global _clock
    _clock = _CLOCKS[args.clock]
    rng = np.random.default_rng(0)
    end = np.cumsum(DURATIONS_S) / 60.0
    start = end - np.asarray(DURATIONS_S) / 60.0
    data, mask, bp, ref = noisy_image(SIZES[args.size], rng, start, end)
    n = int(mask.sum())
    truth = bp[mask]
    print(f"{args.size}: {n} brain voxels x {len(start)} frames, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, {args.clock} clock, "
          f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")  # fmt: skip
    rows = []
    brain = np.ascontiguousarray(data[mask])
    floor = min(floor_gemm(brain) for _ in range(3))
    floor_block = min(floor_gemm(brain, BLOCK_N_BASIS) for _ in range(3))
    del brain
    rows.append((f"floor: chunked GEMM+square+argmax, {DEFAULT_N_BASIS}", floor, float("nan"),
                 None, None, None))  # fmt: skip
    rows.append((f"floor at {BLOCK_N_BASIS} functions", floor_block, float("nan"), None, None,
                 None))  # fmt: skip
    for name, fn in (
        ("bfm: SRTM BFM", lambda: fit_srtm_bfm(start, end, ref, data, mask=mask)),
        ("bfm-two-pass: pilot k2', SRTM2 BFM",
         lambda: fit_srtm_bfm_two_pass(start, end, ref, data, mask=mask)),
        ("bfm-spatial: two-pass + k2a prior",
         lambda: fit_srtm_bfm_spatial(start, end, ref, data, mask=mask)),
        ("bfm-block: SRTM2 BFM + 2x2x2 block prior",
         lambda: fit_srtm_bfm_block(start, end, ref, data, mask=mask)),
        ("lrsc: SRTM LRSC (Zhou 2003)", lambda: fit_srtm_lrsc(start, end, ref, data, mask=mask)),
    ):  # fmt: skip
        if name.startswith(DEFAULT_SRTM_MAP_ESTIMATOR + ":"):
            name += " (default)"
        res, dt, peak = measure(fn)
        med, out = score(res["BPND"][mask], truth)
        rows.append((name, dt, peak, med, out, float(res["edge"][mask].mean())))
        if name.startswith("bfm:"):
            k2p = reliable_k2prime(res, mask)
    res, dt, peak = measure(lambda: fit_srtm2_bfm(start, end, ref, data, k2p, mask=mask))
    med, out = score(res["BPND"][mask], truth)
    rows.append((f"SRTM2 BFM, k2' {k2p:.3f} of the bfm map", dt, peak, med, out,
                 float(res["edge"][mask].mean())))  # fmt: skip
    notes = []
    if not args.skip_slow:
        sub = rng.choice(n, min(args.subsample, n), replace=False)
        tacs = data[mask][sub].astype(float)
        t0 = _clock()
        est = scipy_per_voxel(start, end, ref, tacs)
        per = (_clock() - t0) / len(sub)
        med, out = score(est, truth[sub])
        rows.append(
            ("scipy curve_fit SRTM per voxel (extrap.)", per * n, float("nan"), med, out, None)
        )
        sub = rng.choice(n, min(args.petpal_subsample, n), replace=False)
        res, note = petpal(args.petpal_python, start, end, ref, data[mask][sub].astype(float))
        notes.append(note)
        if res is not None:
            med, out = score(np.array(res["bp"]), truth[sub])
            rows.append(("PETPAL MRTM per voxel (extrap.)", res["time"] / len(sub) * n,
                         float("nan"), med, out, None))  # fmt: skip
    print(f"{'method':44s} {'time s':>9s} {'x floor':>8s} {'peak MB':>8s} {'BPND MAE':>9s} "
          f"{'outliers':>9s} {'edge':>6s}")  # fmt: skip
    for name, dt, peak, med, out, edge in rows:
        fmt = lambda v, f: "-" if v is None or v != v else format(v, f)  # noqa: E731
        print(f"{name:44s} {dt:9.2f} {dt / floor:8.2f} {fmt(peak, '8.0f'):>8s} "
              f"{fmt(med, '.4f'):>9s} {fmt(out, '.3f'):>9s} {fmt(edge, '.3f'):>6s}")  # fmt: skip
    for note in notes:
        print(note)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
