"""The command line: ``tspo-bidsapp BIDS_DIR OUTPUT_DIR {participant,group} [options]``.

:func:`parse_args` returns a :class:`~tspo_bidsapp.config.Config` or raises a
:class:`~tspo_bidsapp.exitcodes.BidsAppError` carrying the BIDS-Apps exit code.
"""

from __future__ import annotations

import argparse
import os
import re
import uuid
from datetime import datetime
from pathlib import Path

import yaml

from tspo_bidsapp import __version__
from tspo_bidsapp.config import ANALYSIS_LEVELS, Config, default_work_dir
from tspo_bidsapp.exitcodes import AnalysisLevelError, MissingInputError, UsageError

_LABEL = re.compile(r"^[a-zA-Z0-9]+$")
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*([KMGT]?)(?:i?B)?\s*$", re.IGNORECASE)
_GB_PER_UNIT = {"K": 1e-6, "M": 1e-3, "G": 1.0, "T": 1e3}


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError (exit 64) instead of exiting with 2."""

    def error(self, message: str):
        raise UsageError(f"{message}\n{self.format_usage().strip()}")


def parse_memory_gb(value: str) -> float:
    """'8G', '8GB', '16000MB', '1.5T' -> GB. A bare number is MB (as in fMRIPrep)."""
    match = _MEMORY.match(str(value))
    if not match or float(match.group(1)) <= 0:
        raise UsageError(f"--mem: cannot read {value!r}; use a number with units, e.g. 8GB")
    return float(match.group(1)) * _GB_PER_UNIT[(match.group(2) or "M").upper()]


def _labels(values: list[str] | None, prefix: str, option: str) -> tuple[str, ...]:
    out: list[str] = []
    for value in values or []:
        for item in value.split(","):
            label = item.strip()
            if label.startswith(prefix):
                label = label[len(prefix) :]
            if not _LABEL.match(label):
                raise UsageError(f"{option}: {item!r} is not a valid BIDS label (letters/digits)")
            if label not in out:
                out.append(label)
    return tuple(out)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tspo-bidsapp",
        description="Quantitative TSPO PET for multiple sclerosis from a BIDS dataset.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("bids_dir", type=Path, help="the input BIDS dataset (never modified)")
    parser.add_argument("output_dir", type=Path, help="where BIDS-Derivatives are written")
    parser.add_argument("analysis_level", help="'participant' or 'group'")
    sel = parser.add_argument_group("selecting data")
    sel.add_argument(
        "--participant-label",
        "--participant_label",
        dest="participant_label",
        nargs="+",
        action="extend",
        metavar="LABEL",
        help="participants to process ('01' or 'sub-01'); default: all",
    )
    sel.add_argument(
        "--session-label",
        "--session_label",
        dest="session_label",
        nargs="+",
        action="extend",
        metavar="LABEL",
        help="sessions to process ('baseline' or 'ses-baseline'); default: all",
    )
    sel.add_argument(
        "--tracer-label",
        "--tracer_label",
        dest="tracer_label",
        nargs="+",
        action="extend",
        metavar="LABEL",
        help="PET runs to process by their trc- entity ('PBR28'); default: all",
    )
    sel.add_argument(
        "--skip-bids-validation",
        "--skip_bids_validation",
        dest="skip_bids_validation",
        action="store_true",
        help="do not validate the input with pybids' BIDS validation",
    )
    perf = parser.add_argument_group("resources and execution")
    perf.add_argument(
        "-w",
        "--work-dir",
        dest="work_dir",
        type=Path,
        help="intermediate files (default: 'work' beside OUTPUT_DIR); never inside BIDS_DIR",
    )
    perf.add_argument("--nprocs", "--n_cpus", dest="nprocs", type=int, help="parallel processes")
    perf.add_argument("--omp-nthreads", dest="omp_nthreads", type=int, help="threads per process")
    perf.add_argument(
        "--mem", "--mem-gb", dest="mem", help="memory limit with units: 8GB, 16000MB (bare: MB)"
    )
    perf.add_argument(
        "--use-plugin",
        dest="use_plugin",
        type=Path,
        metavar="FILE",
        help="nipype plugin YAML: 'plugin: SLURM' and 'plugin_args: {...}'",
    )
    perf.add_argument(
        "--stop-on-first-crash", action="store_true", help="stop at the first failing step"
    )
    parser.add_argument("--version", action="version", version=f"tspo-bidsapp {__version__}")
    parser.add_argument(
        "-v", "--verbose", dest="verbosity", action="count", default=0, help="more log (-vv)"
    )
    return parser


def _read_plugin_file(path: Path) -> tuple[str, dict]:
    if not path.is_file():
        raise MissingInputError("plugin file does not exist", path=path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UsageError(f"not valid YAML ({exc})", path=path) from exc
    if not isinstance(data, dict) or not isinstance(data.get("plugin"), str):
        raise UsageError("must be a YAML mapping with a 'plugin' name", path=path, field="plugin")
    args = data.get("plugin_args") or {}
    if not isinstance(args, dict):
        raise UsageError("must be a mapping", path=path, field="plugin_args")
    return data["plugin"], args


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def parse_args(argv: list[str] | None = None) -> Config:
    """Parse and check the command line; nothing is created on disk."""
    opts = build_parser().parse_args(argv)
    if opts.analysis_level not in ANALYSIS_LEVELS:
        raise AnalysisLevelError(
            f"analysis level must be one of {', '.join(ANALYSIS_LEVELS)}, "
            f"got {opts.analysis_level!r}"
        )
    bids_dir = opts.bids_dir.expanduser().resolve()
    if not bids_dir.is_dir():
        raise MissingInputError("BIDS_DIR does not exist or is not a folder", path=opts.bids_dir)
    output_dir = opts.output_dir.expanduser().resolve()
    work_dir = (opts.work_dir or default_work_dir(output_dir)).expanduser().resolve()
    for name, path in (("OUTPUT_DIR", output_dir), ("work dir", work_dir)):
        if _inside(path, bids_dir):
            raise UsageError(
                f"the {name} {path} is inside the input dataset {bids_dir}; the input is never "
                "written to: choose a folder outside it" + (" (-w)" if name == "work dir" else "")
            )
        if path.exists() and not path.is_dir():
            raise UsageError(f"the {name} exists and is not a folder", path=path)
    if _inside(bids_dir, output_dir):
        raise UsageError(f"the input dataset {bids_dir} is inside OUTPUT_DIR {output_dir}")

    nprocs = opts.nprocs if opts.nprocs is not None else (os.cpu_count() or 1)
    if nprocs < 1:
        raise UsageError(f"--nprocs must be at least 1, got {nprocs}")
    omp = opts.omp_nthreads if opts.omp_nthreads is not None else max(1, min(nprocs - 1, 8))
    if omp < 1:
        raise UsageError(f"--omp-nthreads must be at least 1, got {omp}")
    if omp > nprocs:
        raise UsageError(f"--omp-nthreads ({omp}) cannot exceed --nprocs ({nprocs})")
    plugin, plugin_args = "MultiProc", {}
    if opts.use_plugin is not None:
        plugin, plugin_args = _read_plugin_file(opts.use_plugin.expanduser().resolve())

    run_id = f"{datetime.now():%Y%m%d-%H%M%S}_{uuid.uuid4().hex[:8]}"
    return Config(
        bids_dir=bids_dir,
        output_dir=output_dir,
        analysis_level=opts.analysis_level,
        work_dir=work_dir,
        participant_label=_labels(opts.participant_label, "sub-", "--participant-label"),
        session_label=_labels(opts.session_label, "ses-", "--session-label"),
        tracer_label=_labels(opts.tracer_label, "trc-", "--tracer-label"),
        nprocs=nprocs,
        omp_nthreads=omp,
        mem_gb=None if opts.mem is None else parse_memory_gb(opts.mem),
        skip_bids_validation=opts.skip_bids_validation,
        stop_on_first_crash=opts.stop_on_first_crash,
        plugin=plugin,
        plugin_args=plugin_args,
        plugin_file=None if opts.use_plugin is None else opts.use_plugin.expanduser().resolve(),
        verbosity=opts.verbosity,
        run_id=run_id,
    )
