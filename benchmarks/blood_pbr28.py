"""Raw BIDS blood recordings -> input function, against the study's processed input (real PBR28).

Run: ``OMP_NUM_THREADS=1 python benchmarks/blood_pbr28.py [--data ../shared/data/kinfitr_pbr28]
[--parent-fraction-model hill] [--continuous-until-min 5]``.

For each of the 8 scans of ``kinfitr_pbr28`` (Matheson et al. 2017, EJNMMI Res 7:58) the raw
manual + autosampler recordings are processed by :func:`input_function_from_recordings` and
compared with ``*_desc-kinfitr_inputfunction.tsv``: AIF area 0-90 min, late area 10-90 min,
peak, whole-blood area, and, as a proxy for V_T, a Logan-plasma slope (Logan et al. 1990,
J Cereb Blood Flow Metab 10:740) on the stored regional TACs with each input, using kinfitr's
fitted delay, vB 0.05 and the last 10 frames. The Logan estimate lives here only, as a yardstick.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.integrate import trapezoid

from tspo_bidsapp.blood.find import find_blood_recordings, find_input_function
from tspo_bidsapp.blood.inputfunction import InputFunction
from tspo_bidsapp.blood.process import input_function_from_recordings
from tspo_bidsapp.blood.recordings import read_input_function

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "kinfitr_pbr28"
REGIONS = ("FC", "TC", "STR", "THA", "WB", "CBL")
VB = 0.05
LOGAN_FRAMES = 10  # the last 10 frames (t* about 33 min)


def area(inp: InputFunction, start_min: float, end_min: float, blood: bool = False) -> float:
    """Area under the AIF (or whole blood) between two times (kBq/mL x min), 0.01-min grid."""
    t = np.arange(start_min, end_min + 1e-9, 0.01)
    return float(trapezoid(inp.blood_at(t) if blood else inp.plasma_at(t), t))


def logan_vt(tacs: pd.DataFrame, inp: InputFunction, delay_min: float) -> dict[str, float]:
    """Logan-plasma V_T per region: slope of the last frames, vB-corrected tissue."""
    mid = 0.5 * (tacs["frame_start"] + tacs["frame_end"]).to_numpy() / 60.0
    fine = np.linspace(0.0, mid[-1], 20001)
    cp = inp.plasma_at(fine, delay_min)
    int_cp = np.concatenate([[0.0], np.cumsum(0.5 * np.diff(fine) * (cp[1:] + cp[:-1]))])
    int_cp_mid = np.interp(mid, fine, int_cp)
    blood = inp.blood_at(mid, delay_min)
    out = {}
    for region in REGIONS:
        tissue = (tacs[region].to_numpy() - VB * blood) / (1.0 - VB)
        t0 = np.concatenate([[0.0], mid])
        c0 = np.concatenate([[0.0], tissue])
        int_ct = np.concatenate([[0.0], np.cumsum(0.5 * np.diff(t0) * (c0[1:] + c0[:-1]))])[1:]
        sl = slice(-LOGAN_FRAMES, None)
        x, y = int_cp_mid[sl] / tissue[sl], int_ct[sl] / tissue[sl]
        out[region] = float(np.polyfit(x, y, 1)[0])
    return out


def compare_scan(pet_dir: Path, delay_min: float, **options) -> dict:
    """Figures of one scan: area/peak ratios (raw / processed) and Logan V_T ratios."""
    tacs_file = next(pet_dir.glob("*_desc-kinfitr_tacs.tsv"))
    recordings = find_blood_recordings(tacs_file)
    raw = input_function_from_recordings(list(recordings.values()), pet_units="kBq/mL", **options)
    processed = read_input_function(find_input_function(tacs_file, pet_dir), pet_units="kBq/mL")
    tacs = pd.read_csv(tacs_file, sep="\t")
    vt_raw, vt_proc = logan_vt(tacs, raw, delay_min), logan_vt(tacs, processed, delay_min)
    pf = raw.provenance["ParentFraction"]
    return {
        "scan": tacs_file.name.split("_trc")[0],
        "pf_model": pf["Model"],
        "ratio_model": raw.provenance["PlasmaToBloodRatio"]["Model"],
        "auc_0_90": area(raw, 0, 90) / area(processed, 0, 90),
        "auc_10_90": area(raw, 10, 90) / area(processed, 10, 90),
        "peak": raw.aif.max() / processed.aif.max(),
        "wb_auc_0_90": area(raw, 0, 90, True) / area(processed, 0, 90, True),
        **{f"VT_{r}": vt_raw[r] / vt_proc[r] for r in REGIONS},
    }


def compare_all(data: Path = DATA, **options) -> pd.DataFrame:
    """:func:`compare_scan` for every scan, with kinfitr's fitted delay of that scan."""
    fits = pd.read_csv(data / "kinfitr_fits.tsv", sep="\t")
    delays = fits.groupby("PET")["inpshift_min"].first()
    rows = []
    for pet_dir in sorted(data.glob("sub-*/ses-*/pet")):
        sub, ses = pet_dir.parts[-3][4:], pet_dir.parts[-2][4:]
        rows.append(compare_scan(pet_dir, float(delays[f"{sub}_{ses}"]), **options))
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--parent-fraction-model", default=None)
    parser.add_argument("--continuous-until-min", type=float, default=None)
    args = parser.parse_args()
    table = compare_all(
        args.data,
        parent_fraction_model=args.parent_fraction_model,
        continuous_until_min=args.continuous_until_min,
    )
    pd.set_option("display.width", 200)
    print("ratios raw-recording input / processed input (1.000 = identical)")
    print(table.round(3).to_string(index=False))
    vt = table[[f"VT_{r}" for r in REGIONS]].to_numpy()
    print(
        f"Logan V_T ratio over {vt.size} scan-regions: median {np.median(vt):.3f}, "
        f"range {vt.min():.3f}-{vt.max():.3f}, |dev| > 10 %: {int(np.sum(abs(vt - 1) > 0.1))}"
    )


if __name__ == "__main__":
    main()
