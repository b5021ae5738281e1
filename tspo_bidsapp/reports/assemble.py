"""Assemble ``OUTPUT_DIR/sub-<p>.html`` from the participant's derivatives, logs and crash files.

Call :func:`build_participant_report` after the workflow, also when it failed: sections whose
inputs are missing say so, and crashes are shown in the section of their stage.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from importlib.resources import files
from pathlib import Path

import jinja2
import markupsafe

from tspo_bidsapp import __version__
from tspo_bidsapp.config import write_text_atomic
from tspo_bidsapp.interfaces.bids import software_versions, write_bidsignore
from tspo_bidsapp.io import derivatives as D
from tspo_bidsapp.registration.confounds import DEFAULT_FD_THRESHOLD_MM
from tspo_bidsapp.reports import collect as C
from tspo_bidsapp.reports import sections as S
from tspo_bidsapp.reports.blood import blood_section
from tspo_bidsapp.reports.methods import REFERENCES, RunFacts, methods_paragraphs
from tspo_bidsapp.tracers import lookup_tracer

LOGGER = logging.getLogger("tspo_bidsapp.reports")
TITLES = (
    ("summary", "Summary"), ("motion", "Motion"), ("coregistration", "Co-registration"),
    ("anatomy", "Anatomy"), ("reference", "Reference region"), ("kinetics", "Kinetics"),
    ("lesions", "Lesions"), ("methods", "Methods"),
)  # fmt: skip
TITLES = (*TITLES[:6], ("blood", "Arterial input"), *TITLES[6:])  # after Kinetics
OPTION_KEYS = ("analysis_level", "participant_label", "session_label", "tracer_label", "nprocs",
               "omp_nthreads", "mem_gb", "plugin", "skip_bids_validation", "run_id", "version",
               "hmc", "hmc_start_time_s", "fd_threshold_mm", "derivatives", "ref_region",
               "models", "pvc", "pet_fwhm_mm", "logan_tstar_min", "k2prime",
               "voxelwise_estimator", "active_threshold", "active_threshold_file", "active_k",
               "phenotype_rule", "phenotype_values", "lesion_detection",
               "injection_time_offset_s")  # fmt: skip


#: The group report, relative to OUTPUT_DIR (linked from every participant report).
GROUP_REPORT = Path("group") / "report.html"


def stylesheet() -> str:
    """The CSS shared by the participant and group reports."""
    return files("tspo_bidsapp.reports").joinpath("style.css").read_text(encoding="utf-8")


def _option(value) -> str:
    """A saved setting as the options line shows it: unset values read "default", not None."""
    if value is None or value == []:
        return "default"
    return str(value)


class WarningCollector(logging.Handler):
    """Logging handler keeping every WARNING (and above) message of a run for the report.

    ``errors`` holds ERROR/CRITICAL messages, ``warnings`` the WARNING ones.
    """

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.warnings: list[str] = []
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = f"{record.name}: {record.getMessage()}"
        (self.errors if record.levelno >= logging.ERROR else self.warnings).append(text)


def _config_dict(config, output_dir: Path, subject: str) -> dict:
    if config is None:
        return C.latest_config(output_dir, subject)
    if isinstance(config, Mapping):
        return dict(config)
    return config.to_dict()


def _derivative_flags(output_dir: Path, subject: str) -> tuple[list[str], dict]:
    """Warnings stored in the participant's sidecars, and the first run summary sidecar."""
    found: list[str] = []
    seen: set[str] = set()  # the same warning is stored in several sidecars (TSV and mask)
    summary: dict = {}
    for path in sorted((output_dir / f"sub-{subject}").rglob("*.json")):
        try:
            meta = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if D.GENOTYPE_KEY in meta and not summary:
            summary = meta
        for key in D.WARNING_KEYS:
            for text in meta.get(key) or []:
                if text not in seen:
                    seen.add(text)
                    found.append(f"{path.name}: {text}")
    return found, summary


