"""Synthetic BIDS blood recordings (manual + autosampler) from a known arterial input.

Truth (t in minutes after injection, activity in kBq/mL, decay-corrected):

- whole blood: Feng et al. 1993 (Int J Biomed Comput 32:95) three-exponential bolus, arriving
  ``delay_min`` after injection;
- plasma-over-blood ratio r(t) = a + b (1 - exp(-c t)) (the ``rise`` ratio model);
- parent fraction f(t) = 1 - (1 - a) t^b / (c^b + t^b) (the ``hill`` model);
- AIF = whole blood x r x f.

The autosampler curve is the true whole blood dispersed by a mono-exponential kernel
(``DispersionConstant``, Iida et al. 1986) and written with ``DispersionCorrected: false``;
manual samples carry whole blood, plasma and parent fraction. Times are written in seconds
relative to ``TimeZero`` (injection at ``injection_offset_s``), activities in ``units``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from tspo_bidsapp.blood.units import bq_per_ml
from tspo_bidsapp.io.derivatives import TSV_FORMAT

# Manual sample times (s after injection) of a typical 90-min [11C]PBR28 protocol.
MANUAL_TIMES_S = (60, 120, 180, 240, 300, 420, 600, 900, 1200, 1800, 2400, 3000, 3600, 4200,
                  4800, 5400)  # fmt: skip
AUTOSAMPLER_END_S = 600.0  # continuous sampling over the first 10 min, 1 sample per second
DISPERSION_TAU_S = 2.5  # catheter dispersion constant (seconds)
WITHDRAWAL_RATE_ML_MIN = 5.0
_FINE_STEP_S = 0.01  # grid on which the dispersion kernel is applied


@dataclass(frozen=True)
class BloodTruth:
    """Known blood curves; parameters are per minute, activities kBq/mL."""

    delay_min: float = 0.3
    feng: tuple[float, ...] = (1500.0, -5.0, 8.0, -0.35, 3.0, -0.006)  # A1 l1 A2 l2 A3 l3
    ratio: tuple[float, float, float] = (1.05, 0.45, 0.05)  # a b c of r(t)
    parent: tuple[float, float, float] = (0.06, 1.8, 9.0)  # a b c of the Hill f(t)

    def scaled(self, factor: float) -> BloodTruth:
        """The same curves with every activity multiplied by ``factor`` (injected dose)."""
        a1, l1, a2, l2, a3, l3 = self.feng
        return replace(self, feng=(a1 * factor, l1, a2 * factor, l2, a3 * factor, l3))

    def whole_blood(self, t_min) -> np.ndarray:
        a1, l1, a2, l2, a3, l3 = self.feng
        s = np.maximum(np.asarray(t_min, float) - self.delay_min, 0.0)
        value = (a1 * s - a2 - a3) * np.exp(l1 * s) + a2 * np.exp(l2 * s) + a3 * np.exp(l3 * s)
        return np.where(np.asarray(t_min, float) > self.delay_min, value, 0.0)

    def plasma_to_blood(self, t_min) -> np.ndarray:
        a, b, c = self.ratio
        return a + b * (1.0 - np.exp(-c * np.maximum(np.asarray(t_min, float), 0.0)))

    def parent_fraction(self, t_min) -> np.ndarray:
        a, b, c = self.parent
        tb = np.power(np.maximum(np.asarray(t_min, float), 0.0), b)
        return 1.0 - (1.0 - a) * tb / (c**b + tb)

    def plasma(self, t_min) -> np.ndarray:
        return self.whole_blood(t_min) * self.plasma_to_blood(t_min)

    def aif(self, t_min) -> np.ndarray:
        return self.plasma(t_min) * self.parent_fraction(t_min)


def dispersed_whole_blood(truth: BloodTruth, time_s: np.ndarray, tau_s: float) -> np.ndarray:
    """Whole blood as a catheter with dispersion constant ``tau_s`` delivers it (at ``time_s``)."""
    fine = np.arange(0.0, float(np.max(time_s)) + _FINE_STEP_S, _FINE_STEP_S)
    true = truth.whole_blood(fine / 60.0)
    if tau_s <= 0:
        return np.interp(time_s, fine, true)
    decay = np.exp(-_FINE_STEP_S / tau_s)
    return np.interp(time_s, fine, lfilter([1.0 - decay], [1.0, -decay], true))


def _write(tsv: Path, table: pd.DataFrame, sidecar: dict) -> Path:
    table.to_csv(tsv, **TSV_FORMAT)
    tsv.with_name(tsv.name[: -len(".tsv")] + ".json").write_text(json.dumps(sidecar, indent=2))
    return tsv


def write_blood_recordings(
    pet_dir: str | Path,
    prefix: str,
    truth: BloodTruth | None = None,
    *,
    units: str = "kBq/mL",
    injection_offset_s: float = 0.0,
    manual_times_s: tuple[float, ...] = MANUAL_TIMES_S,
    autosampler_end_s: float = AUTOSAMPLER_END_S,
    dispersion_tau_s: float = DISPERSION_TAU_S,
    noise_cv: float = 0.0,
    rng: np.random.Generator | None = None,
) -> dict[str, Path]:
    """Write ``<prefix>_recording-{manual,autosampler}_blood.tsv/.json`` into ``pet_dir``.

    prefix: BIDS entities of the PET run, e.g. ``sub-01_ses-01``. noise_cv: relative Gaussian
    noise on every activity (0: noise-free). Returns ``{label: tsv path}``.
    """
    truth = truth or BloodTruth()
    rng = rng or np.random.default_rng(0)
    scale = 1e3 / bq_per_ml(units)  # kBq/mL -> units

    def noisy(values: np.ndarray) -> np.ndarray:
        return values * (1.0 + noise_cv * rng.standard_normal(values.shape)) * scale

    pet_dir = Path(pet_dir)
    pet_dir.mkdir(parents=True, exist_ok=True)
    activity = {"Units": units}
    auto_t = np.arange(1.0, autosampler_end_s + 0.5)
    auto = pd.DataFrame(
        {
            "time": auto_t + injection_offset_s,
            "whole_blood_radioactivity": noisy(
                dispersed_whole_blood(truth, auto_t, dispersion_tau_s)
            ),
        }
    )
    auto_json = {
        "PlasmaAvail": False, "MetaboliteAvail": False, "WholeBloodAvail": True,
        "DispersionCorrected": False, "DispersionConstant": dispersion_tau_s,
        "WithdrawalRate": WITHDRAWAL_RATE_ML_MIN,
        "time": {"Units": "s"}, "whole_blood_radioactivity": activity,
    }  # fmt: skip
    man_min = np.asarray(manual_times_s, float) / 60.0
    manual = pd.DataFrame(
        {
            "time": np.asarray(manual_times_s, float) + injection_offset_s,
            "whole_blood_radioactivity": noisy(truth.whole_blood(man_min)),
            "plasma_radioactivity": noisy(truth.plasma(man_min)),
            "metabolite_parent_fraction": np.clip(
                truth.parent_fraction(man_min) * (1 + noise_cv * rng.standard_normal(man_min.size)),
                0.0,
                1.0,
            ),
        }
    )
    manual_json = {
        "PlasmaAvail": True, "MetaboliteAvail": True, "MetaboliteMethod": "HPLC",
        "MetaboliteRecoveryCorrectionApplied": False, "WholeBloodAvail": True,
        "DispersionCorrected": False, "time": {"Units": "s"},
        "whole_blood_radioactivity": activity, "plasma_radioactivity": activity,
        "metabolite_parent_fraction": {"Units": "unitless"},
    }  # fmt: skip
    base = pet_dir / prefix
    return {
        "autosampler": _write(Path(f"{base}_recording-autosampler_blood.tsv"), auto, auto_json),
        "manual": _write(Path(f"{base}_recording-manual_blood.tsv"), manual, manual_json),
    }
