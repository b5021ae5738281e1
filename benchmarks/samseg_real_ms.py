"""SAMSEG lesion segmentation on a real MS patient against the expert consensus mask.

Data: patient 26 of Lesjak et al., Neuroinformatics 16:51-63 (2018), in ../shared/data (1 mm,
skull-stripped T1w + FLAIR). Prints voxel Dice, lesion-wise sensitivity/precision and the
lesion-volume error for SAMSEG's lesion label, for other posterior thresholds, and for the lesion
posterior without the shape model (same run), plus wall time and peak memory.

    python benchmarks/samseg_real_ms.py [--threads 2] [--out DIR] [--reuse]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import nibabel as nib
import numpy as np

from tspo_bidsapp.anat.metrics import lesion_agreement
from tspo_bidsapp.anat.regions import label_lesions
from tspo_bidsapp.anat.samseg import collect_samseg_outputs, run_samseg

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "open_ms_data_patient26"
T1 = "T1_N4_noneck_reduced_winsor_regtoFLAIR_brain_N4_regtoMNI.nii.gz"
FLAIR = "FLAIR_N4_noneck_reduced_winsor_regtoFLAIR_brain_N4_regtoMNI.nii.gz"
GOLD = "GOLD_STANDARD_N4_noneck_reduced_winsor_regtoFLAIR_regtoMNI.nii.gz"


def evaluate(out_dir: Path, gold_path: Path, min_volume_mm3: float = 0.0) -> dict[str, dict]:
    """Agreement of every lesion estimate in ``out_dir`` with the gold standard."""
    out = collect_samseg_outputs(out_dir)
    seg = nib.load(out.dseg)
    zooms = tuple(float(z) for z in seg.header.get_zooms()[:3])
    gold = np.asarray(nib.load(str(gold_path)).dataobj) > 0
    dseg = np.asarray(seg.dataobj)
    estimates = {"samseg_label99": dseg == 99}
    prob = np.asarray(nib.load(out.lesion_probseg).dataobj) if out.lesion_probseg else None
    if prob is not None:
        for thr in (0.3, 0.5, 0.7):
            estimates[f"posterior>{thr}"] = prob > thr
    if out.lesion_probseg_noshape:
        noshape = np.asarray(nib.load(out.lesion_probseg_noshape).dataobj)
        for thr in (0.3, 0.5):
            estimates[f"no_shape_model>{thr}"] = noshape > thr
    rows = {}
    for name, mask in estimates.items():
        if min_volume_mm3 > 0:
            mask = label_lesions(mask, zooms, min_volume_mm3=min_volume_mm3) > 0
        rows[name] = lesion_agreement(mask, gold, zooms).as_dict()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("work") / "samseg_ms26")
    parser.add_argument("--reuse", action="store_true", help="evaluate an existing run in --out")
    args = parser.parse_args()
    if not (DATA / T1).exists():
        raise SystemExit(f"{DATA}: real MS data not available")
    if args.reuse and (args.out / "seg.mgz").exists():
        run = (
            json.loads((args.out / "tspo_samseg_run.json").read_text())
            if (args.out / "tspo_samseg_run.json").exists()
            else {}
        )
    else:
        run = run_samseg(
            DATA / T1, DATA / FLAIR, args.out, threads=args.threads, save_unshaped=True
        ).as_dict()
    if run:
        print(
            f"SAMSEG wall {run['wall_s'] / 60:.1f} min, peak RSS {run['peak_rss_mb'] / 1024:.2f} GB"
        )
    for min_vol in (0.0, 10.0):
        print(f"\nminimum lesion volume {min_vol:g} mm^3")
        print(f"{'estimate':24s} {'Dice':>6s} {'sens':>6s} {'prec':>6s} {'n_pred':>6s} {'FP':>5s} "
              f"{'vol_ml':>7s} {'ref_ml':>7s} {'err%':>6s}")  # fmt: skip
        for name, r in evaluate(args.out, DATA / GOLD, min_vol).items():
            print(
                f"{name:24s} {r['dice']:6.3f} {r['sensitivity']:6.3f} {r['precision']:6.3f} "
                f"{r['n_predicted']:6d} {r['n_false_positive']:5d} {r['volume_predicted_ml']:7.2f} "
                f"{r['volume_reference_ml']:7.2f} {100 * r['volume_error_rel']:6.1f}"
            )


if __name__ == "__main__":
    main()
