"""Benchmark: seconds and peak memory of PET motion correction + PET -> T1w co-registration.

A 22-frame 2 mm synthetic PET with a 1 mm T1w (``tspo_bidsapp.synthetic``) is processed in a
fresh child process (so its peak resident memory is that of the preprocessing alone), with
``--nthreads`` ITK/OpenMP threads. ``--repeat 1 2`` also runs the PET with every frame
repeated twice (44 frames) to show how memory scales with the number of frames.

    python benchmarks/bench_pet_preproc.py [--workdir DIR] [--nthreads 2] [--repeat 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_SECONDS = 120.0
GOAL_PEAK_GB = 4.0


def _child(truth_dir: str, repeat: int, nthreads: int) -> dict:
    """Run motion correction + co-registration once; return timings, memory and errors."""
    import nibabel as nib
    import numpy as np

    from tspo_bidsapp.registration import coregister_pet_to_t1w, correct_motion
    from tspo_bidsapp.registration.evaluate import registration_errors
    from tspo_bidsapp.synthetic import load_truth

    truth = load_truth(truth_dir, "01")
    pet = nib.load(truth.pet)
    starts, durations = truth.timing.start_s, truth.timing.duration_s
    if repeat > 1:
        data = np.asanyarray(pet.dataobj, dtype=np.float32)
        pet = nib.Nifti1Image(np.repeat(data, repeat, axis=3), pet.affine)
        durations = np.repeat(durations / repeat, repeat)
        starts = np.concatenate([[0.0], np.cumsum(durations)[:-1]]) + starts[0]
    tissue = nib.load(truth.tissue)
    labels = np.asanyarray(tissue.dataobj)
    mask = nib.Nifti1Image((labels > 0).astype(np.uint8), tissue.affine)
    t0 = time.perf_counter()
    res = correct_motion(pet, starts, durations, omp_nthreads=nthreads)
    t1 = time.perf_counter()
    coreg = coregister_pet_to_t1w(
        nib.Nifti1Image(res.petref, pet.affine),
        nib.load(truth.t1w),
        brain_mask=mask,
        omp_nthreads=nthreads,
    )
    t2 = time.perf_counter()
    out = {
        "frames": int(pet.shape[3]),
        "pet_shape": list(pet.shape[:3]),
        "t1w_shape": list(nib.load(truth.t1w).shape[:3]),
        "hmc_s": t1 - t0,
        "coreg_s": t2 - t1,
        "total_s": t2 - t0,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
    }
    if repeat == 1:
        ijk = np.argwhere(labels > 1)[::4]
        points = ijk @ tissue.affine[:3, :3].T + tissue.affine[:3, 3]
        err = registration_errors(
            res.itk_matrices, coreg, truth.motion, truth.pet_to_t1w, points, starts >= 120.0
        )
        out.update(motion_error_mm=err.motion_mean, coreg_error_mm=err.coreg)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="where the synthetic data go (default: tmp)")
    parser.add_argument("--nthreads", type=int, default=2)
    parser.add_argument("--repeat", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        truth_dir, repeat, nthreads = args.child
        print(json.dumps(_child(truth_dir, int(repeat), int(nthreads))))
        return 0

    from tspo_bidsapp.synthetic import generate_dataset

    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        truth_dir = work / "truth"
        if not (truth_dir / "sub-01" / "truth.json").is_file():
            generate_dataset(work / "bids", truth_dir, size="test", n_subjects=1, t1w_voxel_mm=1.0)
        env = dict(os.environ, OMP_NUM_THREADS=str(args.nthreads))
        env["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(args.nthreads)
        results = []
        for repeat in args.repeat:
            cmd = [
                sys.executable,
                __file__,
                "--child",
                str(truth_dir),
                str(repeat),
                str(args.nthreads),
            ]
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    for r in results:
        line = (
            f"{r['frames']:3d} frames PET {r['pet_shape']} -> T1w {r['t1w_shape']}: "
            f"motion correction {r['hmc_s']:.1f} s, co-registration {r['coreg_s']:.1f} s, "
            f"total {r['total_s']:.1f} s, peak memory {r['peak_rss_gb']:.2f} GB"
        )
        if "motion_error_mm" in r:
            line += (
                f"; errors: motion {r['motion_error_mm']:.3f} mm, "
                f"co-registration {r['coreg_error_mm']:.3f} mm"
            )
        print(line)
    first = results[0]
    print(
        f"goal: < {GOAL_SECONDS:.0f} s and < {GOAL_PEAK_GB:.0f} GB on {args.nthreads} threads -> "
        f"{'met' if first['total_s'] < GOAL_SECONDS and first['peak_rss_gb'] < GOAL_PEAK_GB else 'NOT met'}"
    )
    if len(results) > 1:
        base, big = results[0], results[-1]
        ratio = big["frames"] / base["frames"]
        print(
            f"memory x{big['peak_rss_gb'] / base['peak_rss_gb']:.2f} for x{ratio:.0f} frames "
            f"(quadratic growth would be x{ratio**2:.0f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
