"""``tspo-bidsapp-fit``: fit a kinetic model to the regional TACs of a BIDS ``_tacs.tsv``.

The TSV has ``frame_start`` and ``frame_end`` in **seconds**, then one column per region
(kBq/mL); columns whose name ends in ``weights`` are never regions. Reference-tissue models
need ``--ref COLUMN``; plasma-input models an arterial input: ``--input-function INPUT.tsv``
(``time`` in s, ``AIF``, optionally ``whole_blood_radioactivity``) or ``--blood FILE [FILE ...]``
(BIDS blood recordings, processed by :mod:`tspo_bidsapp.blood`). Blood values are converted to
the TACs' ``Units`` (from the ``_tacs.json`` sidecar beside the TSV, when present).
One row per region is written with ``region`` and the model's parameters (``_kinpar.tsv``
columns for reference models; ``VT``, rate constants, %COV, delay for plasma models).
Exit codes: 0 success, 16 bad input data (the message names file and column), 64 usage
error, 66 input file missing. Nothing is written when a fit fails.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from tspo_bidsapp.blood import (
    InputFunction,
    check_coverage,
    input_function_from_recordings,
    read_input_function,
    write_input_function,
)
from tspo_bidsapp.blood.models import PARENT_FRACTION_MODELS
from tspo_bidsapp.blood.process import INTERPOLATE
from tspo_bidsapp.blood.recordings import sidecar_of
from tspo_bidsapp.exitcodes import EX_MISSING_INPUT, EX_USAGE, InvalidBIDSError
from tspo_bidsapp.io.derivatives import TSV_FORMAT
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
    source = blood.add_mutually_exclusive_group()
    source.add_argument(
        "--input-function",
        type=Path,
        default=None,
        metavar="INPUT.tsv",
        help="processed input function: time (s), AIF, optional whole_blood_radioactivity",
    )
    source.add_argument(
        "--blood",
        type=Path,
        nargs="+",
        default=None,
        metavar="FILE",
        help="BIDS blood recordings (*_recording-<label>_blood.tsv with JSON sidecars), "
        "processed into the input function",
    )
    blood.add_argument(
        "--parent-fraction-model",
        choices=(*PARENT_FRACTION_MODELS, INTERPOLATE),
        default=None,
        help="with --blood: parent-fraction model (default: chosen by AIC)",
    )
    blood.add_argument(
        "--save-input-function",
        type=Path,
        default=None,
        metavar="OUT_inputfunction.tsv",
        help="also write the input function used (TSV + JSON sidecar with its provenance)",
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


def tacs_units(path: Path) -> str | None:
    """``Units`` of the TACs from the JSON sidecar beside the TSV; None when not given."""
    sidecar = sidecar_of(path)
    if not sidecar.is_file():
        return None
    try:
        units = json.loads(sidecar.read_text()).get("Units")
    except (OSError, ValueError, AttributeError) as exc:
        raise DataError(f"cannot be read as a JSON object ({exc})", path=sidecar) from exc
    return units if isinstance(units, str) else None


def arterial_input(args, timing: FrameTiming, regions: dict) -> InputFunction:
    """The arterial input of a plasma-input fit, checked against the scan (exit 16 otherwise).

    Sources: ``--input-function`` (a processed TSV) or ``--blood`` (raw BIDS recordings,
    processed by :func:`~tspo_bidsapp.blood.input_function_from_recordings`); both are read
    by the blood package, in the TACs' units. Times: seconds relative to TimeZero, like the
    frames of the TSV.
    """
    units = tacs_units(args.tacs)
    if args.blood:
        inp = input_function_from_recordings(
            args.blood, pet_units=units, parent_fraction_model=args.parent_fraction_model
        )
    else:
        inp = read_input_function(args.input_function, pet_units=units)
    check_coverage(inp, timing.end_min, frame_start_min=timing.start_min)
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
    if spec.needs == INPUT_FUNCTION and args.input_function is None and not args.blood:
        return f"--model {args.model} needs --input-function INPUT.tsv or --blood FILE ..."
    if args.parent_fraction_model is not None and not args.blood:
        return "--parent-fraction-model applies to --blood recordings only"
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
        table.to_csv(sys.stdout, **TSV_FORMAT)
        return
    fd, tmp = tempfile.mkstemp(dir=output.parent if str(output.parent) else ".", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        table.to_csv(fh, **TSV_FORMAT)
    os.replace(tmp, output)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    spec = get_model(args.model)
    problem = _usage_problem(args, spec)
    if problem:
        print(f"tspo-bidsapp-fit: {problem}", file=sys.stderr)
        return EX_USAGE
    for path in (args.tacs, args.input_function, *(args.blood or [])):
        if path is not None and not path.is_file():
            print(f"tspo-bidsapp-fit: input file not found: {path}", file=sys.stderr)
            return EX_MISSING_INPUT
    try:
        timing, ref_tac, regions, w = read_tacs(args.tacs, args.ref, args.weights)
        inp = arterial_input(args, timing, regions) if spec.needs == INPUT_FUNCTION else None
        table = fit_table(args, timing, ref_tac, regions, w, inp)
    except InvalidBIDSError as exc:  # DataError and the blood package's BloodDataError
        print(f"tspo-bidsapp-fit: {exc}", file=sys.stderr)
        return exc.exit_code
    except ValueError as exc:
        print(f"tspo-bidsapp-fit: {args.tacs}: {exc}", file=sys.stderr)
        return DataError.exit_code
    if inp is not None and args.save_input_function is not None:
        write_input_function(inp, args.save_input_function, units=tacs_units(args.tacs)
                             or inp.provenance.get("Units") or "kBq/mL")  # fmt: skip
    _write(table, args.output)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
