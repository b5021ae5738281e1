"""Lesion detection, SAMSEG alone vs SAMSEG + FLAIR-hyperintensity stage, lesion by lesion.

Works on an existing SAMSEG lesion-mode output folder (SAMSEG costs 10-16 min; run it once, e.g.
with ``benchmarks/samseg_real_ms.py --out DIR``) and a reference lesion mask on the same grid:

    # real MS patient 26 (Lesjak et al. 2018; T2w used when --t2w is given)
    python benchmarks/lesion_detection.py --samseg DIR --ms26 [--no-t2w]
    # synthetic phantom (ms_mri.synth_ms_contrasts) written by --write-phantom
    python benchmarks/lesion_detection.py --samseg DIR --reference ids.nii.gz [--t2w t2w.nii.gz]

Prints Dice, lesion-wise sensitivity/precision, false-positive lesions, volume error and the
detection rate per size bin (< 0.05, 0.05-0.2, > 0.2 mL), side by side, plus the added stage's
wall time and peak memory (tracemalloc: numpy/scipy arrays of the stage).
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from pathlib import Path

import nibabel as nib
import numpy as np

from tspo_bidsapp.anat.lesion_detect import DEFAULT_DETECT_PARAMS, detect_lesions
from tspo_bidsapp.anat.metrics import lesion_report, size_bin_names
from tspo_bidsapp.anat.samseg import collect_samseg_outputs

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "open_ms_data_patient26"
MS26_GOLD = "GOLD_STANDARD_N4_noneck_reduced_winsor_regtoFLAIR_regtoMNI.nii.gz"
MS26_T2 = "T2_N4_noneck_reduced_winsor_regtoFLAIR_brain_N4_regtoMNI.nii.gz"


def _load(path) -> np.ndarray:
    return np.asarray(nib.load(str(path)).dataobj)


def run_stage(samseg_dir: Path, t2w: Path | None, params=DEFAULT_DETECT_PARAMS):
    """(SAMSEG label-99 mask, new mask, zooms, wall s, peak MB) from a SAMSEG output folder."""
    out = collect_samseg_outputs(samseg_dir)
    seg = nib.load(out.dseg)
    zooms = tuple(float(z) for z in seg.header.get_zooms()[:3])
    dseg = np.asarray(seg.dataobj)
    tracemalloc.start()
    t0 = time.perf_counter()
    mask = detect_lesions(
        dseg,
        _load(out.lesion_probseg),
        _load(out.flair_preproc),
        zooms,
        t1w=_load(out.t1w_preproc),
        t2w=_load(t2w).astype(np.float32) if t2w else None,
        params=params,
    )
    wall = time.perf_counter() - t0
    peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return dseg == 99, mask, zooms, wall, peak_mb


def print_side_by_side(rows: dict[str, dict]) -> None:
    """One column per method: overall agreement and detection per size bin."""
    names = list(rows)
    print(f"{'':28s}" + "".join(f"{n:>16s}" for n in names))
    for key, fmt in (
        ("dice", "{:.3f}"), ("sensitivity", "{:.3f}"), ("precision", "{:.3f}"),
        ("n_reference", "{:d}"), ("n_predicted", "{:d}"), ("n_false_positive", "{:d}"),
        ("volume_reference_ml", "{:.2f}"), ("volume_predicted_ml", "{:.2f}"),
        ("volume_error_rel", "{:+.1%}"),
    ):  # fmt: skip
        print(f"{key:28s}" + "".join(f"{fmt.format(rows[n][key]):>16s}" for n in names))
    for b in [*size_bin_names(), ">=0.05mL"]:
        cells = [rows[n]["by_size"][b] for n in names]
        text = [f"{c['n_detected']}/{c['n_reference']} ({c['tpr']:.0%})" for c in cells]
        print(f"{'TPR ' + b:28s}" + "".join(f"{t:>16s}" for t in text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samseg", type=Path, required=True, help="SAMSEG lesion-mode folder")
    parser.add_argument("--reference", type=Path, help="reference lesion mask / id map")
    parser.add_argument("--t2w", type=Path, help="T2w on the same grid (optional)")
    parser.add_argument("--ms26", action="store_true", help="patient 26 reference and T2w")
    parser.add_argument("--no-t2w", action="store_true", help="ignore T2w")
    args = parser.parse_args()
    if args.ms26:
        if not (DATA / MS26_GOLD).exists():
            raise SystemExit(f"{DATA}: real MS data not available")
        args.reference, args.t2w = DATA / MS26_GOLD, args.t2w or DATA / MS26_T2
    if args.reference is None:
        parser.error("--reference or --ms26 is required")
    t2w = None if args.no_t2w else args.t2w
    samseg_mask, mask, zooms, wall, peak = run_stage(args.samseg, t2w)
    ref = _load(args.reference) > 0
    rows = {
        "SAMSEG": lesion_report(samseg_mask, ref, zooms),
        "SAMSEG+FLAIR": lesion_report(mask, ref, zooms),
    }
    print(f"added stage: {wall:.1f} s wall, {peak:.0f} MB peak (tracemalloc); T2w: {bool(t2w)}")
    print_side_by_side(rows)


if __name__ == "__main__":
    main()
