"""The report's sections: what each shows, built from one participant's derivative files.

Every figure is made by a guarded call: a figure that fails is reported in its section (with
the error) and the rest of the report is still written. A section whose inputs are absent says
"not run", or "failed: <error>" when a crash file of its stage exists.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tspo_bidsapp.anat.labels import TSPOMS_LABELS, read_dseg_tsv
from tspo_bidsapp.io import derivatives as D
from tspo_bidsapp.quant.quality import is_flagged
from tspo_bidsapp.reports import figures as F
from tspo_bidsapp.reports import mosaics as M
from tspo_bidsapp.reports.collect import Crash, PetRunFiles, sidecar

LOGGER = logging.getLogger("tspo_bidsapp.reports")
PHENOTYPE_ORDER = ("rim-active", "overall-active", "inactive", "unclassified")


@dataclass
class Table:
    caption: str
    columns: list[str]
    rows: list[list[str]]
    flagged: list[bool] = field(default_factory=list)  # rows to highlight


@dataclass
class Section:
    """One report section: its state, figures (paths relative to OUTPUT_DIR) and tables."""

    key: str
    title: str
    status: str = "not run"  # "ok", "not run" or "failed"
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)  # (src, caption)
    tables: list[Table] = field(default_factory=list)
    items: list[tuple[str, str]] = field(default_factory=list)  # (label, value) pairs

    def add_crashes(self, crashes: list[Crash]) -> None:
        for crash in crashes:
            self.errors.append(f"{crash.node}: {crash.error} (crash file: {crash.path.name})")

    def finish(self) -> None:
        if self.errors:
            self.status = "failed"
        elif self.figures or self.tables or self.items:
            self.status = "ok"


class FigureMaker:
    """Guarded figure calls writing to ``OUTPUT_DIR/sub-<p>/figures``."""

    def __init__(self, output_dir: Path, subject: str):
        self.output_dir = output_dir
        self.folder = output_dir / f"sub-{subject}" / "figures"

    def __call__(self, section: Section, name: str, caption: str, func: Callable, *args, **kw):
        """Run ``func(*args, out_path, **kw)``; record the figure or the error in ``section``."""
        out = self.folder / name
        try:
            result = func(*args, out, **kw)
        except Exception as exc:  # a figure must never stop the report
            LOGGER.warning("report figure %s failed: %s", name, exc)
            section.errors.append(f"figure {name} failed: {type(exc).__name__}: {exc}")
            return None
        if out.exists() and out.stat().st_size > 0:
            section.figures.append((str(out.relative_to(self.output_dir)), caption))
        return result


def fmt(value, digits: int = 3) -> str:
    """A table cell: numbers to ``digits`` significant digits, n/a for missing."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return f"{float(value):.{digits}g}"
    return str(value)


def table_from_frame(caption: str, frame: pd.DataFrame, columns: list[str], flag_col=None):
    cols = [c for c in columns if c in frame.columns]
    rows = [[fmt(v) for v in row] for row in frame[cols].itertuples(index=False)]
    flagged = [bool(v) for v in frame[flag_col]] if flag_col in frame.columns else []
    return Table(caption, cols, rows, flagged)


def motion_section(
    sec: Section, runs: list[PetRunFiles], fig: FigureMaker, fd_threshold_mm: float
) -> dict:
    """Per-run motion plot and petref mosaic; returns ``{run: (flagged frames, threshold)}``.

    The threshold is the one the run recorded in its confounds sidecar, else
    ``fd_threshold_mm`` (the run's configuration)."""
    flagged = {}
    for run in runs:
        confounds = run.first(D.CONFOUNDS.tail())
        if confounds is not None:
            recorded = D.fd_threshold(sidecar(confounds))
            threshold = fd_threshold_mm if recorded is None else recorded
            info = fig(sec, f"{run.prefix}_desc-motion_pet.svg",
                       f"{run.prefix}: translations, rotations and framewise displacement "
                       f"(flagged: FD > {threshold:g} mm).", F.plot_motion, confounds,
                       threshold_mm=threshold)  # fmt: skip
            if info:
                flagged[run.prefix] = (info["flagged"], threshold)
                frames = ", ".join(str(i + 1) for i in info["flagged"]) or "none"
                sec.items += [
                    (f"{run.prefix} frames", str(info["n_frames"])),
                    (f"{run.prefix} max FD", f"{info['max_fd_mm']:.2f} mm"),
                    (f"{run.prefix} max translation / rotation",
                     f"{info['max_trans_mm']:.2f} mm / {info['max_rot_deg']:.2f}°"),
                    (f"{run.prefix} flagged frames (FD > {threshold:g} mm)", frames),
                ]  # fmt: skip
        petref = run.first(D.PETREF.tail())
        if petref is not None:
            fig(sec, f"{run.prefix}_desc-petref_pet.png",
                f"{run.prefix}: motion-corrected PET reference (mean of realigned frames).",
                M.mosaic, petref)  # fmt: skip
    return flagged


