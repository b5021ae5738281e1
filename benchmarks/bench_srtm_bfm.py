"""Speed and memory of voxel-wise SRTM basis functions on whole-brain-sized images.

Run: ``OMP_NUM_THREADS=2 python benchmarks/bench_srtm_bfm.py [--quick]``.
(a) 2 mm brain (~250k voxels) and (b) HRRT-like brain (~2M voxels), 22 frames, 100 basis
functions, float32; compared with a per-voxel scipy NLLS fit on a subsample (extrapolated).
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc

import numpy as np

from tspo_bidsapp.io.timing import TSPO_60MIN_DURATIONS_S, FrameTiming
from tspo_bidsapp.kinetics import simulate as sim
from tspo_bidsapp.kinetics.bfm import fit_srtm_bfm
from tspo_bidsapp.kinetics.frames import InterpolatedReference
from tspo_bidsapp.kinetics.srtm import fit_srtm

CASES = {"a_2mm": (74, 88, 74), "b_hrrt": (150, 180, 150)}


def make_image(shape, ref: InterpolatedReference, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ellipsoid brain of SRTM curves (R1 0.6-1.4, BPND 0.05-2, k2' 0.1/min) with 3 % noise."""
    axes = [np.linspace(-1, 1, n, dtype=np.float32) for n in shape]
    x, y, z = np.meshgrid(*axes, indexing="ij", sparse=True)
    mask = (x**2 + y**2 + z**2) <= 1.0
    n = int(mask.sum())
    k2a_levels = np.geomspace(0.02, 0.4, 64)
    conv = np.stack([ref.conv_frames(k) for k in k2a_levels]).astype(np.float32)
    data = np.zeros(shape + (ref.n_frames,), dtype=np.float32)
    idx = np.flatnonzero(mask)
    bp = np.empty(n, np.float32)
    flat = data.reshape(-1, ref.n_frames)
    for lo in range(0, n, 1 << 18):
        sl = slice(lo, min(n, lo + (1 << 18)))
        m = sl.stop - sl.start
        level = rng.integers(0, k2a_levels.size, m)
        r1 = rng.uniform(0.6, 1.4, m).astype(np.float32)
        k2a = k2a_levels[level].astype(np.float32)
        k2 = 0.1 * r1
        bp[sl] = k2 / k2a - 1
        tac = r1[:, None] * ref.values.astype(np.float32) + (k2 - r1 * k2a)[:, None] * conv[level]
        tac += rng.normal(0, 0.03, tac.shape).astype(np.float32) * tac.mean(1, keepdims=True)
        flat[idx[sl]] = tac
    return data, mask, bp


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="case (a) only")
    parser.add_argument("--n-basis", type=int, default=100)
    parser.add_argument("--subsample", type=int, default=100)
    args = parser.parse_args()
    ft = FrameTiming.from_durations_s(TSPO_60MIN_DURATIONS_S)
    t = sim.fine_grid(ft.end_min[-1])
    ref_values = sim.frame_average(t, sim.reference_tac(t), ft.start_min, ft.end_min)
    ref = InterpolatedReference(ft.start_min, ft.end_min, ref_values)
    rng = np.random.default_rng(0)
    for name, shape in CASES.items():
        if args.quick and name != "a_2mm":
            continue
        data, mask, bp = make_image(shape, ref, rng)
        n = int(mask.sum())
        tracemalloc.start()
        t0 = time.perf_counter()
        res = fit_srtm_bfm(
            ft.start_min, ft.end_min, ref_values, data, mask=mask, n_basis=args.n_basis
        )
        dt = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        err = res["BPND"][mask] - bp
        print(f"[{name}] image {shape}x{ref.n_frames} ({data.nbytes / 2**20:.0f} MiB float32), "
              f"{n} brain voxels, {args.n_basis} basis functions")  # fmt: skip
        print(f"  BFM: {dt:.2f} s, {n / dt / 1e6:.2f} M voxels/s, peak extra memory during fit "
              f"{peak / 2**20:.0f} MiB; BPND error median {np.median(err):+.4f}, "
              f"IQR {np.subtract(*np.percentile(err, [75, 25])):.4f}")  # fmt: skip
        sub = rng.choice(np.flatnonzero(mask.ravel()), args.subsample, replace=False)
        tacs = data.reshape(-1, ref.n_frames)[sub]
        t0 = time.perf_counter()
        for tac in tacs:
            fit_srtm(ft.start_min, ft.end_min, ref, tac)
        per = (time.perf_counter() - t0) / args.subsample
        print(f"  per-voxel scipy NLLS: {per * 1e3:.1f} ms/voxel -> {per * n / 60:.1f} min "
              f"extrapolated; BFM speed-up x{per * n / dt:.0f}")  # fmt: skip
        del data, res
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    print(f"process peak RSS (data generation included): {rss:.0f} MiB")


if __name__ == "__main__":
    main()
