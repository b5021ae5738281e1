"""The synthetic ``test`` participant shared by the benchmarks (generated once per WORK_DIR)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from tspo_bidsapp.synthetic import generate_dataset, load_truth


def synthetic_participant(work: Path):
    """``(truth, t1w image, tissue labels)`` of sub-01 (motion-free), generating it if needed."""
    if not (work / "truth" / "sub-01").is_dir():
        generate_dataset(work / "bids", work / "truth", size="test", n_subjects=1, motion=False)
    truth = load_truth(work / "truth", "01")
    t1w = nib.load(truth.tissue)
    return truth, t1w, np.asarray(t1w.dataobj).astype(np.int32)
