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

from tspo_bidsapp import __version__
from tspo_bidsapp.anat.lesion_detect import DEFAULT_METHOD as DEFAULT_LESION_METHOD
from tspo_bidsapp.anat.lesion_detect import METHODS as LESION_METHODS
from tspo_bidsapp.blood.models import PARENT_FRACTION_MODELS
from tspo_bidsapp.blood.process import INTERPOLATE
from tspo_bidsapp.cli.options import (
    GROUP_SVCA_CLASSES,
    MODEL_NAMES,
    quant_options,
    read_plugin_file,
)
from tspo_bidsapp.config import ANALYSIS_LEVELS, Config, default_work_dir
from tspo_bidsapp.exitcodes import AnalysisLevelError, MissingInputError, UsageError
from tspo_bidsapp.kinetics.logan import DEFAULT_TSTAR_MIN
from tspo_bidsapp.kinetics.registry_models import DEFAULT_SRTM_MAP_ESTIMATOR, SRTM_MAP_ESTIMATORS
from tspo_bidsapp.quant.phenotypes import RULES as PHENOTYPE_RULES
from tspo_bidsapp.quant.phenotypes import VALUE_SOURCES as PHENOTYPE_VALUES
from tspo_bidsapp.registration.confounds import DEFAULT_FD_THRESHOLD_MM
from tspo_bidsapp.registration.hmc import DEFAULT_HMC_START_TIME_S
from tspo_bidsapp.writing import check_writable

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


