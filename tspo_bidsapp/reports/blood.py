"""The report's arterial-input section: blood samples, parent fraction, AIF, delay, V_T fits.

Built from a run's ``_inputfunction.tsv`` (its sidecar's ``Provenance`` names the raw blood
recordings and the models chosen) and its plasma-input ``_kinpar.tsv`` tables.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from tspo_bidsapp.blood import read_blood_recording, read_input_function  # noqa: E402
from tspo_bidsapp.blood.models import PARENT_FRACTION_MODELS  # noqa: E402
from tspo_bidsapp.blood.recordings import PARENT_FRACTION, PLASMA, WHOLE_BLOOD  # noqa: E402
from tspo_bidsapp.io import derivatives as D  # noqa: E402
from tspo_bidsapp.kinetics.plasma import PlasmaFrames  # noqa: E402
from tspo_bidsapp.kinetics.plasma_compartment import model_frames  # noqa: E402
from tspo_bidsapp.quant.tacs import read_tacs_tsv  # noqa: E402
from tspo_bidsapp.reports.collect import sidecar  # noqa: E402
from tspo_bidsapp.reports.figures import save_figure  # noqa: E402
from tspo_bidsapp.reports.sections import FigureMaker, Section, Table, fmt  # noqa: E402

PLASMA_ENTITIES = ("1TCM", "2TCM", "2TCM1K", "LoganPlasma", "MA1")  # model- labels
FIT_MODELS = ("1TCM", "2TCM")  # curves drawn over the TACs, the first one found
FIT_REGIONS = ("cortical-GM", "thalamus", "NAWM", "WM-lesions", "WB")


def _raw_samples(provenance: dict) -> list:
    """The raw blood recordings named in the provenance, in the input's units (skip missing)."""
    units = provenance.get("Units")
    out = []
    for path in provenance.get("Sources", []):
        if Path(path).is_file():
            out.append(read_blood_recording(path, pet_units=units))
    return out


def plot_blood(
    inputfunction_tsv: Path, out: Path, *, tacs_tsv: Path | None = None, kinpar: Path | None = None
) -> None:
    """Three panels: blood samples with whole blood and AIF; parent fraction samples and model;
    regional TACs with the compartment-model curves (``kinpar``, its delay) over them."""
    meta = sidecar(inputfunction_tsv)
    provenance = meta.get("Provenance", {})
    inp = read_input_function(inputfunction_tsv)
    fig, (ax_b, ax_f, ax_t) = plt.subplots(1, 3, figsize=(13, 3.8))
    for rec in _raw_samples(provenance):
        for name, marker in ((WHOLE_BLOOD, "."), (PLASMA, "x")):
            samples = rec.column(name)
            if samples is not None:
                ax_b.plot(
                    *samples,
                    marker,
                    ms=3,
                    alpha=0.6,
                    label=f"{rec.label} {name.replace('_radioactivity', '')}",
                )
        pf = rec.column(PARENT_FRACTION)
        if pf is not None:
            ax_f.plot(*pf, "o", ms=4, label=f"{rec.label} samples")
    if inp.whole_blood is not None:
        ax_b.plot(inp.time_min, inp.whole_blood, "-", color="0.4", lw=1, label="whole blood")
    ax_b.plot(inp.time_min, inp.aif, "-", color="C3", lw=1.2, label="AIF (parent plasma)")
    ax_b.set_yscale("symlog", linthresh=max(float(np.max(inp.aif)) * 1e-2, 1e-6))
    units = next((v.get("Units") for v in meta.values() if isinstance(v, dict) and "Units" in v
                  and v.get("Units") != "s"), "kBq/mL")  # fmt: skip
    ax_b.set(xlabel="time (min)", ylabel=f"activity ({units})", title="Blood")
    ax_b.legend(frameon=False, fontsize=6)
    fraction = provenance.get("ParentFraction", {})
    model = PARENT_FRACTION_MODELS.get(fraction.get("Model"))
    if model is not None:
        t = np.linspace(0.0, float(inp.time_min[-1]), 400)
        params = np.array([fraction["Parameters"][n] for n in model.param_names])
        ax_f.plot(t, model.func(t, params), "-", color="C3", label=f"{model.name} fit")
    ax_f.set(xlabel="time (min)", ylabel="parent fraction", ylim=(0, 1.05),
             title=f"Parent fraction ({fraction.get('Model', 'supplied input')})")  # fmt: skip
    ax_f.legend(frameon=False, fontsize=7)
    if tacs_tsv is not None and kinpar is not None:
        timing, tacs = read_tacs_tsv(tacs_tsv)
        table = pd.read_csv(kinpar, sep="\t", na_values=["n/a"]).set_index("region")
        delay = float(table["delay_min"].dropna().iloc[0]) if "delay_min" in table else 0.0
        pf = PlasmaFrames(inp, timing.start_min, timing.end_min, delay_min=delay)
        for i, name in enumerate(r for r in FIT_REGIONS if r in tacs and r in table.index):
            row = table.loc[name]
            params = {k: float(row[k]) for k in ("K1", "k2", "k3", "k4", "vB", "Kb")
                      if k in row.index and np.isfinite(row[k])}  # fmt: skip
            ax_t.plot(timing.mid_min, tacs[name], "o", color=f"C{i}", ms=3, label=name)
            if {"K1", "k2", "vB"} <= set(params):
                ax_t.plot(timing.mid_min, model_frames(pf, params), "-", color=f"C{i}", lw=1)
        ax_t.set(title=f"TACs and {kinpar.name.split('_model-')[1].split('_')[0]} fits "
                 f"(delay {60 * delay:.1f} s)")  # fmt: skip
        ax_t.legend(frameon=False, fontsize=7)
    ax_t.set(xlabel="time (min)", ylabel="activity")
    fig.tight_layout()
    save_figure(fig, out)