def coreg_section(sec: Section, runs, fig: FigureMaker, t1w, brain_mask) -> None:
    for run in runs:
        pet_t1 = run.first(D.PETREF_T1W.tail())
        if pet_t1 is None or t1w is None:
            continue
        img = M._mean_3d(pet_t1)
        top = M._robust_vmax(img)
        fig(sec, f"{run.prefix}_space-T1w_desc-coreg_pet.png",
            f"{run.prefix}: PET reference contours (30 % and 60 % of its maximum) over the T1w.",
            M.mosaic, t1w, contours=((pet_t1, "orange"),),
            contour_levels={pet_t1: [0.3 * top, 0.6 * top]})  # fmt: skip
        contours = ((brain_mask, "cyan"),) if brain_mask is not None else ()
        fig(sec, f"{run.prefix}_space-T1w_desc-coregmask_pet.png",
            f"{run.prefix}: the inverse view: T1w brain-mask outline over the PET reference.",
            M.mosaic, pet_t1, contours=contours)  # fmt: skip


def anatomy_section(sec: Section, fig: FigureMaker, subject: str, files: dict) -> dict:
    """Segmentation, lesions and TSPO-MS regions; returns region volumes (mL)."""
    t1w, flair = files.get("t1w"), files.get("flair")
    lesion = files.get("lesion_mask")
    contours = ((lesion, "red"),) if lesion is not None else ()
    if t1w is not None and files.get("dseg") is not None:
        fig(sec, f"sub-{subject}_desc-seg_T1w.png",
            "Whole-brain segmentation over the T1w; lesions outlined in red.",
            M.mosaic, t1w, label_overlay=files["dseg"], contours=contours)  # fmt: skip
    if flair is not None and lesion is not None:
        fig(
            sec,
            f"sub-{subject}_desc-lesions_FLAIR.png",
            "Lesion mask (red outline) over the FLAIR.",
            M.mosaic,
            flair,
            contours=contours,
        )
    if t1w is not None and files.get("tspoms") is not None:
        fig(sec, f"sub-{subject}_seg-tspoms_dseg.png",
            "TSPO-MS regions over the T1w (legend: index and name from the dseg.tsv); lesions "
            "outlined in red.", M.mosaic, t1w, label_overlay=files["tspoms"],
            label_names=_region_names(files["tspoms"]), contours=contours)  # fmt: skip
    volumes = {}
    if files.get("morph") is not None:
        volumes = fig(sec, f"sub-{subject}_seg-tspoms_desc-volumes_dseg.svg",
                      "Volumes of the TSPO-MS regions.", F.plot_region_volumes,
                      files["morph"]) or {}  # fmt: skip
        if volumes:
            frame = pd.DataFrame({"region": list(volumes), "volume_ml": list(volumes.values())})
            sec.tables.append(table_from_frame("Region volumes (mL)", frame,
                                               ["region", "volume_ml"]))  # fmt: skip
    return volumes


def _region_names(dseg: Path) -> dict[int, str]:
    """Index -> name of a ``seg-tspoms`` dseg, from its ``dseg.tsv`` (the TSPO-MS table if absent)."""
    tsv = dseg.with_name(dseg.name.replace(".nii.gz", ".tsv"))
    try:
        return read_dseg_tsv(tsv)
    except (OSError, ValueError):
        return dict(TSPOMS_LABELS)


def _ref_name(path: Path) -> str:
    match = re.search(r"_ref-([a-zA-Z0-9]+)_", path.name)
    return match.group(1) if match else "unknown"


