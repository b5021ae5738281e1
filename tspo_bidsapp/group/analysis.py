"""The group analysis: tables, statistics, controls-derived files, longitudinal, voxel-wise.

Outputs in ``OUTPUT_DIR/group/`` (see ``docs/group.md``): ``study_table.tsv`` (wide),
``study_table_long.tsv``, ``lesions.tsv``, ``statistics.tsv``, ``longitudinal_regions.tsv``,
``longitudinal_lesions.tsv``, ``tracer-<T>_desc-svca_classes.tsv``,
``tracer-<T>_model-<M>_ref-<R>_desc-activethreshold.json``, ``voxelwise/`` and ``report.html``.
Cross-sectional statistics and controls-derived parameters use each participant's first
session and first rec/run (natural order) so that nobody counts twice.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tspo_bidsapp.config import write_text_atomic
from tspo_bidsapp.group import controls, longitudinal, monitoring, report, voxelmaps
from tspo_bidsapp.group.collect import FIT_KEYS, Collection
from tspo_bidsapp.group.stats import STAT_REGIONS, family_statistics
from tspo_bidsapp.group.tables import (
    attach_participants,
    baseline_rows,
    genotype_sensitive,
    long_table,
    primary_measure,
    study_table,
)
from tspo_bidsapp.group.voxelwise import CLUSTER_FORMING_P, DEFAULT_PERMUTATIONS
from tspo_bidsapp.io.derivatives import TSV_FORMAT
from tspo_bidsapp.io.participants import ParticipantInfo
from tspo_bidsapp.quant.quality import is_flagged

LOGGER = logging.getLogger("tspo_bidsapp.group")
FAMILY = ("tracer", "model", "ref")


@dataclass(frozen=True)
class GroupOptions:
    """Group-level settings (command-line names in ``docs/group.md``)."""

    min_controls: int = 3
    active_k: float = 2.0
    alpha: float = 0.05
    min_group_size: int = 3
    lesion_match_mm: float = 5.0
    voxelwise: bool = False
    smoothing_fwhm: float | None = None
    n_perm: int = DEFAULT_PERMUTATIONS
    trv_percent: float | None = None
    cluster_p: float = CLUSTER_FORMING_P
    session_label: tuple[str, ...] = ()
    tracer_label: tuple[str, ...] = ()
    work_dir: Path | None = None
    threads: int = 1
    include_flagged: bool = False  # keep regional values whose fit_quality is not "ok"

    @classmethod
    def from_config(cls, config) -> GroupOptions:
        return cls(
            min_controls=int(getattr(config, "min_controls", 3)),
            active_k=float(getattr(config, "active_k", 2.0)),
            alpha=float(getattr(config, "group_alpha", 0.05)),
            min_group_size=int(getattr(config, "min_group_size", 3)),
            lesion_match_mm=float(getattr(config, "lesion_match_mm", 5.0)),
            voxelwise=bool(getattr(config, "group_voxelwise", False)),
            smoothing_fwhm=getattr(config, "group_smoothing_fwhm", None),
            n_perm=int(getattr(config, "group_permutations", None) or DEFAULT_PERMUTATIONS),
            trv_percent=getattr(config, "test_retest_percent", None),
            session_label=tuple(getattr(config, "session_label", ())),
            tracer_label=tuple(getattr(config, "tracer_label", ())),
            work_dir=getattr(config, "work_dir", None),
            threads=int(getattr(config, "omp_nthreads", 1)),
            include_flagged=bool(getattr(config, "group_include_flagged", False)),
        )


def _select(table: pd.DataFrame, options: GroupOptions) -> pd.DataFrame:
    if table.empty:
        return table
    if options.session_label:
        table = table[table["session"].isin(options.session_label)]
    if options.tracer_label:
        table = table[table["tracer"].isin(options.tracer_label)]
    return table


def _write_tsv(table: pd.DataFrame, path: Path) -> Path:
    write_text_atomic(path, table.to_csv(**TSV_FORMAT))
    return path


def first_runs(table: pd.DataFrame) -> pd.DataFrame:
    """First rec/run of every participant, session and tracer/model/ref."""
    if table.empty:
        return table
    runs = table[list(FIT_KEYS)].drop_duplicates().sort_values(["rec", "run"])
    return table.merge(runs.drop_duplicates(["participant_id", "session", "tracer", "model",
                                             "ref"]), on=list(FIT_KEYS))  # fmt: skip


def one_per_participant(table: pd.DataFrame) -> pd.DataFrame:
    """First session, then first rec/run, of every participant and tracer/model/ref."""
    base = baseline_rows(table)
    if base.empty:
        return base
    runs = base[list(FIT_KEYS)].drop_duplicates().sort_values(["rec", "run"])
    first = runs.drop_duplicates(["participant_id", "tracer", "model", "ref"])
    return base.merge(first, on=list(FIT_KEYS))


def statistics(long: pd.DataFrame, options: GroupOptions) -> pd.DataFrame:
    """Regional statistics of every tracer/model/ref on its primary measure."""
    base = one_per_participant(long)
    out = []
    for key, part in base.groupby(list(FAMILY), sort=True):
        measure = primary_measure(key[1])
        data = part[(part["measure"] == measure) & ~part["excluded"].astype(bool)]
        if not options.include_flagged and "fit_quality" in data.columns:
            flagged = is_flagged(data["fit_quality"])
            if flagged.any():
                LOGGER.info("group statistics %s: %d flagged regional value(s) left out "
                            "(--group-include-flagged keeps them)", "/".join(key), flagged.sum())  # fmt: skip
            data = data[~flagged]
        dropped = part.loc[part["excluded"].astype(bool), "participant_id"].unique()
        if len(dropped):
            LOGGER.info("group statistics %s: excluded %s", "/".join(key), ", ".join(dropped))
        table = family_statistics(
            data, adjust_genotype=genotype_sensitive(key[0]),
            min_group_size=options.min_group_size, alpha=options.alpha,
        )  # fmt: skip
        if not table.empty:
            out.append(table.assign(tracer=key[0], model=key[1], ref=key[2], measure=measure))
    if not out:
        return pd.DataFrame()
    table = pd.concat(out, ignore_index=True)
    first = [*FAMILY, "measure"]
    return table[first + [c for c in table.columns if c not in first]]


def _controls(table: pd.DataFrame) -> pd.DataFrame:
    return table[(table["group"] == "HC") & ~table["excluded"].astype(bool)]


def controls_parameters(
    coll: Collection, regional: pd.DataFrame, group_dir: Path, options: GroupOptions
) -> list[Path]:
    """SVCA classes per tracer and active thresholds per tracer/model/ref (or warnings)."""
    written = []
    hc = one_per_participant(_controls(regional))
    for tracer, part in hc.groupby("tracer"):
        items, seen = [], set()
        for row in part.itertuples():
            run = (row.participant_id, row.session, row.tracer, row.rec, row.run)
            if run in seen or run not in coll.tacs:
                continue
            seen.add(run)
            vols = part[(part["participant_id"] == row.participant_id)
                        & (part["model"] == row.model) & (part["ref"] == row.ref)]  # fmt: skip
            volumes = dict(zip(vols["region"], vols["volume_ml"].astype(float), strict=True))
            items.append(controls.ControlTACs(row.participant_id, coll.tacs[run], volumes))
        try:
            written.append(controls.write_classes(group_dir, tracer, items,
                                                  min_controls=options.min_controls))  # fmt: skip
        except controls.TooFewControls as exc:
            LOGGER.warning("tracer %s: %s", tracer, exc)
    for (tracer, model, ref), part in hc.groupby(list(FAMILY)):
        meas = "SUVR" if primary_measure(model) == "SUVR" else "DVR"  # SUVR: static runs
        items, genotypes = [], []
        cols = ["participant_id", "session", "rec", "run", "tspo_genotype"]
        for pid, ses, rec, run, geno in part[cols].drop_duplicates(cols[:4]).itertuples(
            index=False
        ):  # fmt: skip
            dvr = coll.maps.get((pid, ses, tracer, rec, run, model, ref, meas))
            anat = coll.anat_for(pid, ses)
            if dvr is not None and "tspoms_dseg" in anat:
                items.append((pid, dvr, anat["tspoms_dseg"], anat.get("tspoms_tsv")))
                genotypes.append(geno)
        if not items:
            continue
        name = f"tracer-{tracer}_model-{model}" + (f"_ref-{ref}" if ref else "")
        written += _write_thresholds(group_dir, name, items, genotypes,
                                     genotype_sensitive(tracer), options,
                                     {"tracer": tracer, "model": model, "ref": ref,
                                      "measure": meas})  # fmt: skip
    return written


def _write_thresholds(group_dir, name, items, genotypes, per_class, options, keys) -> list[Path]:
    """Pooled threshold (genotype-insensitive tracers) or one per binding class (HAB, MAB)."""
    kw = {"k": options.active_k, "min_controls": options.min_controls}
    try:
        if not per_class:
            result = controls.threshold_from_controls(items, **kw)
        else:
            result = controls.class_thresholds(items, genotypes, **kw)
    except controls.TooFewControls as exc:
        LOGGER.warning("%s: %s", name, exc)
        return []
    written = []
    for cls, part in (result.get("binding_classes") or {}).items():
        if "threshold_dvr" in part:
            path = group_dir / f"{name}_desc-activethreshold{cls}.json"
            write_text_atomic(path, json.dumps(part | keys, indent=2) + "\n")
            written.append(path)
        else:
            LOGGER.warning("%s, %s controls: %s", name, cls, part["reason"])
    path = group_dir / f"{name}_desc-activethreshold.json"
    write_text_atomic(path, json.dumps(result | keys, indent=2) + "\n")
    return [*written, path]


def monitoring_statistics(long: pd.DataFrame, arms: pd.DataFrame, options) -> pd.DataFrame:
    """Paired / mixed-model change tests of the primary measure (first rec/run per session)."""
    if long.empty:
        return pd.DataFrame(columns=list(monitoring.COLUMNS))
    runs = first_runs(long[~long["excluded"].astype(bool)])
    primary = runs["model"].map(primary_measure)
    return monitoring.change_statistics(runs[runs["measure"] == primary], arms,
                                        trv_percent=options.trv_percent,
                                        regions=STAT_REGIONS)  # fmt: skip


def individual_sdc(change: pd.DataFrame, arms: pd.DataFrame, options) -> pd.DataFrame:
    """Arm, the one-participant smallest detectable change and whether a change exceeds it."""
    change = change.merge(arms, on="participant_id", how="left")
    found = change["tracer"].map(lambda t: monitoring.test_retest(t, options.trv_percent))
    trv = found.str[0]
    change["sdc_source"] = found.str[1]
    sdc = trv.map(lambda v: monitoring.smallest_detectable_change(v) if v is not None else None)
    change["sdc_percent"] = pd.to_numeric(sdc, errors="coerce")
    change["beyond_sdc"] = np.where(change["sdc_percent"].notna(),
                                    change["percent_change"].abs() > change["sdc_percent"],
                                    None)  # fmt: skip
    return change


def analyse(
    coll: Collection,
    participants: dict[str, ParticipantInfo],
    group_dir: Path,
    options: GroupOptions,
    arms: pd.DataFrame | None = None,
) -> dict[str, pd.DataFrame]:
    """Run every group analysis on collected outputs; returns the tables it wrote.

    ``arms``: participant_id -> arm (:func:`monitoring.read_arms`), for treatment monitoring.
    """
    regional = attach_participants(_select(coll.regional, options), participants)
    phenos = attach_participants(_select(coll.phenotypes, options), participants)
    lesions = attach_participants(_select(coll.lesions, options), participants)
    long = long_table(regional)
    study = study_table(regional, phenos)
    _write_tsv(study, group_dir / "study_table.tsv")
    _write_tsv(long, group_dir / "study_table_long.tsv")
    if not lesions.empty:
        _write_tsv(lesions, group_dir / "lesions.tsv")
    stats = statistics(long, options)
    _write_tsv(stats, group_dir / "statistics.tsv")
    controls_parameters(coll, regional, group_dir, options)

    def morph_of(pid, ses):
        path = coll.anat_for(pid, ses).get("lesion_morph")
        return None if path is None else str(path)

    change = longitudinal.regional_change(long)
    lchange = longitudinal.lesion_change(lesions, morph_of, max_mm=options.lesion_match_mm)
    arms = pd.DataFrame(columns=["participant_id", "arm"]) if arms is None else arms
    mon = pd.concat([monitoring_statistics(long, arms, options),
                     monitoring.lesion_change_tests(lchange, arms)], ignore_index=True)  # fmt: skip
    if not mon.empty:
        _write_tsv(mon, group_dir / "longitudinal_statistics.tsv")
    if not change.empty:
        change = individual_sdc(change, arms, options)
        _write_tsv(change, group_dir / "longitudinal_regions.tsv")
    if not lchange.empty:
        _write_tsv(lchange, group_dir / "longitudinal_lesions.tsv")
    zmaps = []
    if options.voxelwise:
        runs = one_per_participant(long)
        zmaps = voxelmaps.run_voxelwise(coll, runs[~runs["excluded"].astype(bool)], group_dir,
                                        options)  # fmt: skip
    _report(group_dir, study, long, stats, zmaps, mon, options)
    n = study["participant_id"].nunique()
    LOGGER.info("group: study table of %d participant(s), %d test(s)", n, len(stats))
    return {"study": study, "long": long, "statistics": stats, "longitudinal": change,
            "lesion_change": lchange, "monitoring": mon}  # fmt: skip


def _report(group_dir, study, long, stats, zmaps, mon, options: GroupOptions) -> None:
    sections = [("Study table", report.study_tables(study))]
    base = one_per_participant(long)
    for key, part in base.groupby(list(FAMILY)):
        measure = primary_measure(key[1])
        data = part[part["measure"] == measure]
        title = " / ".join(k for k in key if k)
        sections.append((f"Regional {measure}: {title}",
                         report.strip_plot(data, title, measure)
                         + report.edss_plot(data, title, measure)))  # fmt: skip
    sections.append(("Lesion phenotypes per group", report.phenotype_plot(study) or "<p>none</p>"))
    note = report.statistics_note(base, stats, options.min_group_size)
    if not stats.empty:
        shown = stats.drop(columns=["spearman_rho", "spearman_p"], errors="ignore")
        sections.append(("Statistics", note + report.table_html(shown.sort_values("p"))))
    else:
        sections.append(("Statistics", note))
    if not mon.empty:
        shown = mon[mon["p"].notna()].drop(columns=["trv_source", "reason"])
        sections.append(("Treatment monitoring (percent change, 95 % CI)",
                         report.table_html(shown)))  # fmt: skip
    for z in zmaps:
        sections.append((z.name, report.map_plot(z, z.name)))
    report.write_report(group_dir / "report.html", sections)
