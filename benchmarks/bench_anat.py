"""Wall time and peak memory of the anatomical workflow on a 1 mm T1w + FLAIR.

Default input: the real MS patient in ../shared/data (1 mm, 182x218x182). Modes:
- ``samseg``: the full workflow (SAMSEG lesion mode + TSPO-MS regions), minutes;
- ``imported``: segmentation and lesion mask supplied via ``--derivatives`` (no SAMSEG), seconds.
  It needs a FreeSurfer-labelled dseg: ``--dseg`` (e.g. ``tspo_dseg.nii.gz`` of an earlier
  SAMSEG run); the expert lesion mask is supplied as the lesion mask.

    python benchmarks/bench_anat.py --mode imported --dseg work/samseg_ms26/tspo_dseg.nii.gz
    python benchmarks/bench_anat.py --mode samseg --omp-nthreads 2
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

from tspo_bidsapp.anat.labels import FREESURFER_LABELS, write_dseg_tsv
from tspo_bidsapp.workflows.anat import init_anat_wf

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "open_ms_data_patient26"
T1 = "T1_N4_noneck_reduced_winsor_regtoFLAIR_brain_N4_regtoMNI.nii.gz"
FLAIR = "FLAIR_N4_noneck_reduced_winsor_regtoFLAIR_brain_N4_regtoMNI.nii.gz"
GOLD = "GOLD_STANDARD_N4_noneck_reduced_winsor_regtoFLAIR_regtoMNI.nii.gz"


def _peak_gb() -> tuple[float, float]:
    """Peak RSS (GB) of this process and of its largest child process."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    return own, kids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("samseg", "imported"), default="samseg")
    parser.add_argument("--omp-nthreads", type=int, default=2)
    parser.add_argument("--dseg", type=Path, help="FreeSurfer-labelled dseg for --mode imported")
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    if not (DATA / T1).exists():
        raise SystemExit(f"{DATA}: benchmark data not available")
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_anat_"))
    raw = work / "bids" / "sub-26" / "anat"
    raw.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DATA / T1, raw / "sub-26_T1w.nii.gz")
    shutil.copyfile(DATA / FLAIR, raw / "sub-26_FLAIR.nii.gz")
    derivatives: list[str] = []
    if args.mode == "imported":
        if args.dseg is None:
            raise SystemExit("--mode imported needs --dseg")
        deriv = work / "supplied" / "sub-26" / "anat"
        deriv.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.dseg, deriv / "sub-26_space-T1w_desc-aseg_dseg.nii.gz")
        write_dseg_tsv(deriv / "sub-26_space-T1w_desc-aseg_dseg.tsv", FREESURFER_LABELS)
        shutil.copyfile(DATA / GOLD, deriv / "sub-26_space-T1w_label-lesion_mask.nii.gz")
        derivatives.append(str(work / "supplied"))
    wf = init_anat_wf(
        subject="26",
        has_flair=True,
        derivatives=derivatives,
        omp_nthreads=args.omp_nthreads,
        output_dir=str(work / "out"),
    )
    wf.base_dir = str(work / "work")
    wf.inputs.inputnode.t1w = str(raw / "sub-26_T1w.nii.gz")
    wf.inputs.inputnode.flair = str(raw / "sub-26_FLAIR.nii.gz")
    t0 = time.monotonic()
    wf.run(plugin="Linear")
    wall = time.monotonic() - t0
    own, kids = _peak_gb()
    print(f"mode={args.mode} omp_nthreads={args.omp_nthreads} input 1 mm 182x218x182")
    print(f"wall time {wall:.1f} s ({wall / 60:.2f} min)")
    print(f"peak RSS: workflow process {own:.2f} GB, largest child (SAMSEG) {kids:.2f} GB")
    morph = next((work / "out" / "sub-26" / "anat").glob("*_seg-tspoms_morph.tsv"))
    print(morph.read_text())


if __name__ == "__main__":
    main()
