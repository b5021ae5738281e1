"""Time TAC extraction, GTM and SRTM basis-function maps on the synthetic test participant.

Usage: python benchmarks/bench_quant.py [WORK_DIR]   (prints seconds and peak memory)
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage
from synthetic_participant import synthetic_participant  # benchmarks/ (script directory)

from tspo_bidsapp.quant.maps import voxelwise_maps
from tspo_bidsapp.quant.pvc import gtm_correct
from tspo_bidsapp.quant.regional import ModelSettings
from tspo_bidsapp.quant.tacs import region_means


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(work: Path) -> None:
    truth, t1w, labels = synthetic_participant(work)
    pet = nib.load(truth.pet)
    data = np.asarray(pet.dataobj, np.float32)
    m = np.linalg.inv(pet.affine) @ np.linalg.inv(truth.pet_to_t1w) @ t1w.affine
    ijk = m[:3, :3] @ np.indices(labels.shape, dtype=np.float32).reshape(3, -1) + m[:3, 3:4]
    pet_t1w = np.stack(
        [ndimage.map_coordinates(data[..., k], ijk, order=1) for k in range(data.shape[3])], -1
    ).reshape(labels.shape + (data.shape[3],))
    print(
        f"T1w grid {labels.shape}, {data.shape[3]} frames, {int((labels > 0).sum())} brain voxels"
    )
    base = peak_mb()
    for name, call in (
        ("TAC extraction (region_means)", lambda: region_means(pet_t1w, labels)),
        ("GTM PVC (5 mm)", lambda: gtm_correct(pet_t1w, labels, t1w.header.get_zooms()[:3], 5.0)),
        ("SRTM BFM maps", lambda: voxelwise_maps(
            truth.timing, truth.reference_tac, pet_t1w, labels > 0, ModelSettings())),
    ):  # fmt: skip
        t0 = time.perf_counter()
        call()
        print(f"{name:32s} {time.perf_counter() - t0:7.2f} s   peak RSS {peak_mb():8.0f} MB")
    print(f"(peak RSS before the timed steps: {base:.0f} MB)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()))
