"""``tspo-bidsapp-synth``: write a synthetic TSPO-MS BIDS dataset and its ground truth."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tspo_bidsapp.synthetic.dataset import SIZES, generate_dataset
from tspo_bidsapp.synthetic.derivatives import write_anat_derivatives
from tspo_bidsapp.synthetic.sidecar import DECAY_MODES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tspo-bidsapp-synth",
        description="Simulate a BIDS dataset of dynamic TSPO PET, T1w and FLAIR of healthy "
        "controls and people with MS, with known kinetics, lesions, transforms and motion.",
    )
    parser.add_argument("bids_dir", type=Path, help="output BIDS directory")
    parser.add_argument(
        "--truth-dir",
        type=Path,
        required=True,
        help="output directory of the ground truth (must be outside the BIDS tree)",
    )
    parser.add_argument("--size", choices=tuple(SIZES), default="demo")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--n-subjects", type=int, default=None)
    parser.add_argument("--tracer", default="PBR28", help="PBR28 (default) or PK11195, ...")
    parser.add_argument("--no-noise", action="store_true", help="exact, noise-free images")
    parser.add_argument("--no-motion", action="store_true", help="no head motion")
    parser.add_argument("--noise-level", type=float, default=1.0, help="PET noise multiplier")
    parser.add_argument(
        "--fov-cut-mm",
        type=float,
        default=0.0,
        help="PET axial FOV ends this far below the brain top",
    )
    parser.add_argument(
        "--large-offset",
        action="store_true",
        help="PET->T1w transform of 10 deg + 10 mm instead of 4 deg + 4 mm",
    )
    parser.add_argument("--t1w-voxel-mm", type=float, default=None, help="override the T1w grid")
    parser.add_argument("--pet-fwhm-mm", type=float, default=4.5)
    parser.add_argument("--pet-voxel-mm", type=float, default=2.0)
    parser.add_argument(
        "--decay-correction",
        choices=DECAY_MODES,
        default="injection",
        help="write the PET decay-corrected to injection (default), not decay-corrected, or "
        "decay-corrected to the scan start (TimeZero = scan start)",
    )
    parser.add_argument(
        "--injection-before-scan",
        type=float,
        default=0.0,
        metavar="SEC",
        help="the first frame starts this many seconds after the injection",
    )
    parser.add_argument(
        "--static-window",
        type=float,
        nargs=2,
        metavar=("START", "END"),
        help="write a static PET: one frame, the mean of the frames in START-END (min)",
    )
    parser.add_argument(
        "--kinetics",
        choices=("srtm", "plasma"),
        default="srtm",
        help="plasma: 1TCM/2TCM tissue from a known arterial input, with BIDS blood recordings",
    )
    parser.add_argument(
        "--anat-derivatives",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write the true anatomy as a FreeSurfer-labelled dseg and a lesion mask "
        "(pass DIR to tspo-bidsapp --derivatives to skip SAMSEG)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    try:
        subjects = generate_dataset(
            args.bids_dir,
            args.truth_dir,
            size=args.size,
            seed=args.seed,
            n_subjects=args.n_subjects,
            noise=not args.no_noise,
            motion=not args.no_motion,
            fov_cut_mm=args.fov_cut_mm,
            tracer=args.tracer,
            large_offset=args.large_offset,
            noise_level=args.noise_level,
            t1w_voxel_mm=args.t1w_voxel_mm,
            pet_fwhm_mm=args.pet_fwhm_mm,
            pet_voxel_mm=args.pet_voxel_mm,
            decay_correction=args.decay_correction,
            injection_before_scan_s=args.injection_before_scan,
            static_window_min=None if args.static_window is None else tuple(args.static_window),
            kinetics=args.kinetics,
        )
        if args.anat_derivatives is not None:
            write_anat_derivatives(args.truth_dir, subjects, args.anat_derivatives)
    except ValueError as err:
        print(f"tspo-bidsapp-synth: error: {err}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - start
    print(
        f"wrote {len(subjects)} participants to {args.bids_dir} "
        f"(truth in {args.truth_dir}) in {elapsed:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
