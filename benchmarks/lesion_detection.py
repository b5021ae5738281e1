"""Lesion detection, SAMSEG alone vs SAMSEG + FLAIR-hyperintensity stage, lesion by lesion.

Works on an existing SAMSEG lesion-mode output folder (SAMSEG costs 10-16 min; run it once, e.g.
with ``benchmarks/samseg_real_ms.py --out DIR``) and a reference lesion mask on the same grid:

    # real MS patient 26 (Lesjak et al. 2018; T2w used when --t2w is given)
    python benchmarks/lesion_detection.py --samseg DIR --ms26 [--no-t2w]
    # any SAMSEG run with a reference mask on its grid
    python benchmarks/lesion_detection.py --samseg DIR --reference MASK [--t2w T2W]
    # MS-like synthetic phantom (ms_mri), SAMSEG emulated as finding the lesions > 0.2 mL
    python benchmarks/lesion_detection.py --phantom 1 [--param grow_z=2.5 ...]

Prints Dice, lesion-wise sensitivity/precision, false-positive lesions, volume error and the
detection rate per size bin (< 0.05, 0.05-0.2, > 0.2 mL), side by side, plus the added stage's
wall time and peak memory (tracemalloc: numpy/scipy arrays of the stage).
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

import nibabel as nib
import numpy as np

from tspo_bidsapp.anat.lesion_detect import DEFAULT_DETECT_PARAMS, DetectParams, detect_lesions
from tspo_bidsapp.anat.metrics import lesion_report, size_bin_names
from tspo_bidsapp.anat.samseg import collect_samseg_outputs

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "open_ms_data_patient26"
MS26_GOLD = "GOLD_STANDARD_N4_noneck_reduced_winsor_regtoFLAIR_regtoMNI.nii.gz"
MS26_T2 = "T2_N4_noneck_reduced_winsor_regtoFLAIR_brain_N4_regtoMNI.nii.gz"


def _load(path) -> np.ndarray:
    return np.asarray(nib.load(str(path)).dataobj)


def from_samseg_dir(samseg_dir: Path, t2w: Path | None) -> dict:
    """Inputs of the stage from a SAMSEG lesion-mode output folder (+ optional T2w)."""
    out = collect_samseg_outputs(samseg_dir)
    seg = nib.load(out.dseg)
    return dict(
        dseg=np.asarray(seg.dataobj),
        posterior=_load(out.lesion_probseg),
        flair=_load(out.flair_preproc),
        zooms=tuple(float(z) for z in seg.header.get_zooms()[:3]),
        t1w=_load(out.t1w_preproc),
        t2w=_load(t2w).astype(np.float32) if t2w else None,
    )


def from_phantom(seed: int, voxel_mm: float = 1.0) -> tuple[dict, np.ndarray]:
    """Inputs from the MS-like phantom with SAMSEG emulated (lesions > 0.2 mL found), and truth."""
    from tspo_bidsapp.synthetic.anatomy import build_anatomy
    from tspo_bidsapp.synthetic.lesions import plant_lesions
    from tspo_bidsapp.synthetic.ms_mri import (
        emulated_samseg,
        phantom_lesion_specs,
        synth_ms_contrasts,
    )

    rng = np.random.default_rng(seed)
    anat = build_anatomy(voxel_mm)
    labels, ids, _ = plant_lesions(anat, phantom_lesion_specs(rng), rng)
    images = synth_ms_contrasts(anat, labels, ids, rng)
    dseg, posterior = emulated_samseg(labels, ids, anat.affine)
    zooms = (voxel_mm,) * 3
    inputs = dict(dseg=dseg, posterior=posterior, zooms=zooms, **images)
    return inputs, ids > 0


def run_stage(inputs: dict, params: DetectParams = DEFAULT_DETECT_PARAMS):
    """(mask, wall s, CPU s, peak MB of numpy/scipy arrays by tracemalloc) of the added stage."""
    tracemalloc.start()
    t0, c0 = time.perf_counter(), time.process_time()
    mask = detect_lesions(
        inputs["dseg"], inputs["posterior"], inputs["flair"], inputs["zooms"],
        t1w=inputs["t1w"], t2w=inputs["t2w"], params=params,
    )  # fmt: skip
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return mask, wall, cpu, peak_mb


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
    parser.add_argument("--samseg", type=Path, help="SAMSEG lesion-mode output folder")
    parser.add_argument("--reference", type=Path, help="reference lesion mask / id map")
    parser.add_argument("--t2w", type=Path, help="T2w on the same grid (optional)")
    parser.add_argument("--ms26", action="store_true", help="patient 26 reference and T2w")
    parser.add_argument("--no-t2w", action="store_true", help="ignore T2w")
    parser.add_argument("--phantom", type=int, metavar="SEED", help="synthetic phantom (1 mm)")
    parser.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE",
        help="extra column with a DetectParams field changed (repeatable)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.phantom is not None:
        inputs, ref = from_phantom(args.phantom)
        if args.no_t2w:
            inputs["t2w"] = None
    else:
        if args.ms26:
            if not (DATA / MS26_GOLD).exists():
                raise SystemExit(f"{DATA}: real MS data not available")
            args.reference, args.t2w = DATA / MS26_GOLD, args.t2w or DATA / MS26_T2
        if args.samseg is None or args.reference is None:
            parser.error("--phantom SEED, or --samseg DIR with --reference or --ms26")
        inputs = from_samseg_dir(args.samseg, None if args.no_t2w else args.t2w)
        ref = _load(args.reference) > 0
    zooms = inputs["zooms"]
    mask, wall, cpu, peak = run_stage(inputs)
    rows = {
        "SAMSEG": lesion_report(inputs["dseg"] == 99, ref, zooms),
        "SAMSEG+FLAIR": lesion_report(mask, ref, zooms),
    }
    print(
        f"added stage: {wall:.1f} s wall, {cpu:.1f} s CPU, {peak:.0f} MB peak (tracemalloc); "
        f"T2w: {inputs['t2w'] is not None}"
    )
    for item in args.param:
        name, value = item.split("=")
        kind = type(getattr(DEFAULT_DETECT_PARAMS, name))
        params = replace(DEFAULT_DETECT_PARAMS, **{name: kind(value)})
        rows[item] = lesion_report(run_stage(inputs, params)[0], ref, zooms)
    print_side_by_side(rows)


if __name__ == "__main__":
    main()
