"""Time and peak memory of voxel-wise PVC (RBV, iterative Yang) on a 22-frame 1-mm T1w image.

Usage: OMP_NUM_THREADS=2 python benchmarks/bench_pvc.py [--iy]

The image is the MNI152 1-mm grid (182 x 218 x 182, 7.2 M voxels) holding the synthetic anatomy
with realistic lesions (every lesion core and rim a region), 22 frames of random activity per
region blurred at 5 mm FWHM. Prints seconds and peak resident memory next to the targets
(RBV < 60 s and < 4 GB on 2 cores) and next to the regional GTM alone.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np
from scipy import ndimage

from tspo_bidsapp.quant.pvc import gtm_correct, psf_sigma_vox
from tspo_bidsapp.quant.pvc_voxel import iterative_yang, pvc_regions, rbv_correct
from tspo_bidsapp.synthetic import anatomy as an
from tspo_bidsapp.synthetic.lesions import draw_lesion_specs, plant_lesions

SHAPE = (182, 218, 182)  # MNI152 1 mm
N_FRAMES = 22
FWHM = 5.0
TARGET_S, TARGET_GB = 60.0, 4.0


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0**2


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iy", action="store_true", help="also time iterative Yang")
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    anatomy = an.build_anatomy(1.0)
    tissue, ids, _ = plant_lesions(anatomy, draw_lesion_specs("SPMS", rng), rng)
    pad = [((s - n) // 2, s - n - (s - n) // 2) for s, n in zip(SHAPE, tissue.shape, strict=True)]
    tissue = np.pad(tissue, pad)[: SHAPE[0], : SHAPE[1], : SHAPE[2]].astype(np.int32)
    ids = np.pad(ids, pad)[: SHAPE[0], : SHAPE[1], : SHAPE[2]].astype(np.int32)
    wm = np.isin(tissue, an.WHITE_MATTER_CLASSES)
    regions = pvc_regions(tissue, ids, wm, (1.0, 1.0, 1.0))
    n_regions = int(np.unique(regions.labels).size)
    values = rng.uniform(0.5, 2.0, (int(regions.labels.max()) + 1, N_FRAMES)).astype(np.float32)
    sigma = psf_sigma_vox(FWHM, (1.0, 1.0, 1.0))
    data = np.empty(SHAPE + (N_FRAMES,), np.float32)
    for f in range(N_FRAMES):
        data[..., f] = ndimage.gaussian_filter(values[regions.labels, f], sigma, mode="nearest")
    base_gb = peak_gb()
    print(f"image {SHAPE} x {N_FRAMES} frames ({data.nbytes / 1e9:.2f} GB float32), "
          f"{n_regions} PVC regions ({regions.n_lesions} lesions)")  # fmt: skip
    t0, c0 = time.perf_counter(), time.process_time()
    gtm_correct(data, regions.labels, (1.0, 1.0, 1.0), FWHM)
    t_gtm, c_gtm = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    res = rbv_correct(data, regions.labels, (1.0, 1.0, 1.0), FWHM)
    t_rbv, c_rbv = time.perf_counter() - t0, time.process_time() - c0
    err = np.abs(res.image - values[regions.labels]).max()
    print(f"{'step':22s} {'wall s':>7s} {'CPU s':>6s} {'target s':>9s} {'peak GB':>8s} "
          f"{'target GB':>9s}   (load average {os.getloadavg()[0]:.1f})")  # fmt: skip
    print(f"{'GTM (regional)':22s} {t_gtm:7.1f} {c_gtm:6.1f}")
    print(f"{'RBV (GTM + 22 frames)':22s} {t_rbv:7.1f} {c_rbv:6.1f} {TARGET_S:9.0f} "
          f"{peak_gb():8.2f} {TARGET_GB:9.1f}")  # fmt: skip
    print(f"  (input image and labels alone: {base_gb:.2f} GB; max |RBV - truth| = {err:.2g})")
    if args.iy:
        t0 = time.perf_counter()
        iterative_yang(data, regions.labels, (1.0, 1.0, 1.0), FWHM)
        print(f"{'iterative Yang (30 it.)':22s} {time.perf_counter() - t0:8.1f}")


if __name__ == "__main__":
    main()
