"""Static PET through the command line against the dynamic run's SUVR, and SUV by hand.

The same synthetic participant (noise-free, no motion, true anatomy supplied) is written as a
dynamic 60-min scan and as one static frame, the mean of the 40-60 min frames. The dynamic
run uses ``--models srtm suvr --suvr-window 40 60``; the static run gets SUVR (and SUV) only.
Prints regional SUVR side by side, and the regional SUV against C x weight / dose computed
here from the static image and its sidecar.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 nice python benchmarks/static_vs_dynamic.py [WORKDIR]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from tspo_bidsapp.cli.run import main
from tspo_bidsapp.synthetic import generate_dataset
from tspo_bidsapp.synthetic.derivatives import write_anat_derivatives

REGIONS = ("NAWM", "cortical-GM", "thalamus")
WINDOW = (40.0, 60.0)


def run_one(root: Path, static: bool) -> tuple[Path, Path, float]:
    bids, truth, anat = root / "bids", root / "truth", root / "anat"
    subjects = generate_dataset(
        bids, truth, size="test", seed=7, n_subjects=1, noise=False, motion=False,
        static_window_min=WINDOW if static else None,
    )  # fmt: skip
    write_anat_derivatives(truth, subjects, anat)
    out = root / "derivatives"
    extra = [] if static else ["--models", "srtm", "suvr", "--suvr-window", *map(str, WINDOW)]
    start = time.perf_counter()
    code = main([str(bids), str(out), "participant", "-w", str(root / "work"), "--nprocs", "2",
                 "--derivatives", str(anat), "--hmc-off", *extra])  # fmt: skip
    if code != 0:
        raise SystemExit(f"static={static}: exit {code}")
    return bids, out / "sub-01" / "pet", time.perf_counter() - start


def _table(pet: Path, pattern: str) -> pd.Series:
    (path,) = pet.glob(pattern)
    table = pd.read_csv(path, sep="\t").set_index("region")
    return table[table.columns[table.columns.isin(["SUVR", "SUV"])][0]]


def main_script(workdir: Path) -> None:
    _, dyn, t_dyn = run_one(workdir / "dynamic", static=False)
    bids, sta, t_sta = run_one(workdir / "static", static=True)
    suvr_dyn = _table(dyn, "*_model-SUVR_ref-cerebellum_kinpar.tsv")
    suvr_sta = _table(sta, "*_model-SUVR_ref-cerebellum_kinpar.tsv")
    suv = _table(sta, "*_model-SUV_kinpar.tsv")
    (tacs,) = sta.glob("*_seg-tspoms_desc-preproc_tacs.tsv")
    conc = pd.read_csv(tacs, sep="\t").iloc[0]
    (sidecar,) = (bids / "sub-01" / "pet").glob("*_pet.json")
    meta = json.loads(sidecar.read_text())
    scale = meta["BodyWeight"] * 1000.0 / (meta["InjectedRadioactivity"] * 1000.0)
    print(f"static frame {WINDOW[0]:g}-{WINDOW[1]:g} min vs dynamic --suvr-window (CLI)")
    print(f"{'region':<12} {'SUVR dyn':>9} {'SUVR stat':>9} {'diff':>8} {'SUV':>8} "
          f"{'by hand':>8}")  # fmt: skip
    for region in REGIONS:
        a, b = suvr_dyn[region], suvr_sta[region]
        print(f"{region:<12} {a:9.4f} {b:9.4f} {b / a - 1:+8.3%} {suv[region]:8.4f} "
              f"{conc[region] * scale:8.4f}")  # fmt: skip
    maps = [p for p in sta.glob("*model-SUV_meas-SUV_mimap.nii.gz")]
    values = np.asarray(nib.load(maps[0]).dataobj, float)
    print(f"SUV map: median {np.nanmedian(values):.4f} over {np.isfinite(values).sum()} voxels")
    print(f"run time (s): dynamic {t_dyn:.0f}, static {t_sta:.0f}")


if __name__ == "__main__":
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="static_"))
    main_script(root)