def reference_section(sec: Section, runs, fig: FigureMaker, t1w, volumes) -> list[str]:
    refs = []
    for run in runs:
        regions = run.first(D.REGION_TACS.tail())
        pet_t1 = run.first(D.PETREF_T1W.tail())
        for ref_tsv in run.find(D.REF_TACS.tail()):
            ref = _ref_name(ref_tsv)
            refs.append(ref)
            mask = run.first(D.REF_MASK.tail(ref=ref))
            background = t1w or pet_t1
            if mask is not None and background is not None:
                # the outline alone: a PET colour overlay hid the anatomy under it
                fig(sec, f"{run.prefix}_ref-{ref}_desc-mask_pet.png",
                    f"{run.prefix}: reference region '{ref}' (cyan outline) over the "
                    f"{'T1w' if t1w is not None else 'PET reference'}; the PET is shown over "
                    "the T1w under Co-registration.", M.mosaic, background,
                    contours=((mask, "cyan"),))  # fmt: skip
            info = fig(sec, f"{run.prefix}_ref-{ref}_desc-tacs_pet.svg",
                       f"{run.prefix}: reference TAC '{ref}' with the whole-brain and a "
                       "high-binding TAC.", F.plot_reference_tacs, ref_tsv, regions,
                       volumes=volumes, ref_label=ref)  # fmt: skip
            if info and "late_ratio" in info:
                sec.items.append((f"{run.prefix} {info['high_binding']}/reference (late frames)",
                                  f"{info['late_ratio']:.3f}"))  # fmt: skip
            if ref == "svca":
                for classes in run.find("ref-svca_*classes*.tsv"):
                    fig(sec, f"{run.prefix}_ref-svca_desc-classes_pet.svg",
                        "SVCA kinetic classes.", F.plot_class_curves, classes)  # fmt: skip
                gm = next(iter(run.find("ref-svca_*gm*.nii.gz")), None)
                if gm is not None and background is not None:
                    fig(sec, f"{run.prefix}_ref-svca_desc-gmfraction_pet.png",
                        "SVCA grey-matter class fraction.", M.mosaic, background, overlay=gm,
                        overlay_cmap="viridis", overlay_range=(0.0, 1.0), colorbar=True)  # fmt: skip
    return refs


def _edge_fraction(meta: dict) -> float | None:
    """Fraction of fitted voxels at the edge of the basis-function grid, from a map sidecar."""
    for key in ("EdgeFraction", "FractionAtBounds"):
        if isinstance(meta.get(key), int | float):
            return float(meta[key])
    stack = [meta]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("n_edge"), int | float) and item.get("n_voxels"):
                return float(item["n_edge"]) / float(item["n_voxels"])
            stack.extend(item.values())
    return None


#: Display range of each parametric map in the report (unitless measures).
MAP_RANGES = {"BPND": (0.0, 1.0), "DVR": (0.8, 2.0), "R1": (0.5, 1.5), "SUVR": (0.8, 2.0)}
#: How the report words the partial-volume correction a derivative's sidecar records.
PVC_WORDS = {"none": "not partial-volume corrected", "gtm": "GTM-corrected (regional)",
             "rbv": "RBV-corrected (voxel-wise)", "iy": "iterative-Yang-corrected (voxel-wise)"}  # fmt: skip


def correction_text(meta) -> str:
    """The correction of a derivative (:func:`~tspo_bidsapp.io.derivatives.pvc_method`), in words."""
    method = D.pvc_method(meta)
    return "correction not recorded" if method is None else PVC_WORDS.get(method, method)


def rule_text(meta) -> str:
    """A lesion table's sidecar ``PhenotypeRule``: rule, threshold (its controls' class), the
    values (DVR map, or per-lesion corrected regional TACs) and their correction."""
    rule = meta.get(D.PHENOTYPE_RULE_KEY)
    if not rule:
        return "not recorded"
    if rule.get("method") == "lesion":
        what = (f"lesion rule (core/rim vs own {'-'.join(f'{x:g}' for x in rule['shell_mm'])} mm "
                f"shell, > {rule['rim_excess']:.0%})")  # fmt: skip
    else:
        cls = rule.get("threshold_class")
        source = f"{cls} controls" if cls else rule.get("threshold_source", "user")
        what = f"voxel rule (DVR > {rule['threshold_dvr']:.3g}, {source})"
    if rule.get("values") == "regional":
        model = (meta.get("LesionValues") or {}).get("Model")
        fit = f" ({model} DVR)" if model else ""
        return f"{what}; per-lesion core and rim TACs{fit}, {correction_text(meta)}"
    return f"{what}; DVR map {correction_text(meta)}"


