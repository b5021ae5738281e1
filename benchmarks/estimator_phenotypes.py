"""Lesion phenotypes from voxel-wise SRTM DVR maps, per voxel-wise estimator, over participants.

The pipeline of ``tests/test_quant_synthetic.py`` (true PET->T1w transform, true tissue map,
no partial-volume correction, voxel phenotype rule with the mean + 2 SD threshold of the
participant's NAWM voxel DVR) on several synthetic MS participants (``test`` size, seeds
``--seeds``, groups RRMS and SPMS), the same data for every estimator:

    OMP_NUM_THREADS=1 python benchmarks/estimator_phenotypes.py --seeds 42 1 2 --estimators bfm bfm-block

Prints correct/n per estimator overall, per size bin (equivalent diameter < 5, 5-10, > 10 mm) and
per true phenotype, the lesions where the estimators disagree, and the paired count of lesions
only one estimator gets right (sign test).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy.stats import binomtest

from tspo_bidsapp.quant.maps import voxelwise_maps
from tspo_bidsapp.quant.phenotypes import PhenotypeRule, active_threshold, lesion_phenotypes
from tspo_bidsapp.quant.regional import ModelSettings
from tspo_bidsapp.quant.tacs import region_means
from tspo_bidsapp.synthetic import anatomy as an
from tspo_bidsapp.synthetic import generate_dataset, load_truth

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_quant_synthetic import REF, pet_on_t1w_grid, truth_regions  # noqa: E402

BINS = ((0, 5, "<5mm"), (5, 10, "5-10mm"), (10, 1e9, ">10mm"))


def participant_rows(truth, estimators):
    """Per lesion and estimator: (estimator, id, diameter, true phenotype, call)."""
    t1w, tissue, labels, zooms = truth_regions(truth)
    data = pet_on_t1w_grid(nib.load(truth.pet), t1w, truth.pet_to_t1w)
    means, _ = region_means(data, labels)
    ids = np.asarray(nib.load(truth.lesion_ids).dataobj).astype(np.int32)
    wm = np.isin(tissue, an.WHITE_MATTER_CLASSES)
    rows = []
    for est in estimators:
        t0 = time.process_time()
        maps, _ = voxelwise_maps(truth.timing, means[REF], data, labels > 0,
                                 ModelSettings(models=("SRTM",), voxelwise_estimator=est))  # fmt: skip
        dvr = maps[("SRTM", "DVR")]
        thr, _ = active_threshold(dvr[tissue == an.NAWM], k=2.0)
        table = lesion_phenotypes(dvr, ids, wm, zooms, PhenotypeRule(thr, threshold_k=2.0))
        merged = table.merge(truth.lesions, left_on="lesion_id", right_on="id")
        for r in merged.itertuples():
            rows.append((est, r.lesion_id, r.diameter_mm, r.phenotype_y, r.phenotype_x))
        print(f"    {est}: {time.process_time() - t0:.1f} s CPU, threshold DVR {thr:.3f}",
              flush=True)  # fmt: skip
    return rows


def summary(df: pd.DataFrame) -> None:
    df["bin"] = pd.cut(df.diameter, [b[0] for b in BINS] + [BINS[-1][1]], right=False,
                       labels=[b[2] for b in BINS])  # fmt: skip
    df["ok"] = df.truth == df.call
    for est, g in df.groupby("estimator", sort=False):
        cells = [f"{k}: {int(h.ok.sum())}/{len(h)}" for k, h in g.groupby("bin", observed=False)]
        cells += [f"{k}: {int(h.ok.sum())}/{len(h)}" for k, h in g.groupby("truth")]
        print(f"{est:14s} overall {int(g.ok.sum())}/{len(g)} | " + " | ".join(cells))
    wide = df.pivot_table(index=["participant", "id"], columns="estimator", values="ok",
                          aggfunc="first")  # fmt: skip
    ests = list(dict.fromkeys(df.estimator))
    for other in ests[1:]:
        a, b = wide[ests[0]].astype(bool), wide[other].astype(bool)
        only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
        p = binomtest(only_a, only_a + only_b).pvalue if only_a + only_b else 1.0
        print(f"paired: only {ests[0]} right {only_a}, only {other} right {only_b} "
              f"(sign test p = {p:.2f})")  # fmt: skip
    calls = df.pivot_table(index=["participant", "id", "diameter", "truth"], columns="estimator",
                           values="call", aggfunc="first").reset_index()  # fmt: skip
    differ = calls[calls[ests].nunique(axis=1) > 1]
    print("lesions where the calls differ:\n" + differ.to_string(index=False))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2])
    p.add_argument("--estimators", nargs="+", default=["bfm", "bfm-block"])
    p.add_argument("--groups", nargs="+", default=["RRMS", "SPMS"])
    p.add_argument("--work", type=Path, help="keep the generated datasets here")
    p.add_argument("--save", help="write the per-lesion calls to this TSV")
    args = p.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="estimator_phenotypes_"))
    rows = []
    for seed in args.seeds:
        root = work / f"seed-{seed}"
        if not (root / "truth" / f"sub-{len(args.groups):02d}").is_dir():
            generate_dataset(root / "bids", root / "truth", size="test", seed=seed,
                             n_subjects=len(args.groups), motion=False, groups=args.groups)  # fmt: skip
        for k, group in enumerate(args.groups):
            truth = load_truth(root / "truth", f"{k + 1:02d}")
            print(f"seed {seed} sub-{k + 1:02d} ({group}): {len(truth.lesions)} lesions",
                  flush=True)  # fmt: skip
            rows += [(f"{seed}-{k + 1:02d}", *r) for r in participant_rows(truth, args.estimators)]
    df = pd.DataFrame(rows, columns=["participant", "estimator", "id", "diameter", "truth", "call"])
    if args.save:
        df.to_csv(args.save, sep="\t", index=False)
    summary(df)


if __name__ == "__main__":
    main()