def _summary(sec: S.Section, output_dir: Path, subject: str, cfg: dict, runs) -> dict:
    bids_dir = Path(cfg["bids_dir"]) if cfg.get("bids_dir") else None
    row = C.participant_row(bids_dir, subject)
    flags, run_meta = _derivative_flags(output_dir, subject)
    inputs = C.raw_inputs(bids_dir, subject)
    tracers, frames = [], None
    for path in sorted((bids_dir / f"sub-{subject}").rglob("*_pet.json")) if inputs else []:
        meta = json.loads(path.read_text())
        tracers.append(meta.get("TracerName") or path.name)
        frames = len(meta.get("FrameDuration") or []) or frames
    if not tracers:
        tracers = sorted({p.split("trc-")[1].split("_")[0] for p in (r.prefix for r in runs)
                          if "trc-" in p})  # fmt: skip
    genotype = row.get("tspo_genotype") or run_meta.get(D.GENOTYPE_KEY)
    genotype = None if genotype in (None, "", "n/a") else genotype
    sensitive = any((t := lookup_tracer(name)) is not None and t.genotype_sensitive
                    for name in tracers)  # fmt: skip
    notes = []
    if genotype is None and sensitive:
        notes.append("TSPO genotype missing: binding of a second-generation tracer cannot be "
                     "interpreted without it (rs6971).")  # fmt: skip
    if genotype == "LAB" and sensitive:
        notes.append("Low-affinity binder (LAB): excluded from group statistics.")
    sec.notes += notes
    sec.items += [
        ("Participant", f"sub-{subject}"),
        ("Group", row.get("group") or run_meta.get("group") or "n/a"),
        ("EDSS", row.get("edss", "n/a")),
        ("Tracer", ", ".join(tracers) or "n/a"),
        ("TSPO genotype", genotype or "missing"),
        ("PET runs", ", ".join(r.prefix for r in runs) or "none found in the outputs"),
        ("Frames", str(frames) if frames else "n/a"),
        ("Inputs found", "; ".join(inputs) or "n/a"),
        ("Options", "; ".join(f"{k}={_option(cfg[k])}" for k in OPTION_KEYS if k in cfg) or "n/a"),
    ]
    return {"tracer": tracers[0] if tracers else None, "frames": frames, "flags": flags + notes}


def _run_facts(runs, anat: dict, info: dict, models, refs) -> RunFacts:
    """What the derivatives record about how they were made (see :class:`RunFacts`)."""
    seg = C.sidecar(anat.get("tspoms"))
    # the anatomy's sources record (the dseg sidecars may lack the source keys)
    sources = C.sidecar(anat.get("sources"))
    segmentation = sources.get(D.SOURCES_SEGMENTATION_KEY) or seg.get(D.SEGMENTATION_SOURCE_KEY)
    lesion_source = sources.get(D.SOURCES_LESION_KEY) or seg.get(D.LESION_SOURCE_KEY)
    kinpars = [p for run in runs for p in run.find(D.KINPAR.tail())]
    lesions = [p for run in runs for p in run.find(D.LESION_KINPAR.tail())]
    maps = [C.sidecar(p) for run in runs for p in run.find(D.MIMAP.tail(space="T1w"))]
    corrected = [m for m in (C.sidecar(p) for p in kinpars) if D.is_pvc_gtm(m)]
    return RunFacts(
        tracer=info["tracer"], n_frames=info["frames"], models=list(dict.fromkeys(models)),
        references=list(dict.fromkeys(refs)), has_flair=anat.get("flair") is not None,
        segmentation=str(segmentation or ""), lesion_source=str(lesion_source or ""),
        pvc_gtm=bool(corrected),
        pvc_maps=next((D.pvc_method(m) for m in maps if D.pvc_method(m) in ("rbv", "iy")), "none"),
        pvc_fwhm_mm=next((m[D.PVC_FWHM_KEY] for m in corrected if m.get(D.PVC_FWHM_KEY)), None),
        phenotype_rule=next((C.sidecar(p).get(D.PHENOTYPE_RULE_KEY) for p in lesions
                             if C.sidecar(p).get(D.PHENOTYPE_RULE_KEY)), {}),
    )  # fmt: skip


