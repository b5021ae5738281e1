"""The same synthetic PET written three ways, through the command line: BPND must not change.

(a) decay-corrected to injection, (b) not decay-corrected, (c) decay-corrected to the scan
start with injection 120 s before the first frame (all three: first frame 120 s after
injection, noise-free, no motion, true anatomy supplied). For each tracer the participant level
runs on each dataset; the script prints regional SRTM BPND of (b) and (c) against (a) and the
brain median of the voxel-wise BPND maps.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 nice python benchmarks/decay_time_axis.py [WORKDIR]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from tspo_bidsapp.cli.run import main
from tspo_bidsapp.synthetic import generate_dataset, load_truth
from tspo_bidsapp.synthetic.derivatives import write_anat_derivatives

MODES = ("injection", "none", "scan-start")
TRACERS = ("PBR28", "GE180")
REGIONS = ("NAWM", "cortical-GM", "thalamus")


def run_one(root: Path, tracer: str, mode: str) -> dict:
    """Generate, run the participant level, return regional BPND and the map median."""
    bids, truth, anat = root / "bids", root / "truth", root / "anat"
    subjects = generate_dataset(
        bids, truth, size="test", seed=7, n_subjects=1, noise=False, motion=False,
        tracer=tracer, decay_correction=mode, injection_before_scan_s=120.0,
    )  # fmt: skip
    write_anat_derivatives(truth, subjects, anat)
    out = root / "derivatives"
    start = time.perf_counter()
    code = main([str(bids), str(out), "participant", "-w", str(root / "work"), "--nprocs", "2",
                 "--derivatives", str(anat), "--hmc-off"])  # fmt: skip
    elapsed = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"{tracer} {mode}: exit {code}")
    pet = out / "sub-01" / "pet"
    (kinpar,) = pet.glob("*_model-SRTM_ref-cerebellum_kinpar.tsv")
    table = pd.read_csv(kinpar, sep="\t").set_index("region")["BPND"]
    maps = [p for p in pet.glob("*model-SRTM*BPND*.nii.gz") if "space-T1w" in p.name]
    bp_map = np.asarray(nib.load(maps[0]).dataobj, float)
    return {
        "regional": {r: float(table[r]) for r in REGIONS},
        "map": bp_map,
        "truth": load_truth(truth, "01").bpnd,
        "seconds": elapsed,
    }


def main_script(workdir: Path) -> None:
    for tracer in TRACERS:
        res = {mode: run_one(workdir / f"{tracer}-{mode}", tracer, mode) for mode in MODES}
        a = res["injection"]
        brain = np.isfinite(a["map"]) & (a["map"] != 0)
        print(f"\n{tracer}: regional SRTM BPND (CLI, noise-free), (b) and (c) vs (a)")
        print(f"{'region':<12} {'truth':>7} {'(a)':>8} {'(b)':>8} {'b/a-1':>8} {'(c)':>8} "
              f"{'c/a-1':>8}")  # fmt: skip
        names = {"NAWM": "nawm", "cortical-GM": "gm", "thalamus": "thalamus"}
        for region in REGIONS:
            va, vb, vc = (res[m]["regional"][region] for m in MODES)
            print(f"{region:<12} {a['truth'][names[region]]:7.4f} {va:8.4f} {vb:8.4f} "
                  f"{vb / va - 1:+8.2%} {vc:8.4f} {vc / va - 1:+8.2%}")  # fmt: skip
        for mode in MODES[1:]:
            m = res[mode]["map"]
            ok = brain & np.isfinite(m)
            ratio = np.median(m[ok]) / np.median(a["map"][ok]) - 1
            rel = np.median(np.abs(m[ok] - a["map"][ok]) / np.maximum(np.abs(a["map"][ok]), 1e-6))
            print(f"voxel-wise ({mode}): median BPND {np.median(m[ok]):.4f} vs "
                  f"{np.median(a['map'][ok]):.4f} ({ratio:+.2%}); median |voxel diff|/|a| "
                  f"{rel:.2%} over {ok.sum()} voxels")  # fmt: skip
        print("run time (s): " + ", ".join(f"{m} {res[m]['seconds']:.0f}" for m in MODES))


if __name__ == "__main__":
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="decay_"))
    main_script(root)
