"""``tspo-bidsapp-fit``: fit a reference-tissue model to the regional TACs of a BIDS ``_tacs.tsv``.

The TSV has ``frame_start`` and ``frame_end`` in **seconds**, then one column per region
(kBq/mL). One row per region is written with the columns of the pipeline's ``_kinpar.tsv``.
Exit codes: 0 success, 64 usage error, 65 bad data (the message names file and column),
66 input file missing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from tspo_bidsapp.io.timing import FrameTiming
from tspo_bidsapp.kinetics.frames import check_frames, frame_weights, nonempty_frames
from tspo_bidsapp.kinetics.kinpar import KineticResult, aic, kinpar_table
from tspo_bidsapp.kinetics.logan import DEFAULT_TSTAR_MIN, fit_logan
from tspo_bidsapp.kinetics.mrtm import fit_mrtm2
from tspo_bidsapp.kinetics.srtm import fit_srtm_regions, median_k2prime
from tspo_bidsapp.kinetics.suvr import fit_suvr

EX_USAGE, EX_DATAERR, EX_NOINPUT = 64, 65, 66
MODELS = ("srtm", "srtm2", "logan", "mrtm2", "suvr")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(EX_USAGE, f"{self.prog}: error: {message}\n")


class DataError(ValueError):
    """Bad content in the input TSV."""


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tspo-bidsapp-fit", description=__doc__.split("\n")[0])
    p.add_argument("tacs", type=Path, help="BIDS _tacs.tsv (frame_start, frame_end in s)")
    p.add_argument("--ref", required=True, help="column holding the reference-region TAC")
    p.add_argument("--model", required=True, choices=MODELS)
    p.add_argument(
        "--tstar",
        type=float,
        default=None,
        metavar="MIN",
        help=f"t* in minutes (Logan default {DEFAULT_TSTAR_MIN:g}, MRTM2 default 0)",
    )
    p.add_argument(
        "--k2prime",
        type=float,
        default=None,
        metavar="PER_MIN",
        help="fixed reference efflux k2' (1/min); default for srtm2/mrtm2: median "
        "SRTM k2' over the regions; Logan without it drops the C_R/k2' term",
    )
    p.add_argument(
        "--suvr-window",
        type=float,
        nargs=2,
        default=None,
        metavar=("START", "END"),
        help="SUVR window in minutes (default: the last 20 min)",
    )
    p.add_argument(
        "--weights",
        choices=("duration", "uniform"),
        default="duration",
        help="frame weights (default: frame duration)",
    )
    p.add_argument("-o", "--output", type=Path, default=None, help="output TSV (default stdout)")
    return p  # fmt: skip


def read_tacs(path: Path, ref: str) -> tuple[FrameTiming, np.ndarray, dict[str, np.ndarray]]:
    """Read and check a ``_tacs.tsv``; raise :class:`DataError` naming file and column."""
    try:
        table = pd.read_csv(path, sep="\t", na_values=["n/a"])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable TSV ({exc})") from exc
    for col in ("frame_start", "frame_end", ref):
        if col not in table.columns:
            raise DataError(f"{path}: missing column '{col}' (columns: {', '.join(table.columns)})")
    for col in table.columns:
        values = pd.to_numeric(table[col], errors="coerce")
        bad = values.isna() & table[col].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"{path}: column '{col}' has a non-numeric value "
                            f"'{table[col].iloc[row]}' in row {row + 1}")  # fmt: skip
        table[col] = values
    for col in ("frame_start", "frame_end", ref):
        if table[col].isna().any():
            raise DataError(f"{path}: column '{col}' has missing values")
    timing = FrameTiming.from_start_end_s(table["frame_start"], table["frame_end"])
    keep = nonempty_frames(timing.start_min, timing.end_min)
    try:
        check_frames(timing.start_min[keep], timing.end_min[keep], what="frames")
    except ValueError as exc:
        raise DataError(f"{path}: columns 'frame_start'/'frame_end': {exc}") from exc
    timing = FrameTiming(timing.start_s[keep], timing.duration_s[keep])
    regions = {
        c: table[c].to_numpy(float)[keep]
        for c in table.columns
        if c not in ("frame_start", "frame_end", ref)
    }
    if not regions:
        raise DataError(f"{path}: no region column besides '{ref}'")
    return timing, table[ref].to_numpy(float)[keep], regions


def fit_table(timing: FrameTiming, ref: np.ndarray, regions: dict, args) -> pd.DataFrame:
    s, e = timing.start_min, timing.end_min
    w = frame_weights(s, e, scheme=args.weights)
    k2p = args.k2prime
    if args.model in ("srtm2", "mrtm2") and k2p is None:
        k2p = median_k2prime(fit_srtm_regions(s, e, ref, regions, weights=w))
    if args.model == "srtm":
        results = fit_srtm_regions(s, e, ref, regions, weights=w)
    elif args.model == "srtm2":
        from tspo_bidsapp.kinetics.bfm import fit_srtm2_bfm

        data = np.vstack(list(regions.values()))
        vox = fit_srtm2_bfm(s, e, ref, data, k2p, weights=w, dtype=np.float64)
        results = []
        for i, name in enumerate(regions):
            bp = float(vox["BPND"][i])
            results.append(KineticResult(
                region=name, model="srtm2", BPND=bp, DVR=1.0 + bp, R1=float(vox["R1"][i]),
                k2=float(vox["k2"][i]), k2a=float(vox["k2a"][i]), k2prime=float(k2p),
                wrss=float(vox["wrss"][i]), aic=aic(float(vox["wrss"][i]), s.size, 2),
                n_frames=int(s.size), n_params=2, success=bool(np.isfinite(bp)),
                edge=bool(vox["edge"][i]),
            ))  # fmt: skip
    elif args.model == "logan":
        tstar = DEFAULT_TSTAR_MIN if args.tstar is None else args.tstar
        results = [fit_logan(s, e, ref, y, k2prime=k2p, tstar_min=tstar, weights=w, region=n)
                   for n, y in regions.items()]  # fmt: skip
    elif args.model == "mrtm2":
        tstar = 0.0 if args.tstar is None else args.tstar
        results = [fit_mrtm2(s, e, ref, y, k2p, tstar_min=tstar, weights=w, region=n)
                   for n, y in regions.items()]  # fmt: skip
    else:
        window = tuple(args.suvr_window) if args.suvr_window else None
        results = [fit_suvr(s, e, ref, y, window=window, region=n) for n, y in regions.items()]
    return kinpar_table(results)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.tacs.is_file():
        print(f"tspo-bidsapp-fit: input file not found: {args.tacs}", file=sys.stderr)
        return EX_NOINPUT
    if args.k2prime is not None and not args.k2prime > 0:
        print("tspo-bidsapp-fit: --k2prime must be a positive rate (1/min)", file=sys.stderr)
        return EX_USAGE
    try:
        timing, ref, regions = read_tacs(args.tacs, args.ref)
        table = fit_table(timing, ref, regions, args)
    except (DataError, ValueError) as exc:
        msg = str(exc) if str(exc).startswith(str(args.tacs)) else f"{args.tacs}: {exc}"
        print(f"tspo-bidsapp-fit: {msg}", file=sys.stderr)
        return EX_DATAERR
    out = args.output if args.output is not None else sys.stdout
    table.to_csv(out, sep="\t", index=False, na_rep="n/a", float_format="%.6g")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