class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show ``(default: X)`` only for real defaults the help text does not already state."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text:
            return text
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tspo-bidsapp",
        description="Quantitative TSPO PET for multiple sclerosis from a BIDS dataset.",
        formatter_class=_DefaultsFormatter,
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
        help="intermediate files (default: 'work' beside OUTPUT_DIR, or in the temporary "
        "folder when that place is not writable); never inside BIDS_DIR",
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
    pet = parser.add_argument_group("PET preprocessing")
    pet.add_argument(
        "--hmc-start-time", dest="hmc_start_time", type=float, default=DEFAULT_HMC_START_TIME_S,
        metavar="SEC",
        help="frames starting before this time (seconds) are not motion-corrected",
    )  # fmt: skip
    pet.add_argument("--hmc-off", action="store_true", help="no head-motion correction")
    pet.add_argument(
        "--injection-time-offset", dest="injection_time_offset", type=float, metavar="SEC",
        help="injection time (s) on the FrameTimesStart axis, for sidecars without (or with a "
        "wrong) InjectionStart: 0 when frame times count from injection, -120 when the tracer "
        "was injected 120 s before TimeZero",
    )  # fmt: skip
    pet.add_argument(
        "--fd-threshold", dest="fd_threshold", type=float, default=DEFAULT_FD_THRESHOLD_MM,
        metavar="MM",
        help="framewise displacement (mm) above which a frame is flagged",
    )  # fmt: skip
    anat = parser.add_argument_group("anatomy")
    anat.add_argument(
        "--derivatives", nargs="+", action="extend", type=Path, metavar="DIR",
        help="BIDS-Derivatives folders with precomputed lesion masks / segmentations",
    )  # fmt: skip
    anat.add_argument(
        "--min-lesion-size", dest="min_lesion_size", type=float, default=10.0, metavar="MM3",
        help="lesion components smaller than this (mm^3) are dropped",
    )  # fmt: skip
    anat.add_argument(
        "--lesion-threshold", dest="lesion_threshold", type=float, default=0.3, metavar="P",
        help="SAMSEG lesion posterior threshold (0-1)",
    )  # fmt: skip
    anat.add_argument(
        "--lesion-detection", dest="lesion_detection", choices=LESION_METHODS,
        default=DEFAULT_LESION_METHOD,
        help="'samseg': SAMSEG's lesion label alone; 'samseg+flair': plus small FLAIR-"
        "hyperintense WM lesions grown from SAMSEG's posterior and FLAIR seeds (default)",
    )  # fmt: skip
    quant = parser.add_argument_group("quantification")
    quant.add_argument("--ref-region", dest="ref_region", default="cerebellum",
                       help="reference region: 'cerebellum', 'svca', 'wholebrain' (a "
                       "pseudo-reference: brain minus lesions) or a TSPO-MS region name "
                       "minus lesions, e.g. NAWM, cortical-GM")  # fmt: skip
    quant.add_argument(
        "--svca-classes", dest="svca_classes", type=Path, metavar="FILE",
        help="SVCA kinetic classes (TSV: time in minutes, grey_matter, white_matter, blood, "
        f"high_binding); default with svca: OUTPUT_DIR/{GROUP_SVCA_CLASSES}",
    )  # fmt: skip
    quant.add_argument(
        "--models", nargs="+", default=["srtm"], metavar="MODEL",
        help=f"kinetic models, one or more of {' '.join(MODEL_NAMES)}",
    )  # fmt: skip
    quant.add_argument(
        "--suvr-window", dest="suvr_window", nargs=2, type=float, metavar=("START", "END"),
        help="SUVR window (minutes from injection); default: the last 20 min",
    )  # fmt: skip
    quant.add_argument("--logan-tstar", dest="logan_tstar", type=float, default=DEFAULT_TSTAR_MIN,
                       metavar="MIN", help="Logan t* (minutes)")  # fmt: skip
    quant.add_argument(
        "--k2prime", type=float, metavar="PER_MIN",
        help="reference efflux k2' (1/min) for SRTM2/MRTM2; default: median regional SRTM",
    )  # fmt: skip
    quant.add_argument(
        "--voxelwise-estimator", dest="voxelwise_estimator", choices=SRTM_MAP_ESTIMATORS,
        help=f"SRTM maps: {', '.join(SRTM_MAP_ESTIMATORS)}; default {DEFAULT_SRTM_MAP_ESTIMATOR}",
    )  # fmt: skip
    thr = quant.add_mutually_exclusive_group()
    thr.add_argument("--active-threshold", dest="active_threshold", type=float, metavar="DVR",
                     help="voxel DVR above which tissue is active (lesion phenotypes)")  # fmt: skip
    thr.add_argument(
        "--active-threshold-file", dest="active_threshold_file", type=Path, metavar="FILE",
        help="the threshold written by the group level (JSON or TSV with 'threshold_dvr'; "
        "the per-binding-class JSON: each participant gets its tspo_genotype class's)",
    )  # fmt: skip
    quant.add_argument("--active-k", dest="active_k", type=float, default=2.0, metavar="K",
                       help="threshold = mean + K SD of controls' WM DVR")  # fmt: skip
    quant.add_argument("--pvc", default="none",
                       help="partial-volume correction: none, gtm (regional), rbv or iy "
                       "(voxel-wise: region-based voxel-wise, iterative Yang)")  # fmt: skip
    quant.add_argument("--pet-fwhm", dest="pet_fwhm", type=float, nargs="+", metavar="MM",
                       help="PET resolution, FWHM in mm: one value (isotropic) or three "
                       "(x y z); required with --pvc")  # fmt: skip
    quant.add_argument(
        "--phenotype-rule", dest="phenotype_rule", choices=PHENOTYPE_RULES,
        help="lesion phenotype rule: 'voxel' (controls' voxel DVR threshold; needs "
        "--active-threshold[-file]) or 'lesion' (core/rim against the participant's own "
        "perilesional shell); default: 'lesion' on corrected values (--pvc), else 'voxel'",
    )  # fmt: skip
    quant.add_argument(
        "--phenotype-values", dest="phenotype_values", choices=PHENOTYPE_VALUES,
        help="lesion values the rule is applied to: 'regional' (DVR of every lesion core's "
        "and rim's partial-volume-corrected TAC; needs --pvc) or 'map' (the voxel-wise DVR "
        "map); default: 'regional' with --pvc, else 'map'",
    )  # fmt: skip
    blood = parser.add_argument_group("arterial input (plasma-input models)")
    blood.add_argument(
        "--vb", dest="plasma_vb", type=float, metavar="FRACTION",
        help="fixed blood volume fraction of the plasma-input models (default: fitted by "
        "1tcm/2tcm/2tcm1k, 0 for logan-plasma/ma1)",
    )  # fmt: skip
    blood.add_argument(
        "--parent-fraction-model", dest="parent_fraction_model",
        choices=(*PARENT_FRACTION_MODELS, INTERPOLATE),
        help="parent-fraction model of the blood recordings (default: chosen by AIC)",
    )  # fmt: skip
    group = parser.add_argument_group("group level")
    group.add_argument(
        "--min-controls", dest="min_controls", type=int, default=3, metavar="N",
        help="fewest healthy controls from which SVCA classes and the active threshold "
        "are derived",
    )  # fmt: skip
    group.add_argument("--group-alpha", dest="group_alpha", type=float, default=0.05,
                       metavar="Q", help="FDR level of the group statistics")  # fmt: skip
    group.add_argument(
        "--min-group-size", dest="min_group_size", type=int, default=3, metavar="N",
        help="groups smaller than this are not tested",
    )  # fmt: skip
    group.add_argument(
        "--lesion-match-mm", dest="lesion_match_mm", type=float, default=5.0, metavar="MM",
        help="largest centre distance of a lesion matched across sessions",
    )  # fmt: skip
    group.add_argument(
        "--group-voxelwise", dest="group_voxelwise", action="store_true",
        help="also normalise to MNI152 (ANTsPy SyN) and run voxel-wise second-level models",
    )  # fmt: skip
    group.add_argument("--group-smoothing-fwhm", dest="group_smoothing_fwhm", type=float,
                       metavar="MM", help="voxel-wise: Gaussian smoothing in MNI space (FWHM)")  # fmt: skip
    group.add_argument("--group-permutations", dest="group_permutations", type=int,
                       metavar="N", help="voxel-wise: permutations of the FWE tests (5000)")  # fmt: skip
    group.add_argument(
        "--test-retest-percent", dest="test_retest_percent", type=float, metavar="CV",
        help="within-subject test-retest CV (%%) for the smallest detectable change "
        "(default: the tracer's literature value)",
    )  # fmt: skip
    group.add_argument(
        "--group-include-flagged", dest="group_include_flagged", action="store_true",
        help="keep regional values whose fit_quality is not 'ok' in the group statistics",
    )  # fmt: skip
    parser.add_argument("--version", action="version", version=f"tspo-bidsapp {__version__}")
    parser.add_argument(
        "-v", "--verbose", dest="verbosity", action="count", default=0, help="more log (-vv)"
    )
    return parser


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
        check_writable(path, name)
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
        plugin, plugin_args = read_plugin_file(opts.use_plugin.expanduser().resolve())

    quant = quant_options(opts, output_dir)
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
        **quant,
    )