def kinetics_section(sec: Section, runs, fig: FigureMaker, t1w, lesion_mask=None) -> list[str]:
    models = []
    for run in runs:
        regions = run.first(D.REGION_TACS.tail())
        for kinpar in run.find(D.KINPAR.tail()):
            if "_desc-" in kinpar.name:
                continue
            model = re.search(r"_model-([a-zA-Z0-9]+)_", kinpar.name).group(1)
            ref = _ref_name(kinpar)
            models.append(model)
            tag = f"model-{model}_ref-{ref}"
            # the fits were made on the partial-volume-corrected TACs when GTM was used
            gtm = D.is_pvc_gtm(sidecar(kinpar))
            pvc = correction_text(sidecar(kinpar))
            sec.items.append((f"{run.prefix} {tag} regional fits", pvc))
            regions = run.first((D.REGION_TACS_GTM if gtm else D.REGION_TACS).tail()) or regions
            ref_tsv = run.first((D.REF_TACS_GTM if gtm else D.REF_TACS).tail(ref=ref))
            if regions is not None and ref_tsv is not None:
                res = fig(sec, f"{run.prefix}_{tag}_desc-fits_pet.svg",
                          f"{run.prefix}: key regional TACs, {model} fits and residuals "
                          f"(reference '{ref}').", F.plot_kinetic_fits, regions, ref_tsv, kinpar,
                          model=model)  # fmt: skip
                if res:
                    worst = max(res, key=res.get)
                    sec.items.append((f"{run.prefix} {tag} largest relative RMS residual",
                                      f"{res[worst]:.3%} ({worst})"))  # fmt: skip
            table = pd.read_csv(kinpar, sep="\t", na_values=["n/a"])
            table["_flag"] = table.get("edge", False)
            if "fit_quality" in table.columns:
                table["_flag"] = is_flagged(table["fit_quality"])
                bad = table.loc[table["_flag"], "region"].tolist()
                sec.items.append((f"{run.prefix} {tag} flagged fits",
                                  f"{len(bad)} of {len(table)}" + (f": {', '.join(bad)}"
                                                                   if bad else "")))  # fmt: skip
            sec.tables.append(table_from_frame(
                f"{run.prefix}: {model} regional values (reference '{ref}'; highlighted rows: "
                "fit_quality not ok, left out of group statistics)", table,
                ["region", "volume_ml", "BPND", "DVR", "R1", "k2", "k2prime", "SUVR",
                 "fit_quality"], flag_col="_flag"))  # fmt: skip
            edge_shown = False
            for meas, (lo, hi) in MAP_RANGES.items():
                maps = run.find(D.MIMAP.tail(space="T1w", model=model, ref=ref, meas=meas))
                maps = maps or run.find(D.MIMAP.tail(model=model, ref=ref, meas=meas))
                if not maps:
                    continue
                path = maps[0]
                pvc = correction_text(sidecar(path))
                edge = _edge_fraction(sidecar(path))
                if edge is not None and not edge_shown:
                    edge_shown = True
                    sec.items.append((f"{run.prefix} {tag} voxels at grid edges", f"{edge:.2%}"))
                in_t1 = "_space-T1w_" in path.name and t1w is not None
                background = t1w if in_t1 else run.first(D.PETREF.tail())
                outline = ((lesion_mask, "cyan"),) if in_t1 and lesion_mask is not None else ()
                if background is not None:
                    fig(sec, f"{run.prefix}_{tag}_meas-{meas}_pet.png",
                        f"{run.prefix}: {model} {meas} map ({pvc}; colour {lo:g}-{hi:g})"
                        + ("; lesions outlined in cyan." if outline else "."), M.mosaic,
                        background, overlay=path, overlay_range=(lo, hi), threshold=1e-3,
                        colorbar=True, colorbar_label=meas, contours=outline)  # fmt: skip
    return models


def lesions_section(sec: Section, runs, fig: FigureMaker, t1w, lesion_dseg) -> bool:
    found = False
    for run in runs:
        for path in run.find(D.LESION_KINPAR.tail()):
            found = True
            table = pd.read_csv(path, sep="\t", na_values=["n/a"])
            tag = re.search(r"_(model-[a-zA-Z0-9]+_ref-[a-zA-Z0-9]+)_", path.name).group(1)
            if table.empty:
                sec.notes.append(f"{run.prefix} ({tag}): no lesions (none segmented or "
                                 "supplied for this participant).")  # fmt: skip
                sec.items.append((f"{run.prefix} lesions", "none"))
                continue
            sec.tables.append(table_from_frame(
                f"{run.prefix}: lesions ({tag})", table,
                ["lesion_id", "volume_ml", "core_DVR", "rim_DVR", "core_active_fraction",
                 "rim_active_fraction", "phenotype"]))  # fmt: skip
            sec.items.append((f"{run.prefix} ({tag}) phenotype rule", rule_text(sidecar(path))))
            counts = table["phenotype"].value_counts().to_dict()
            sec.items.append((f"{run.prefix} phenotypes",
                              ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))))  # fmt: skip
            if t1w is None or lesion_dseg is None:
                continue
            chosen = {}
            for phenotype in PHENOTYPE_ORDER:
                rows = table[table["phenotype"] == phenotype]
                rows = rows.sort_values("volume_ml", ascending=False)
                chosen[phenotype] = [int(i) for i in rows["lesion_id"].head(3)]
            model, ref = re.search(r"model-([a-zA-Z0-9]+)_ref-([a-zA-Z0-9]+)", tag).groups()
            dvr = run.first(D.MIMAP.tail(space="T1w", model=model, ref=ref, meas="DVR")) or (
                run.first(D.MIMAP.tail(space="T1w", ref=ref, meas="DVR"))  # regional values
            )
            fig(sec, f"{run.prefix}_{tag}_desc-lesions_pet.png",
                f"{run.prefix}: the largest lesions of each phenotype (axial, T1w; DVR in "
                "colour; lesion outlined in cyan).", M.lesion_montage, t1w, lesion_dseg, dvr,
                chosen)  # fmt: skip
    return found
