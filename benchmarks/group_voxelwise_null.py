"""False-positive rate of the voxel-wise group analysis on null data (no group effect).

Each simulation: 24 participants (12 HC, 12 SPMS), age, sex and genotype covariates (the
genotype lowers DVR everywhere, as for a second-generation tracer), 16^3 voxel maps of smooth
Gaussian noise (4 mm voxels, 8 mm FWHM) with 5 % of voxels masked as lesions in each
patient, the SPMS - HC contrast. Counts the simulations with at least one false positive
(the family-wise error rate) for the voxel max-|t| FWE, the cluster-size FWE (p < 0.001
forming) and the voxel FDR; target <= alpha = 0.05.

Usage: python benchmarks/group_voxelwise_null.py [N_SIM] [N_PERM]   (defaults 200, 500)
"""

from __future__ import annotations

import sys
import time

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

from tspo_bidsapp.group import voxelwise

SHAPE = (16, 16, 16)
AFFINE = np.diag([4.0, 4, 4, 1])


def null_study(rng: np.random.Generator, n: int = 12):
    info = pd.DataFrame({"group": ["HC"] * n + ["SPMS"] * n, "age": rng.uniform(30, 60, 2 * n),
                         "sex": rng.choice(["F", "M"], 2 * n),
                         "tspo_genotype": ["HAB", "MAB"] * n})  # fmt: skip
    images = []
    sigma = 8.0 / np.sqrt(8 * np.log(2)) / 4.0
    for k in range(2 * n):
        noise = ndimage.gaussian_filter(rng.normal(0, 1, SHAPE), sigma)
        data = 1.2 + 0.05 * noise / noise.std() - 0.1 * (info.at[k, "tspo_genotype"] == "MAB")
        if info.at[k, "group"] == "SPMS":
            data[rng.random(SHAPE) < 0.05] = np.nan  # lesions: left out of the analysis
        images.append(nib.Nifti1Image(data.astype(np.float32), AFFINE))
    return info, images


def main(n_sim: int = 200, n_perm: int = 500, alpha: float = 0.05) -> None:
    rng = np.random.default_rng(2026)
    mask = nib.Nifti1Image(np.ones(SHAPE, np.uint8), AFFINE)
    hits = {"voxel FWE": 0, "cluster FWE": 0, "voxel FDR": 0}
    start = time.perf_counter()
    for i in range(n_sim):
        info, images = null_study(rng)
        design = voxelwise.group_design(info, adjust_genotype=True)
        vec = voxelwise.contrast_vector(design, "HC", "SPMS")
        fwe = voxelwise.permutation_fwe(images, design, vec, mask, n_perm=n_perm, random_state=i)
        hits["voxel FWE"] += bool((fwe["logp_voxel"].get_fdata() > -np.log10(alpha)).any())
        hits["cluster FWE"] += bool((fwe["logp_cluster"].get_fdata() > -np.log10(alpha)).any())
        _, thr, _ = voxelwise.second_level(images, design, vec, mask, alpha=alpha)
        hits["voxel FDR"] += bool(np.any(thr.get_fdata() != 0))
    took = time.perf_counter() - start
    print(f"null simulations: {n_sim}, permutations: {n_perm}, alpha {alpha}, {took:.0f} s")
    se = np.sqrt(alpha * (1 - alpha) / n_sim)
    for name, k in hits.items():
        print(f"  {name:12s} family-wise false-positive rate {k / n_sim:.3f} "
              f"({k}/{n_sim}; binomial SE at alpha {se:.3f})")  # fmt: skip


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
