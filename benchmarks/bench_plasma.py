"""Speed and memory of the plasma-input models.

Run: ``OMP_NUM_THREADS=2 python benchmarks/bench_plasma.py [--voxels N]``.
(a) voxel-wise Logan plasma and MA1 V_T (and the basis-function 1TCM) on an HRRT-sized brain,
2M voxels x 37 frames, float32, real [11C]PBR28 frame schedule and input when the shared data
are present (else a synthetic one); targets < 5 s and < 3 GB each on 2 cores.
(b) regional 2TCM (multistart, vB fitted and fixed) on 6 regions; target < 5 s.
Memory: the process's peak resident set size (data and its simulation included) and the peak
of what each step allocates itself (tracemalloc, numpy arrays included). CPU time
(user + system, all threads) is printed beside the wall time: on a shared machine the wall time
grows with the load, the CPU time does not.
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc
from pathlib import Path

import numpy as np

from tspo_bidsapp.blood import InputFunction
from tspo_bidsapp.kinetics.plasma import PlasmaFrames
from tspo_bidsapp.kinetics.plasma_bfm import one_tcm_bfm
from tspo_bidsapp.kinetics.plasma_compartment import fit_compartment, model_frames
from tspo_bidsapp.kinetics.plasma_graphical import graphical_vt_map
from tspo_bidsapp.kinetics.simulate import feng_input

PBR28 = Path(__file__).resolve().parents[2] / "shared/data/kinfitr_pbr28/sub-cgyu/ses-1/pet"
TARGET_S, TARGET_GB = 5.0, 3.0


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def scan() -> tuple[InputFunction, np.ndarray, np.ndarray, str]:
    """Input function and frames (minutes): the real PBR28 scan, else synthetic."""
    if PBR28.is_dir():
        from tspo_bidsapp.blood import read_input_function
        from tspo_bidsapp.cli.fit import read_tacs

        timing, _, _, _ = read_tacs(next(PBR28.glob("*_tacs.tsv")), None, "kinfitr_weights")
        inp = read_input_function(next(PBR28.glob("*_inputfunction.tsv")))
        return inp, timing.start_min, timing.end_min, "real [11C]PBR28 (cgyu ses-1)"
    dur = np.array([10] * 8 + [20] * 4 + [30] * 4 + [60] * 4 + [180] * 4 + [300] * 13) / 60
    end = np.cumsum(dur)
    t = np.arange(0, end[-1] * 60 + 1) / 60
    return InputFunction(t, 0.05 * feng_input(t)), end - dur, end, "synthetic"


def make_image(pf: PlasmaFrames, n_vox: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """(n_vox, frames) float32 1TCM curves (V_T 1-8 mL/cm³, vB 0.05) with 3 % noise."""
    k2 = np.geomspace(0.02, 0.1, 64)
    curves = np.stack([model_frames(pf, {"K1": 0.1, "k2": k, "vB": 0.05}) for k in k2])
    level = rng.integers(0, k2.size, n_vox)
    data = curves[level].astype(np.float32)
    for lo in range(0, n_vox, 1 << 18):
        block = data[lo : lo + (1 << 18)]
        block += rng.normal(0, 0.03, block.shape).astype(np.float32) * block.mean(1, keepdims=True)
    return data, (0.1 / k2)[level]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--voxels", type=int, default=2_000_000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    inp, start, end, what = scan()
    pf = PlasmaFrames(inp, start, end)
    data, vt = make_image(pf, args.voxels, rng)
    print(f"input: {what}; {args.voxels} voxels x {start.size} frames, float32 "
          f"({data.nbytes / 1e9:.2f} GB); peak RSS after set-up {peak_gb():.2f} GB")  # fmt: skip
    print(f"{'step':<28}{'wall (s)':>10}{'CPU (s)':>9}{'target':>8}{'peak RSS (GB)':>15}"
          f"{'step peak (GB)':>16}{'median |dVT| %':>16}")  # fmt: skip
    runs = {
        "voxel-wise Logan plasma": lambda: graphical_vt_map(pf, data, "logan-plasma", vb=0.05),
        "voxel-wise MA1": lambda: graphical_vt_map(pf, data, "ma1", vb=0.05),
        "voxel-wise 1TCM (basis)": lambda: one_tcm_bfm(pf, data),
    }
    for name, run in runs.items():
        t0, c0 = time.perf_counter(), time.process_time()
        res = run()
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        tracemalloc.start()
        run()
        step_gb = tracemalloc.get_traced_memory()[1] / 1e9
        tracemalloc.stop()
        err = 100 * np.nanmedian(np.abs(res["VT"] / vt - 1))
        print(f"{name:<28}{dt:>10.2f}{cpu:>9.2f}{TARGET_S:>8.1f}{peak_gb():>15.2f}"
              f"{step_gb:>16.3f}{err:>16.2f}")  # fmt: skip
    tacs = [model_frames(pf, {"K1": 0.1, "k2": 0.08, "k3": k3, "k4": 0.04, "vB": 0.05})
            * (1 + 0.02 * rng.standard_normal(start.size)) for k3 in np.linspace(0.02, 0.07, 6)]  # fmt: skip
    for vb in (None, 0.05):
        t0, c0 = time.perf_counter(), time.process_time()
        for y in tacs:
            fit_compartment(pf, y, "2tcm", vb=vb)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        label = f"regional 2TCM x6, vB {'fitted' if vb is None else 'fixed'}"
        print(f"{label:<28}{dt:>10.2f}{cpu:>9.2f}{TARGET_S:>8.1f}{peak_gb():>15.2f}")


if __name__ == "__main__":
    main()