def _vt_table(run, tables: dict[str, Path]) -> Table | None:
    columns = {m: pd.read_csv(p, sep="\t", na_values=["n/a"]).set_index("region")["VT"]
               for m, p in tables.items()}  # fmt: skip
    if not columns:
        return None
    frame = pd.DataFrame(columns)
    rows = [[region, *(fmt(v) for v in values)] for region, values in frame.iterrows()]
    return Table(f"{run.prefix}: V_T (mL/cm3) per plasma-input model", ["region", *frame], rows)


def blood_section(sec: Section, runs, fig: FigureMaker) -> None:
    """Per run with an arterial input: how it was made, the figure, the delay and V_T table."""
    for run in runs:
        inp = run.first("inputfunction.tsv")
        if inp is None:
            continue
        provenance = sidecar(inp).get("Provenance", {})
        sec.items.append((f"{run.prefix} input", provenance.get("Type", "supplied")))
        fraction = provenance.get("ParentFraction")
        if fraction:
            sec.items.append((f"{run.prefix} parent-fraction model",
                              f"{fraction.get('Model')} ({fraction.get('ChosenBy', 'user')})"))  # fmt: skip
        tables = {}
        for entity in PLASMA_ENTITIES:
            found = [p for p in run.find(f"model-{entity}_*kinpar.tsv") if "_desc-" not in p.name]
            if found:
                tables[entity] = found[0]
        kinpar = next((tables[m] for m in FIT_MODELS if m in tables), None)
        if kinpar is not None:
            meta = sidecar(kinpar)
            if "delay_min" in meta:
                sec.items.append((f"{run.prefix} blood-tissue delay",
                                  f"{60 * meta['delay_min']:.1f} s ({meta.get('delay_source')}"
                                  f"{', ' + meta['delay_region'] if 'delay_region' in meta else ''})"))  # fmt: skip
        desc = "gtm" if kinpar is not None and D.is_pvc_gtm(sidecar(kinpar)) else "preproc"
        fig(sec, f"{run.prefix}_desc-blood_pet.svg",
            f"{run.prefix}: blood samples, whole blood and AIF; parent fraction; regional TACs "
            "with the compartment-model fits.", plot_blood, inp,
            tacs_tsv=run.first(f"seg-tspoms_desc-{desc}_tacs.tsv"), kinpar=kinpar)  # fmt: skip
        table = _vt_table(run, tables)
        if table is not None:
            sec.tables.append(table)
