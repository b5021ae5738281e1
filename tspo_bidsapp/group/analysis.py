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

import nibabel as nib
import pandas as pd

from tspo_bidsapp.config import write_text_atomic
from tspo_bidsapp.group import controls, longitudinal, report, voxelwise
from tspo_bidsapp.group.collect import FIT_KEYS, Collection
from tspo_bidsapp.group.stats import CONTRASTS, family_statistics
from tspo_bidsapp.group.tables import (
    attach_participants,
    baseline_rows,
    genotype_sensitive,
    long_table,
    primary_measure,
    study_table,
)
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
    write_text_atomic(path, table.to_csv(sep="\t", index=False, na_rep="n/a",
                                         float_format="%.6g"))  # fmt: skip
    return path


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
        items = []
        for pid, ses, rec, run in part[["participant_id", "session", "rec", "run"]].drop_duplicates(
        ).itertuples(index=False):  # fmt: skip
            dvr = coll.maps.get((pid, ses, tracer, rec, run, model, ref, "DVR"))
            anat = coll.anat_for(pid, ses)
            if dvr is not None and "tspoms_dseg" in anat:
                items.append((pid, dvr, anat["tspoms_dseg"], anat.get("tspoms_tsv")))
        if not items:
            continue
        name = f"tracer-{tracer}_model-{model}" + (f"_ref-{ref}" if ref else "")
        try:
            result = controls.threshold_from_controls(
                items, k=options.active_k, min_controls=options.min_controls
            )
        except controls.TooFewControls as exc:
            LOGGER.warning("%s: %s", name, exc)
            continue
        result |= {"tracer": tracer, "model": model, "ref": ref}
        path = group_dir / f"{name}_desc-activethreshold.json"
        write_text_atomic(path, json.dumps(result, indent=2) + "\n")
        written.append(path)
    return written


def run_voxelwise(coll: Collection, long: pd.DataFrame, group_dir: Path, options: GroupOptions):
    """Warp first-session maps to MNI152 and fit the second-level models; returns z-maps."""
    template, mask = voxelwise.mni_template()
    cache = Path(options.work_dir or group_dir.parent.parent / "work") / "group_mni"
    out_dir = group_dir / "voxelwise"
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = one_per_participant(long)
    runs = runs[~runs["excluded"].astype(bool)].drop_duplicates(list(FIT_KEYS))
    zmaps = []
    for (tracer, model, ref), part in runs.groupby(list(FAMILY)):
        for meas in ("DVR", "BPND"):
            images, rows = [], []
            for row in part.itertuples():
                key = (row.participant_id, row.session, tracer, row.rec, row.run, model, ref, meas)
                anat = coll.anat_for(row.participant_id, row.session)
                if key not in coll.maps or "t1w" not in anat:
                    continue
                fwd = voxelwise.register_to_template(anat["t1w"], anat.get("brain_mask"),
                                                     template, cache, threads=options.threads)  # fmt: skip
                images.append(voxelwise.warp_to_template(coll.maps[key], fwd, template))
                rows.append(row)
            if len(images) < 3:
                continue
            info = pd.DataFrame([r._asdict() for r in rows]).reset_index(drop=True)
            stem = (
                f"tracer-{tracer}_model-{model}" + (f"_ref-{ref}" if ref else "") + f"_meas-{meas}"
            )
            zmaps += _voxelwise_models(images, info, out_dir, stem, genotype_sensitive(tracer),
                                       options)  # fmt: skip
    return zmaps


def _voxelwise_models(images, info, out_dir, stem, adjust_genotype, options) -> list[Path]:
    out = []
    counts = info["group"].value_counts()
    keep = info["group"].map(counts) >= options.min_group_size
    sel = [img for img, k in zip(images, keep, strict=True) if k]
    design = voxelwise.group_design(info[keep].reset_index(drop=True),
                                    adjust_genotype=adjust_genotype)  # fmt: skip
    for a, b in CONTRASTS:
        if a in design.columns and b in design.columns:
            vec = voxelwise.contrast_vector(design, a, b)
            out += _save_maps(sel, design, vec, out_dir, f"{stem}_contrast-{b}minus{a}", options)
    pts = info[(info["group"] != "HC") & info["edss"].notna()].index
    if len(pts) >= 5 and info.loc[pts, "edss"].nunique() >= 3:
        design = voxelwise.edss_design(info.loc[pts].reset_index(drop=True))
        vec = (design.columns == "edss").astype(float)
        out += _save_maps([images[i] for i in pts], design, vec, out_dir, f"{stem}_contrast-EDSS",
                          options)  # fmt: skip
    return out


def _save_maps(images, design, vec, out_dir, stem, options) -> list[Path]:
    _, mask = voxelwise.mni_template()
    z, thr, level = voxelwise.second_level(images, design, vec, mask, alpha=options.alpha)
    zfile = out_dir / f"{stem}_stat-z_statmap.nii.gz"
    nib.save(z, str(zfile))
    nib.save(thr, str(out_dir / f"{stem}_stat-z_desc-fdr_statmap.nii.gz"))
    meta = {"design_columns": list(design.columns), "contrast": list(map(float, vec)),
            "n": len(images), "threshold": "voxel-wise FDR (Benjamini-Hochberg), two-sided",
            "alpha": options.alpha, "z_threshold": level}  # fmt: skip
    write_text_atomic(zfile.with_name(zfile.name.replace(".nii.gz", ".json")),
                      json.dumps(meta, indent=2) + "\n")  # fmt: skip
    return [zfile]


def analyse(
    coll: Collection,
    participants: dict[str, ParticipantInfo],
    group_dir: Path,
    options: GroupOptions,
) -> dict[str, pd.DataFrame]:
    """Run every group analysis on collected outputs; returns the tables it wrote."""
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
    if not change.empty:
        _write_tsv(change, group_dir / "longitudinal_regions.tsv")
    if not lchange.empty:
        _write_tsv(lchange, group_dir / "longitudinal_lesions.tsv")
    zmaps = run_voxelwise(coll, long, group_dir, options) if options.voxelwise else []
    _report(group_dir, study, long, stats, zmaps, options)
    n = study["participant_id"].nunique()
    LOGGER.info("group: study table of %d participant(s), %d test(s)", n, len(stats))
    return {"study": study, "long": long, "statistics": stats, "longitudinal": change,
            "lesion_change": lchange}  # fmt: skip


def _report(group_dir, study, long, stats, zmaps, options: GroupOptions) -> None:
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
    for z in zmaps:
        sections.append((z.name, report.map_plot(z, z.name)))
    report.write_report(group_dir / "report.html", sections)
