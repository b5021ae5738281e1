"""Run settings: one frozen dataclass, built from the command line and passed explicitly.

A copy is saved as JSON to ``OUTPUT_DIR/logs/config-<run_id>.json`` with every run, and
:func:`Config.from_dict` reads it back.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from tspo_bidsapp import __version__
from tspo_bidsapp.kinetics.logan import DEFAULT_TSTAR_MIN
from tspo_bidsapp.registration.confounds import DEFAULT_FD_THRESHOLD_MM
from tspo_bidsapp.registration.hmc import DEFAULT_HMC_START_TIME_S
from tspo_bidsapp.writing import can_create, write_bytes_atomic

ANALYSIS_LEVELS = ("participant", "group")
WORKFLOW_NAME = "tspo_bidsapp_wf"


def default_work_dir(output_dir: Path) -> Path:
    """``work/`` beside OUTPUT_DIR: same filesystem as the outputs, never the current folder.

    Where that place cannot be written (a container with a read-only root and only OUTPUT_DIR
    mounted), ``tspo-bidsapp-work`` in the temporary folder (``$TMPDIR``, else ``/tmp``).
    """
    beside = Path(output_dir).parent / "work"
    if can_create(beside):
        return beside
    return Path(tempfile.gettempdir()) / "tspo-bidsapp-work"


@dataclass(frozen=True)
class Config:
    """Everything a run needs to know. Paths are absolute; memory is in GB."""

    bids_dir: Path
    output_dir: Path
    analysis_level: str
    work_dir: Path
    participant_label: tuple[str, ...] = ()  # labels without "sub-"; empty: all
    session_label: tuple[str, ...] = ()  # labels without "ses-"; empty: all
    tracer_label: tuple[str, ...] = ()  # trc- labels; empty: all
    nprocs: int = 1
    omp_nthreads: int = 1
    mem_gb: float | None = None
    skip_bids_validation: bool = False
    stop_on_first_crash: bool = False
    plugin: str = "MultiProc"
    plugin_args: dict[str, Any] = field(default_factory=dict)  # copied; treat as read-only
    plugin_file: Path | None = None
    verbosity: int = 0
    run_id: str = ""
    version: str = __version__
    # PET preprocessing
    hmc: bool = True  # frame-wise head-motion correction (--hmc-off: False)
    hmc_start_time_s: float = DEFAULT_HMC_START_TIME_S  # earlier frames: not registered (s)
    fd_threshold_mm: float = DEFAULT_FD_THRESHOLD_MM  # frames with a larger FD are flagged (mm)
    injection_time_offset_s: float | None = None  # InjectionStart to use (s); None: the sidecar's
    # anatomy
    derivatives: tuple[Path, ...] = ()  # precomputed lesion masks / segmentations
    min_lesion_volume_mm3: float = 10.0  # smaller lesion components are dropped (mm^3)
    lesion_threshold: float = 0.3  # SAMSEG lesion posterior threshold
    lesion_detection: str = "samseg+flair"  # "samseg" or "samseg+flair" (anat.lesion_detect)
    # quantification
    ref_region: str = "cerebellum"  # "cerebellum", "svca", "wholebrain" or a TSPO-MS region
    svca_classes: Path | None = (
        None  # TSV: time (min) + grey_matter, white_matter, blood, high_binding
    )
    models: tuple[str, ...] = ("SRTM",)
    suvr_window_min: tuple[float, float] | None = None  # default: last 20 min of the scan
    logan_tstar_min: float = DEFAULT_TSTAR_MIN  # start of the Logan linear phase (minutes)
    k2prime: float | None = None  # 1/min; None: median regional SRTM estimate
    voxelwise_estimator: str | None = None  # SRTM maps (--voxelwise-estimator); None: default
    active_threshold: float | None = None  # voxel DVR above which tissue is active
    active_threshold_file: Path | None = None  # where active_threshold was read from
    active_k: float = 2.0  # k of mean + k SD of controls' WM DVR
    pvc: str = "none"  # "none", "gtm" (regional), "rbv" or "iy" (voxel-wise)
    pet_fwhm_mm: float | tuple[float, float, float] | None = None  # PET FWHM (mm), or x, y, z
    phenotype_rule: str | None = None  # "voxel" or "lesion"; None: lesion on corrected values
    phenotype_values: str | None = None  # "regional" or "map"; None: regional with --pvc, else map
    # arterial input (plasma-input models, runs with BIDS blood or a supplied input function)
    plasma_vb: float | None = None  # fixed blood volume; None: fitted (compartment) / 0 (graphical)
    parent_fraction_model: str | None = None  # None: chosen by AIC
    # group level
    min_controls: int = 3  # fewest controls for SVCA classes / the active threshold
    group_alpha: float = 0.05  # FDR level
    min_group_size: int = 3  # smaller groups are not tested
    lesion_match_mm: float = 5.0  # lesion matching across sessions (centre distance, mm)
    group_voxelwise: bool = False  # MNI normalisation + voxel-wise second-level models
    group_smoothing_fwhm: float | None = None  # voxel-wise: Gaussian FWHM (mm) in MNI space
    group_permutations: int | None = None  # voxel-wise permutations; None: group default
    test_retest_percent: float | None = None  # longitudinal: within-subject CV (%); None: tracer's
    group_include_flagged: bool = False  # keep fits whose fit_quality is not "ok" in statistics

    def __post_init__(self) -> None:
        for name in (
            "bids_dir", "output_dir", "work_dir", "plugin_file", "svca_classes",
            "active_threshold_file",
        ):  # fmt: skip
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value).absolute())
        for name in ("participant_label", "session_label", "tracer_label", "models"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "derivatives", tuple(Path(p) for p in self.derivatives))
        if self.suvr_window_min is not None:
            object.__setattr__(self, "suvr_window_min", tuple(map(float, self.suvr_window_min)))
        if isinstance(self.pet_fwhm_mm, list | tuple):  # x, y, z (a list after JSON)
            object.__setattr__(self, "pet_fwhm_mm", tuple(map(float, self.pet_fwhm_mm)))
        object.__setattr__(self, "plugin_args", dict(self.plugin_args))

    @property
    def logs_dir(self) -> Path:
        return self.output_dir / "logs"

    def nipype_plugin(self) -> tuple[str, dict[str, Any]]:
        """(plugin name, plugin_args) for ``Workflow.run``.

        MultiProc gets ``n_procs`` from --nprocs and ``memory_gb`` from --mem; a plugin file's
        ``plugin_args`` override these.
        """
        args: dict[str, Any] = {}
        if self.plugin in ("MultiProc", "LegacyMultiProc"):
            args["n_procs"] = self.nprocs
            if self.mem_gb is not None:
                args["memory_gb"] = self.mem_gb
            args["raise_insufficient"] = False
        args.update(self.plugin_args)
        return self.plugin, args

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, Path):
                out[key] = str(value)
            elif isinstance(value, tuple):
                out[key] = [str(v) if isinstance(v, Path) else v for v in value]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Config:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def save(self, directory: Path | None = None) -> Path:
        """Write ``config-<run_id>.json`` atomically into ``directory`` (default OUTPUT_DIR/logs)."""
        directory = Path(directory or self.logs_dir)
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / f"config-{self.run_id or 'run'}.json"
        write_text_atomic(target, json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        return target


def write_text_atomic(target: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``target`` and rename it into place."""
    write_bytes_atomic(target, text.encode())
