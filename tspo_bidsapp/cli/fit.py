"""``tspo-bidsapp-fit``: fit a kinetic model to the regional TACs of a BIDS ``_tacs.tsv``.

The TSV has ``frame_start`` and ``frame_end`` in **seconds**, then one column per region
(kBq/mL); columns whose name ends in ``weights`` are never regions. Reference-tissue models
need ``--ref COLUMN``; plasma-input models an arterial input, ``--input-function INPUT.tsv``
(``time`` in s, ``AIF``, optionally ``whole_blood_radioactivity``, same units as the TACs).
One row per region is written with ``region`` and the model's parameters (``_kinpar.tsv``
columns for reference models; ``VT``, rate constants, %COV, delay for plasma models).
Exit codes: 0 success, 16 bad input data (the message names file and column), 64 usage
error, 66 input file missing. Nothing is written when a fit fails.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from tspo_bidsapp.blood import InputFunction
from tspo_bidsapp.exitcodes import EX_MISSING_INPUT, EX_USAGE, InvalidBIDSError
from tspo_bidsapp.io.timing import FrameTiming
from tspo_bidsapp.kinetics.frames import (
    WEIGHT_SCHEMES,
    check_frames,
    frame_weights,
    nonempty_frames,
)
from tspo_bidsapp.kinetics.registry import (
    INPUT_FUNCTION,
    MODELS,
    REFERENCE,
    FitData,
    FitOptions,
    fit_regional,
    get_model,
    results_table,
)

MODEL_CHOICES = tuple(name.lower() for name in MODELS)
_TSTAR_DEFAULTS = ", ".join(
    f"{n.lower()} {s.tstar_default:g}" for n, s in MODELS.items() if s.tstar_default is not None
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(EX_USAGE, f"{self.prog}: error: {message}\n")


class DataError(InvalidBIDSError):
    """Bad content in an input TSV (exit 16); carries the file and the column."""


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tspo-bidsapp-fit", description=__doc__.split("\n")[0])
    p.add_argument("tacs", type=Path, help="BIDS _tacs.tsv (frame_start, frame_end in s)")
    p.add_argument("--model", required=True, choices=MODEL_CHOICES)
    p.add_argument(
        "--ref",
        default=None,
        metavar="COLUMN",
        help="column holding the reference-region TAC (reference-tissue models)",
    )
    blood = p.add_argument_group("arterial input (plasma-input models)")
    blood.add_argument(
        "--input-function",
        type=Path,
        default=None,
        metavar="INPUT.tsv",
        help="processed input function: time (s), AIF, optional whole_blood_radioactivity",
    )
    blood.add_argument(
        "--vb",
        type=float,
        default=None,
        metavar="FRACTION",
        help="fixed blood volume fraction (default: fitted by compartment "
        "models, 0 for logan-plasma/ma1)",
    )
    delay = blood.add_mutually_exclusive_group()
    delay.add_argument(
        "--delay",
        type=float,
        default=None,
        metavar="MIN",
        help="fixed blood-tissue delay in minutes (> 0: input reaches tissue later)",
    )
    delay.add_argument(
        "--delay-region",
        default=None,
        metavar="COLUMN",
        help="region the delay is fitted on by a 1TCM (default: a whole-brain column such as WB)",
    )
    p.add_argument(
        "--tstar",
        type=float,
        default=None,
        metavar="MIN",
        help=f"t* in minutes (default per model: {_TSTAR_DEFAULTS})",
    )
    p.add_argument(
        "--k2prime",
        type=float,
        default=None,
        metavar="PER_MIN",
        help="fixed reference efflux k2' (1/min); default for srtm2/mrtm2: median "
        "reliable SRTM k2' over the regions; Logan without it drops the C_R/k2' term",
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
        default="duration",
        metavar="SCHEME_OR_COLUMN",
        help="frame weights: 'duration' (default), 'uniform', or the name of a TSV "
        "column holding one weight per frame",
    )
    p.add_argument("-o", "--output", type=Path, default=None, help="output TSV (default stdout)")
    return p  # fmt: skip


def _numeric_table(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    """Read a TSV (``n/a`` = missing) whose columns must all be numeric; check ``required``."""
    try:
        table = pd.read_csv(path, sep="\t", na_values=["n/a"])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"not a readable TSV ({exc})", path=path) from exc
    for col in required:
        if col not in table.columns:
            raise DataError(f"missing (columns: {', '.join(map(str, table.columns))})",
                            path=path, field=col)  # fmt: skip
    for col in table.columns:
        values = pd.to_numeric(table[col], errors="coerce")
        bad = values.isna() & table[col].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"non-numeric value '{table[col].iloc[row]}' in row {row + 1}",
                            path=path, field=col)  # fmt: skip
        table[col] = values
    for col in required:
        if table[col].isna().any():
            raise DataError("has missing values", path=path, field=col)
    return table


def read_tacs(
    path: Path, ref: str | None, weights: str = "duration"
) -> tuple[FrameTiming, np.ndarray | None, dict[str, np.ndarray], np.ndarray | None]:
    """Read and check a ``_tacs.tsv``: timing, reference TAC, region TACs and a weight column."""
    weight_col = None if weights in WEIGHT_SCHEMES else weights
    required = tuple(c for c in ("frame_start", "frame_end", ref, weight_col) if c)
    table = _numeric_table(path, required)
    timing = FrameTiming.from_start_end_s(table["frame_start"], table["frame_end"])
    keep = nonempty_frames(timing.start_min, timing.end_min)
    try:
        check_frames(timing.start_min[keep], timing.end_min[keep], what="frames")
    except ValueError as exc:
        raise DataError(str(exc), path=path, field="frame_start/frame_end") from exc
    timing = FrameTiming(timing.start_s[keep], timing.duration_s[keep])
    skip = {"frame_start", "frame_end", ref, weight_col}
    regions = {c: table[c].to_numpy(float)[keep] for c in table.columns
               if c not in skip and not str(c).endswith("weights")}  # fmt: skip
    if not regions:
        raise DataError("no region column", path=path, field=ref)
    ref_tac = None if ref is None else table[ref].to_numpy(float)[keep]
    w = None if weight_col is None else table[weight_col].to_numpy(float)[keep]
    if w is not None and (np.any(w < 0) or not np.any(w > 0)):
        raise DataError("weights must be >= 0 and not all 0", path=path, field=weight_col)
    return timing, ref_tac, regions, w


def read_input_function_tsv(path: Path) -> InputFunction:
    """A processed input-function TSV (``time`` s, ``AIF``, optional ``whole_blood_radioactivity``)
    as an :class:`~tspo_bidsapp.blood.InputFunction` (times in minutes).

    A minimal reader for this command; checks name the file and column.
    """
    table = _numeric_table(path, ("time", "AIF"))
    t = table["time"].to_numpy(float)
    if t.size < 2 or np.any(np.diff(t) <= 0):
        raise DataError("must be strictly increasing (at least two samples)", path=path,
                        field="time")  # fmt: skip
    if np.any(table["AIF"] < 0):
        raise DataError("negative activity", path=path, field="AIF")
    blood = None
    if "whole_blood_radioactivity" in table.columns:
        if table["whole_blood_radioactivity"].isna().any():
            raise DataError("has missing values", path=path, field="whole_blood_radioactivity")
        blood = table["whole_blood_radioactivity"].to_numpy(float)
    return InputFunction(t / 60.0, table["AIF"].to_numpy(float), blood,
                         provenance={"source": str(path), "reader": "tspo-bidsapp-fit"})  # fmt: skip


def _check_coverage(inp: InputFunction, timing: FrameTiming, path: Path) -> None:
    """The input must start by the first frame and reach the last frame's start (it is held
    constant after its last sample)."""
    if inp.time_min[0] > timing.start_min[0] or inp.time_min[-1] < timing.start_min[-1]:
        raise DataError(f"samples span {inp.time_min[0]:.3g}-{inp.time_min[-1]:.3g} min but the "
                        f"scan runs {timing.start_min[0]:.3g}-{timing.end_min[-1]:.3g} min",
                        path=path, field="time")  # fmt: skip


def arterial_input(args, timing: FrameTiming, regions: dict) -> InputFunction:
    """The arterial input of a plasma-input fit, checked against the scan.

    Sources: ``--input-function`` (a processed TSV). Raw BIDS blood recordings would be a
    second source here, processed by :mod:`tspo_bidsapp.blood`.
    """
    inp = read_input_function_tsv(args.input_function)
    _check_coverage(inp, timing, args.input_function)
    if args.delay_region is not None and args.delay_region not in regions:
        raise DataError("no such region column", path=args.tacs, field=args.delay_region)
    return inp


def fit_table(args, timing, ref_tac, regions, w_col, inp) -> pd.DataFrame:
    """Run the chosen model through the registry; one row per region."""
    s, e = timing.start_min, timing.end_min
    w = w_col if w_col is not None else frame_weights(s, e, scheme=args.weights)
    data = FitData(s, e, regions, ref_tac=ref_tac, input_function=inp)
    options = FitOptions(
        weights=w, tstar_min=args.tstar, k2prime=args.k2prime,
        suvr_window_min=tuple(args.suvr_window) if args.suvr_window else None,
        vb=args.vb, delay_min=args.delay, delay_region=args.delay_region,
    )  # fmt: skip
    spec = get_model(args.model)
    results, _ = fit_regional([spec.name], data, options)
    return results_table(results[spec.name])


def _usage_problem(args, spec) -> str | None:
    if spec.needs == REFERENCE and args.ref is None:
        return f"--model {args.model} needs --ref COLUMN"
    if spec.needs == INPUT_FUNCTION and args.input_function is None:
        return f"--model {args.model} needs --input-function INPUT.tsv"
    if args.k2prime is not None and not args.k2prime > 0:
        return "--k2prime must be a positive rate (1/min)"
    if args.vb is not None and not 0.0 <= args.vb < 1.0:
        return "--vb must be a fraction in [0, 1)"
    if args.weights in ("decay", "counts"):
        return f"--weights {args.weights} needs the tracer half-life: use duration, uniform or a column"
    return None


def _write(table: pd.DataFrame, output: Path | None) -> None:
    """Write the table; to a file via a temporary file renamed into place (never half-written)."""
    if output is None:
        table.to_csv(sys.stdout, sep="\t", index=False, na_rep="n/a", float_format="%.6g")
        return
    fd, tmp = tempfile.mkstemp(dir=output.parent if str(output.parent) else ".", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        table.to_csv(fh, sep="\t", index=False, na_rep="n/a", float_format="%.6g")
    os.replace(tmp, output)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    spec = get_model(args.model)
    problem = _usage_problem(args, spec)
    if problem:
        print(f"tspo-bidsapp-fit: {problem}", file=sys.stderr)
        return EX_USAGE
    for path in (args.tacs, args.input_function):
        if path is not None and not path.is_file():
            print(f"tspo-bidsapp-fit: input file not found: {path}", file=sys.stderr)
            return EX_MISSING_INPUT
    try:
        timing, ref_tac, regions, w = read_tacs(args.tacs, args.ref, args.weights)
        inp = arterial_input(args, timing, regions) if spec.needs == INPUT_FUNCTION else None
        table = fit_table(args, timing, ref_tac, regions, w, inp)
    except DataError as exc:
        print(f"tspo-bidsapp-fit: {exc}", file=sys.stderr)
        return exc.exit_code
    except ValueError as exc:
        print(f"tspo-bidsapp-fit: {args.tacs}: {exc}", file=sys.stderr)
        return DataError.exit_code
    _write(table, args.output)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
