"""Entry point of ``tspo-bidsapp``: parse, validate every input, then run the workflow.

Nothing is written before all inputs have been validated. Exit codes follow the BIDS-Apps
execution conventions (:mod:`tspo_bidsapp.exitcodes`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import shutil
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

from threadpoolctl import threadpool_limits

from tspo_bidsapp import __version__
from tspo_bidsapp.cli.parser import parse_args
from tspo_bidsapp.config import Config
from tspo_bidsapp.exitcodes import EX_FAILED, EX_OK, BidsAppError
from tspo_bidsapp.writing import write_bytes_atomic

LOGGER = logging.getLogger("tspo_bidsapp")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS")  # fmt: skip


def _setup_logging(verbosity: int) -> None:
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbosity + 1, 2)]
    logger = logging.getLogger("tspo_bidsapp")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)
    logging.getLogger("tspo_bidsapp.progress").setLevel(logging.INFO)  # shown by default


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the run and restore them afterwards."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def dataset_description(config: Config) -> dict:
    """The derivative dataset_description.json content."""
    source: dict = {"URL": config.bids_dir.as_uri()}
    with contextlib.suppress(OSError, ValueError):
        raw = json.loads((config.bids_dir / "dataset_description.json").read_text())
        if raw.get("DatasetDOI"):
            source["DOI"] = raw["DatasetDOI"]
    return {
        "Name": "tspo-bidsapp derivatives",
        "BIDSVersion": "1.10.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "tspo-bidsapp", "Version": __version__}],
        "SourceDatasets": [source],
        "DatasetLinks": {"raw": config.bids_dir.as_uri()},
    }


def write_dataset_description(config: Config) -> Path:
    """Create OUTPUT_DIR/dataset_description.json unless a valid one exists.

    Safe with several participants starting at once: the file is written to a temporary name
    and hard-linked into place, which fails (and keeps the existing file) if another run won.
    ``GeneratedBy`` names the container image when ``TSPO_BIDSAPP_CONTAINER`` is set
    (``docker://<image>:<tag>`` or a path to an Apptainer image).
    """
    config.output_dir.mkdir(parents=True, exist_ok=True)
    target = config.output_dir / "dataset_description.json"
    with contextlib.suppress(OSError, ValueError):
        existing = json.loads(target.read_text())
        if existing.get("DatasetType") == "derivative" and existing.get("GeneratedBy"):
            return target
    description = dataset_description(config)
    image = os.environ.get("TSPO_BIDSAPP_CONTAINER", "").strip()
    if image:
        kind = "docker" if image.startswith("docker://") or ":" in image else "singularity"
        description["GeneratedBy"][0]["Container"] = {"Type": kind, "Tag": image}
    data = (json.dumps(description, indent=2) + "\n").encode()
    if not write_bytes_atomic(target, data, exclusive=True):  # another run created it first
        with contextlib.suppress(OSError, ValueError):
            if json.loads(target.read_text()).get("DatasetType") == "derivative":
                return target
        write_bytes_atomic(target, data)  # an invalid one was there
    return target


def _configure_nipype(config: Config) -> None:
    os.environ.setdefault("NIPYPE_NO_ET", "1")  # nipype's version check goes to the network
    from nipype import config as nipype_config
    from nipype import logging as nipype_logging

    nipype_config.set("execution", "check_version", "false")
    nipype_config.set("logging", "workflow_level", "INFO" if config.verbosity else "WARNING")
    nipype_logging.update_logging(nipype_config)


def run_participant(config: Config) -> int:
    from tspo_bidsapp.io.bids_input import collect_data

    subjects, input_warnings = collect_data(
        config.bids_dir,
        participant_label=config.participant_label,
        session_label=config.session_label,
        tracer_label=config.tracer_label,
        validate=not config.skip_bids_validation,
        derivatives=config.derivatives,
        injection_start_s=config.injection_time_offset_s,
    )
    from tspo_bidsapp.io.thresholds import check_thresholds
    from tspo_bidsapp.workflows.blood import check_blood_inputs
    from tspo_bidsapp.workflows.quant import unused_threshold_note, uses_threshold

    check_blood_inputs(config, subjects)  # arterial blood: read, units, coverage (exit 16)
    check_thresholds(config, subjects, needed=uses_threshold(config))  # per class (exit 16)
    if (unused := unused_threshold_note(config)) is not None:
        LOGGER.warning(unused)
    # Everything is valid: from here on, outputs may be written.
    config.output_dir.mkdir(parents=True, exist_ok=True)
    write_dataset_description(config)
    saved = config.save()
    LOGGER.info("settings saved to %s", saved)
    _configure_nipype(config)
    from tspo_bidsapp.workflows.base import init_tspo_wf

    workflow = init_tspo_wf(config=config, subjects=subjects)
    workflow.config["execution"] = {
        "stop_on_first_crash": str(config.stop_on_first_crash).lower(),
        "crashdump_dir": str(config.logs_dir / f"crash-{config.run_id}"),
        "crashfile_format": "txt",
        "check_version": "false",
        "hash_method": "content",
    }
    plugin, plugin_args = config.nipype_plugin()
    from tspo_bidsapp.cli.progress import Progress

    progress = Progress.for_workflow(workflow)
    if plugin in ("MultiProc", "LegacyMultiProc", "Linear"):
        plugin_args = {"status_callback": progress, **plugin_args}
    if plugin == "MultiProc":  # a dead worker ends the run instead of hanging it
        from tspo_bidsapp.cli.multiproc import SafeMultiProcPlugin

        plugin = SafeMultiProcPlugin(plugin_args=plugin_args)
    threads = str(config.omp_nthreads)
    config.work_dir.mkdir(parents=True, exist_ok=True)
    from tspo_bidsapp.reports.assemble import WarningCollector

    collector = WarningCollector()
    loggers = [logging.getLogger(name) for name in ("tspo_bidsapp", "nipype.workflow")]
    for logger in loggers:
        logger.addHandler(collector)
    for text in input_warnings:
        LOGGER.warning("%s", text)
    code = EX_OK
    try:
        with (
            _environment(dict.fromkeys(THREAD_VARIABLES, threads) | {"NIPYPE_NO_ET": "1"}),
            threadpool_limits(config.omp_nthreads),  # BLAS pools already sized at import
            progress,
        ):
            try:
                workflow.run(plugin=plugin, plugin_args=plugin_args)
            except RuntimeError as exc:
                LOGGER.error("the workflow failed (%s); crash reports: %s", exc, config.logs_dir)
                code = EX_FAILED
    finally:
        for logger in loggers:
            logger.removeHandler(collector)
    for subject in subjects:
        _write_report(config, subject.label, collector)
    if code == EX_OK:
        LOGGER.info("participant level done: %d participant(s)", len(subjects))
    return code


def _write_report(config: Config, label: str, collector) -> None:
    """Build the participant's HTML report; a report problem never changes the exit code."""
    from tspo_bidsapp.reports.assemble import build_participant_report

    try:
        path = build_participant_report(
            config.output_dir,
            label,
            config=config,
            warnings=collector.warnings,
            errors=collector.errors,
        )
        LOGGER.info("report: %s", path)
    except Exception as exc:  # the report must never hide the run's own outcome
        LOGGER.error("sub-%s: the report could not be written (%s)", label, exc)


def run_group(config: Config) -> int:
    from tspo_bidsapp.group import run_group as _run_group

    code = _run_group(config)
    config.save()
    return code


def prepare_matplotlib_dir() -> None:
    """Create ``MPLCONFIGDIR`` and seed it with a prebuilt font cache.

    In the container ``MPLCONFIGDIR`` is on a fresh tmpfs at every run; the image carries the
    font cache built once (``TSPO_BIDSAPP_MPL_CACHE``), so matplotlib neither falls back to a
    temporary folder nor rebuilds (and warns about) its font list each time.
    """
    folder = os.environ.get("MPLCONFIGDIR")
    if not folder:
        return
    with contextlib.suppress(OSError):
        Path(folder).mkdir(parents=True, exist_ok=True)
        seed = Path(os.environ.get("TSPO_BIDSAPP_MPL_CACHE", "") or "/nonexistent")
        for cached in sorted(seed.glob("fontlist-*.json")) if seed.is_dir() else ():
            if not (Path(folder) / cached.name).exists():
                shutil.copyfile(cached, Path(folder) / cached.name)


@contextlib.contextmanager
def _log_termination() -> Iterator[None]:
    """Log a line when the run receives SIGTERM, stop the worker processes, then end as
    SIGTERM would (no cleanup that could wait on running steps: the work folder keeps the
    finished ones for a resume)."""
    main_pid = os.getpid()

    def on_sigterm(signum, frame):
        if os.getpid() == main_pid:  # worker processes inherit the handler: stay quiet there
            LOGGER.error(
                "received SIGTERM: stopping; a rerun with the same work folder (-w) resumes "
                "from the finished steps"
            )
            for child in multiprocessing.active_children():
                child.terminate()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    try:
        previous = signal.signal(signal.SIGTERM, on_sigterm)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    """Run tspo-bidsapp; return a BIDS-Apps exit code."""
    try:
        config = parse_args(argv)
    except SystemExit as exc:  # --help, --version
        return int(exc.code or 0)
    except BidsAppError as exc:
        print(f"tspo-bidsapp: error: {exc}", file=sys.stderr)
        return exc.exit_code
    _setup_logging(config.verbosity)
    prepare_matplotlib_dir()
    try:
        with _log_termination():
            if config.analysis_level == "participant":
                return run_participant(config)
            return run_group(config)
    except BidsAppError as exc:
        print(f"tspo-bidsapp: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
