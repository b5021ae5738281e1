"""Checks of the command line's options, turned into :class:`~tspo_bidsapp.config.Config` fields.

:func:`quant_options` checks the quantification, PET-preprocessing, anatomy and group options
(exit 64 for a bad value, 66 for a missing file); :func:`read_plugin_file` reads
``--use-plugin``. Nothing is created on disk.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from tspo_bidsapp.exitcodes import MissingInputError, UsageError
from tspo_bidsapp.io.thresholds import read_threshold_file
from tspo_bidsapp.quant.pvc import PVC_METHODS
from tspo_bidsapp.quant.reference import parse_ref_region
from tspo_bidsapp.quant.regional import MODELS
from tspo_bidsapp.quant.svca import read_svca_classes

MODEL_NAMES = {m.lower(): m for m in MODELS}
#: SVCA classes the group level writes (relative to OUTPUT_DIR), used when --svca-classes is
#: absent: ``group/tracer-<T>_desc-svca_classes.tsv`` when exactly one tracer's file is there.
GROUP_SVCA_CLASSES = "group/tracer-<TRACER>_desc-svca_classes.tsv"


def read_plugin_file(path: Path) -> tuple[str, dict]:
    """``(plugin, plugin_args)`` of a ``--use-plugin`` YAML file (exit 64 / 66)."""
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


def _positive(value: float | None, option: str, *, zero: bool = False) -> None:
    if value is None:
        return
    if not np.isfinite(value) or value < 0 or (value == 0 and not zero):
        bound = "at least 0" if zero else "positive"
        raise UsageError(f"{option} must be {bound}, got {value:g}")


def quant_options(opts, output_dir: Path) -> dict:
    """Check the quantification, PET-preprocessing and anatomy options (exit 64 / 66)."""
    try:
        opts.ref_region = parse_ref_region(opts.ref_region)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if opts.pvc not in PVC_METHODS:
        raise UsageError(f"--pvc must be one of {', '.join(PVC_METHODS)}, got {opts.pvc!r}")
    fwhm = opts.pet_fwhm or []
    if len(fwhm) not in (0, 1, 3):
        raise UsageError(f"--pet-fwhm takes one value or three (x y z), got {len(fwhm)}")
    models = []
    for item in (m for value in opts.models for m in value.split(",") if m.strip()):
        name = MODEL_NAMES.get(item.strip().lower())
        if name is None:
            raise UsageError(f"--models: unknown model {item!r}; choose from "
                             f"{' '.join(MODEL_NAMES)}")  # fmt: skip
        if name not in models:
            models.append(name)
    if opts.plasma_vb is not None and not 0.0 <= opts.plasma_vb < 1.0:
        raise UsageError(f"--vb must be a fraction in [0, 1), got {opts.plasma_vb}")
    for value, option, zero in (
        (opts.hmc_start_time, "--hmc-start-time", True), (opts.fd_threshold, "--fd-threshold", 0),
        (opts.min_lesion_size, "--min-lesion-size", True), (opts.logan_tstar, "--logan-tstar", 1),
        (opts.k2prime, "--k2prime", False), (opts.active_threshold, "--active-threshold", 0),
        (opts.active_k, "--active-k", False), *((v, "--pet-fwhm", False) for v in fwhm),
        (opts.min_controls, "--min-controls", False), (opts.group_alpha, "--group-alpha", False),
        (opts.min_group_size, "--min-group-size", False),
        (opts.lesion_match_mm, "--lesion-match-mm", False),
        (opts.group_smoothing_fwhm, "--group-smoothing-fwhm", False),
        (opts.group_permutations, "--group-permutations", False),
        (opts.test_retest_percent, "--test-retest-percent", False),
    ):  # fmt: skip
        _positive(value, option, zero=bool(zero))
    if not 0 < opts.lesion_threshold < 1:
        raise UsageError(
            f"--lesion-threshold must lie between 0 and 1, got {opts.lesion_threshold:g}"
        )
    window = None
    if opts.suvr_window is not None:
        start, end = opts.suvr_window
        if not (np.isfinite(start) and np.isfinite(end) and 0 <= start < end):
            raise UsageError(
                f"--suvr-window: need 0 <= START < END (minutes), got {start:g} {end:g}"
            )
        window = (float(start), float(end))
    if opts.pvc != "none" and opts.pet_fwhm is None:
        raise UsageError(f"--pvc {opts.pvc} needs the PET resolution: give --pet-fwhm MM")
    no_threshold = opts.active_threshold is None and opts.active_threshold_file is None
    if opts.phenotype_rule == "voxel" and no_threshold:
        raise UsageError("--phenotype-rule voxel needs --active-threshold[-file] (DVR)")
    if opts.phenotype_values == "regional" and opts.pvc == "none":
        raise UsageError("--phenotype-values regional needs partial-volume correction (--pvc)")
    svca = None
    if opts.ref_region == "svca":
        svca = opts.svca_classes or _group_svca_classes(output_dir, opts.tracer_label)
        svca = svca.expanduser().resolve()
        if not svca.is_file():
            raise MissingInputError(
                "--ref-region svca needs --svca-classes FILE (or the group level's classes); "
                "the file does not exist", path=svca, field="--svca-classes",
            )  # fmt: skip
        try:
            read_svca_classes(svca)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise MissingInputError(
                f"unreadable ({exc})", path=svca, field="--svca-classes"
            ) from exc
    threshold, threshold_file = opts.active_threshold, None
    if opts.active_threshold_file is not None:
        threshold_file = opts.active_threshold_file.expanduser().resolve()
        threshold = read_threshold_file(threshold_file).threshold_dvr  # None: per binding class
    derivatives = []
    for path in opts.derivatives or []:
        path = path.expanduser().resolve()
        if not path.is_dir():
            raise MissingInputError("--derivatives folder does not exist", path=path)
        derivatives.append(path)
    return {
        "hmc": not opts.hmc_off, "hmc_start_time_s": opts.hmc_start_time,
        "fd_threshold_mm": opts.fd_threshold, "derivatives": tuple(derivatives),
        "min_lesion_volume_mm3": opts.min_lesion_size, "lesion_threshold": opts.lesion_threshold,
        "lesion_detection": opts.lesion_detection,
        "ref_region": opts.ref_region, "svca_classes": svca, "models": tuple(models),
        "suvr_window_min": window, "logan_tstar_min": opts.logan_tstar, "k2prime": opts.k2prime,
        "voxelwise_estimator": opts.voxelwise_estimator,
        "active_threshold": threshold, "active_threshold_file": threshold_file,
        "active_k": opts.active_k, "pvc": opts.pvc, "phenotype_rule": opts.phenotype_rule,
        "phenotype_values": opts.phenotype_values,
        "pet_fwhm_mm": (fwhm[0] if len(fwhm) == 1 else tuple(fwhm)) if fwhm else None,
        "min_controls": opts.min_controls, "group_alpha": opts.group_alpha,
        "min_group_size": opts.min_group_size, "lesion_match_mm": opts.lesion_match_mm,
        "group_voxelwise": opts.group_voxelwise,
        "group_smoothing_fwhm": opts.group_smoothing_fwhm,
        "group_permutations": opts.group_permutations,
        "test_retest_percent": opts.test_retest_percent,
        "injection_time_offset_s": opts.injection_time_offset,
        "plasma_vb": opts.plasma_vb, "parent_fraction_model": opts.parent_fraction_model,
        "group_include_flagged": opts.group_include_flagged,
    }  # fmt: skip


def _group_svca_classes(output_dir: Path, tracers) -> Path:
    """The group level's ``group/tracer-<T>_desc-svca_classes.tsv`` (one tracer, or the one
    named by --tracer-label); the generic name when none or several match."""
    found = sorted((output_dir / "group").glob("tracer-*_desc-svca_classes.tsv"))
    if tracers:
        wanted = {f"tracer-{t}_desc-svca_classes.tsv" for t in tracers}
        found = [p for p in found if p.name in wanted]
    return found[0] if len(found) == 1 else output_dir / GROUP_SVCA_CLASSES