def build_participant_report(
    output_dir: str | Path,
    subject_label: str,
    *,
    config=None,
    warnings: Iterable[str] = (),
    errors: Iterable[str] = (),
) -> Path:
    """Write ``OUTPUT_DIR/sub-<label>.html`` (figures in ``sub-<label>/figures/``); return it.

    ``config``: the run's :class:`~tspo_bidsapp.config.Config` or its dict (default: the last
    ``logs/config-*.json``); ``warnings``/``errors``: messages the run logged.
    """
    started = time.perf_counter()
    output_dir = Path(output_dir).absolute()
    subject = subject_label.removeprefix("sub-")
    cfg = _config_dict(config, output_dir, subject)
    sections = {key: S.Section(key, title) for key, title in TITLES}
    crashes = C.crash_files(output_dir, subject)
    for crash in crashes:
        sections[crash.stage].add_crashes([crash])
    runs = C.pet_runs(output_dir, subject)
    fig = S.FigureMaker(output_dir, subject)
    anat = {
        "t1w": C.anat_file(output_dir, subject, D.T1W_PREPROC.tail()),
        "brain_mask": C.anat_file(output_dir, subject, D.BRAIN_MASK.tail()),
        "lesion_mask": C.anat_file(output_dir, subject, D.LESION_MASK.tail()),
        "tspoms": C.anat_file(output_dir, subject, D.TSPOMS_DSEG.tail()),
        "morph": C.anat_file(output_dir, subject, D.TSPOMS_MORPH.tail()),
        "lesion_dseg": C.anat_file(output_dir, subject, D.LESION_DSEG.tail()),
        "flair": None,  # no FLAIR derivative is written: the input FLAIR is shown
        "sources": C.anat_file(output_dir, subject, D.ANAT_SOURCES.tail()),
    }
    for folder in C.subject_folders(output_dir, subject):
        plain = [p for p in sorted((folder / "anat").glob("*_dseg.nii.gz"))
                 if "_seg-" not in p.name and "_desc-" not in p.name]  # fmt: skip
        anat["dseg"] = anat.get("dseg") or (plain[0] if plain else None)
    if anat["flair"] is None and cfg.get("bids_dir"):
        raw = sorted(Path(cfg["bids_dir"]).glob(f"sub-{subject}/**/anat/*_FLAIR.nii*"))
        anat["flair"] = raw[0] if raw else None

    info = _summary(sections["summary"], output_dir, subject, cfg, runs)
    fd_threshold = float(cfg.get("fd_threshold_mm", DEFAULT_FD_THRESHOLD_MM))
    flagged = S.motion_section(sections["motion"], runs, fig, fd_threshold)
    S.coreg_section(sections["coregistration"], runs, fig, anat["t1w"], anat["brain_mask"])
    volumes = S.anatomy_section(sections["anatomy"], fig, subject, anat)
    refs = S.reference_section(sections["reference"], runs, fig, anat["t1w"], volumes)
    models = S.kinetics_section(sections["kinetics"], runs, fig, anat["t1w"], anat["lesion_mask"])
    if any(run.first("inputfunction.tsv") for run in runs):
        blood_section(sections["blood"], runs, fig)
    else:  # no arterial input: no section
        del sections["blood"]
    has_lesions = S.lesions_section(sections["lesions"], runs, fig, anat["t1w"],
                                    anat["lesion_dseg"])  # fmt: skip
    facts = _run_facts(runs, anat, info, models, refs)
    facts.has_lesions = has_lesions
    facts.fd_threshold_mm = next((t for _, t in flagged.values()), None)
    paragraphs, cited = methods_paragraphs(cfg, facts)
    methods = sections["methods"]
    methods.notes = paragraphs
    methods.items = [(k, v) for k, v in software_versions().items()]
    # per-frame motion warnings of the run are summarised once per run below
    logged = [w for w in warnings if "(framewise displacement) since the previous frame" not in w]
    all_warnings = list(dict.fromkeys([*logged, *info["flags"]]))
    for prefix, (frames, threshold) in flagged.items():
        if frames:
            n = len(frames)
            all_warnings.append(f"{prefix}: {n} frame{'s' if n > 1 else ''} with FD > "
                                f"{threshold:g} mm (frame{'s' if n > 1 else ''} "
                                f"{', '.join(str(i + 1) for i in frames)})")  # fmt: skip
    all_errors = list(dict.fromkeys([*errors, *(f"{c.node}: {c.error}" for c in crashes)]))
    for sec in sections.values():
        sec.finish()
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = env.from_string(
        files("tspo_bidsapp.reports").joinpath("report.html.j2").read_text(encoding="utf-8")
    )
    html = template.render(
        subject=subject, version=__version__, sections=list(sections.values()),
        warnings=all_warnings, errors=all_errors, flagged=flagged,
        references=[(k, REFERENCES[k]) for k in cited],
        build_seconds=f"{time.perf_counter() - started:.1f}", css=markupsafe.Markup(stylesheet()),
        group_report=str(GROUP_REPORT) if (output_dir / GROUP_REPORT).exists() else "",
    )  # fmt: skip
    target = output_dir / f"sub-{subject}.html"
    write_bidsignore(output_dir)  # the report and figures are not BIDS files
    write_text_atomic(target, html)
    LOGGER.info("report written to %s in %.1f s", target, time.perf_counter() - started)
    return target
