"""Read and check the JSON sidecar of a BIDS PET image.

Every problem is reported with the file and the field at fault, and all problems of one
sidecar are reported together. Times in the sidecar are seconds (BIDS) relative to
``TimeZero``; the reader turns them once into the pipeline's one time axis, seconds after
injection (``FrameTimesStart - InjectionStart``), carried as a
:class:`~tspo_bidsapp.io.timing.FrameTiming`, the one place where seconds become minutes.
``TimeZero`` and ``ScanStart`` are not needed for that (a warning when absent);
``InjectionStart`` is, unless the user states it (``--injection-time-offset``).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tspo_bidsapp.exitcodes import BidsAppError, InputProblems, InvalidBIDSError
from tspo_bidsapp.io.decay import factors_to_injection
from tspo_bidsapp.io.frame_checks import check_frame_timing, check_time_axis
from tspo_bidsapp.io.timing import FrameTiming
from tspo_bidsapp.tracers import HALF_LIFE_MIN, Tracer, lookup_tracer, normalise_radionuclide

REQUIRED_TIMING_FIELDS = (
    "TimeZero",
    "ScanStart",
    "InjectionStart",
    "FrameTimesStart",
    "FrameDuration",
    "Units",
)
REQUIRED_TRACER_FIELDS = ("TracerName", "TracerRadionuclide")
# Fields the time axis can do without (a warning names them).
OPTIONAL_TIMING_FIELDS = ("TimeZero", "ScanStart")
_TIME_OF_DAY = re.compile(r"^\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$")


@dataclass(frozen=True)
class PetSidecar:
    """The validated content of one PET sidecar.

    ``timing`` is the pipeline's time axis: seconds after injection. ``frame_times_start_s``
    are the sidecar's own ``FrameTimesStart`` (relative to ``TimeZero``).
    """

    path: Path
    timing: FrameTiming
    time_zero: str | None
    scan_start_s: float | None
    injection_start_s: float  # on the TimeZero axis (seconds)
    units: str
    tracer_name: str
    radionuclide: str  # a key of tracers.HALF_LIFE_MIN
    tracer: Tracer | None  # None: a tracer the pipeline does not know
    decay_corrected: bool | None  # None when ImageDecayCorrected is absent
    decay_correction_time_s: float | None  # ImageDecayCorrectionTime, None when absent
    warnings: tuple[str, ...] = field(default=())
    injection_source: str = "InjectionStart"  # or "--injection-time-offset"
    provenance: dict | None = None  # TimeAxisProvenance of a sidecar the pipeline rewrote

    @property
    def frame_times_start_s(self) -> np.ndarray:
        return self.timing.start_s + self.injection_start_s

    @property
    def n_frames(self) -> int:
        return self.timing.n_frames

    @property
    def is_static(self) -> bool:
        """One frame: no kinetic modelling is possible, only SUVR."""
        return self.timing.n_frames == 1

    @property
    def half_life_min(self) -> float:
        return HALF_LIFE_MIN[self.radionuclide]

    def decay_factors(self) -> np.ndarray:
        """Per-frame multipliers to "decay-corrected to injection" (see :mod:`..decay`)."""
        t = self.timing
        correction_s = (self.decay_correction_time_s or 0.0) - self.injection_start_s
        return factors_to_injection(
            t.start_min,
            t.end_min,
            self.half_life_min,
            decay_corrected=bool(self.decay_corrected),
            correction_time_min=correction_s / 60.0,
        )

    def time_axis_record(self) -> dict[str, Any]:
        """How the time axis and the decay correction were derived (for every sidecar)."""
        if self.provenance:
            return dict(self.provenance)
        factors = self.decay_factors()
        if self.decay_corrected:
            t_corr = (self.decay_correction_time_s or 0.0) - self.injection_start_s
            how = f"input decay-corrected to {t_corr:g} s after injection; scaled by exp(λT)"
            if t_corr == 0:
                how = "input already decay-corrected to injection; unchanged"
        else:
            how = "input not decay-corrected; each frame divided by its mean decay factor"
        return {
            "TimeAxis": "seconds after injection (FrameTimesStart - InjectionStart)",
            "InjectionStart": self.injection_start_s,
            "InjectionStartSource": self.injection_source,
            "DecayCorrection": {
                "Applied": how,
                "Reference": "injection",
                "HalfLifeMinutes": self.half_life_min,
                "Factors": [round(float(f), 6) for f in factors],
            },
        }

    def summary(self) -> dict[str, Any]:
        """A JSON-serialisable summary of the validated timing and tracer (seconds)."""
        return {
            "NumberOfFrames": self.n_frames,
            "FrameTimesStart": self.frame_times_start_s.tolist(),
            "FrameTimesFromInjection": self.timing.start_s.tolist(),
            "FrameDuration": self.timing.duration_s.tolist(),
            "ScanDuration": float(self.timing.end_s[-1] - self.timing.start_s[0]),
            "TimeZero": self.time_zero,
            "ScanStart": self.scan_start_s,
            "InjectionStart": self.injection_start_s,
            "Units": self.units,
            "TracerName": self.tracer_name,
            "Tracer": None if self.tracer is None else self.tracer.name,
            "TracerRadionuclide": self.radionuclide,
            "HalfLifeMinutes": self.half_life_min,
            "GenotypeSensitive": None if self.tracer is None else self.tracer.genotype_sensitive,
            "ImageDecayCorrected": self.decay_corrected,
            "ImageDecayCorrectionTime": self.decay_correction_time_s,
            "Static": self.is_static,
            **self.time_axis_record(),
        }


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _number_array(meta: dict, name: str, path: Path, errors: list) -> np.ndarray | None:
    value = meta[name]
    if _is_number(value):  # a bare number is read as one frame
        value = [value]
    if not isinstance(value, list) or not value or not all(_is_number(v) for v in value):
        errors.append(
            InvalidBIDSError(
                f"must be a non-empty array of numbers (seconds), got {value!r:.60}",
                path=path,
                field=name,
            )
        )
        return None
    return np.asarray(value, dtype=float)


def read_pet_sidecar(
    path: str | Path, *, n_frames: int | None = None, injection_start_s: float | None = None
) -> PetSidecar:
    """Read and validate a PET sidecar; ``n_frames`` is the image's frame count when known.

    ``injection_start_s`` (``--injection-time-offset``): the injection time in seconds on the
    ``FrameTimesStart`` axis, used instead of the sidecar's ``InjectionStart``.
    Raises :class:`~tspo_bidsapp.exitcodes.InputProblems` listing every problem found.
    """
    path = Path(path)
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise InputProblems([InvalidBIDSError("PET sidecar JSON is missing", path=path)]) from exc
    except (OSError, ValueError) as exc:
        raise InputProblems([InvalidBIDSError(f"not valid JSON ({exc})", path=path)]) from exc
    if not isinstance(meta, dict):
        raise InputProblems([InvalidBIDSError("must hold a JSON object", path=path)])

    errors: list[BidsAppError] = []
    warnings: list[str] = []
    for name in REQUIRED_TIMING_FIELDS + REQUIRED_TRACER_FIELDS:
        if name in meta and meta[name] not in (None, ""):
            continue
        if name in OPTIONAL_TIMING_FIELDS:
            warnings.append(f"{path}: {name} is absent; frame times are read relative to it")
        elif name == "InjectionStart" and injection_start_s is not None:
            warnings.append(
                f"{path}: InjectionStart is absent; --injection-time-offset "
                f"{injection_start_s:g} s is used"
            )
        elif name == "InjectionStart":
            errors.append(
                InvalidBIDSError(
                    "required field is missing: the time of injection on the FrameTimesStart "
                    "axis is unknown; give it with --injection-time-offset SEC (0 when the "
                    "frame times count from injection)",
                    path=path,
                    field=name,
                )
            )
        else:
            errors.append(InvalidBIDSError("required field is missing", path=path, field=name))

    def number(name: str) -> float | None:
        if name not in meta or meta[name] is None:
            return None
        if not _is_number(meta[name]):
            errors.append(
                InvalidBIDSError(
                    f"must be a number (seconds), got {meta[name]!r}", path=path, field=name
                )
            )
            return None
        return float(meta[name])

    scan_start = number("ScanStart")
    injection_start = number("InjectionStart")
    source = "InjectionStart"
    if injection_start_s is not None:
        if injection_start is not None and injection_start != injection_start_s:
            warnings.append(
                f"{path}: InjectionStart {injection_start:g} s is overridden by "
                f"--injection-time-offset {injection_start_s:g} s"
            )
        injection_start, source = float(injection_start_s), "--injection-time-offset"
    time_zero = meta.get("TimeZero")
    if time_zero and (not isinstance(time_zero, str) or not _TIME_OF_DAY.match(time_zero)):
        errors.append(
            InvalidBIDSError(
                f"must be a time hh:mm:ss, got {time_zero!r}", path=path, field="TimeZero"
            )
        )
    units = meta.get("Units")
    if units and not isinstance(units, str):
        errors.append(
            InvalidBIDSError(f"must be a string, got {units!r}", path=path, field="Units")
        )

    start = duration = None
    if meta.get("FrameTimesStart") is not None:
        start = _number_array(meta, "FrameTimesStart", path, errors)
    if meta.get("FrameDuration") is not None:
        duration = _number_array(meta, "FrameDuration", path, errors)
    if start is not None and duration is not None:
        frame_errors = check_frame_timing(start, duration, path=path, n_frames=n_frames)
        errors += frame_errors
        if frame_errors:  # the time axis is checked on a consistent schedule only
            start = None

    radionuclide = None
    raw_nuclide = meta.get("TracerRadionuclide")
    if raw_nuclide:
        radionuclide = normalise_radionuclide(str(raw_nuclide))
        if radionuclide is None:
            errors.append(
                InvalidBIDSError(
                    f"unknown radionuclide {raw_nuclide!r}; known: {', '.join(HALF_LIFE_MIN)}",
                    path=path,
                    field="TracerRadionuclide",
                )
            )
    tracer_name = meta.get("TracerName")
    tracer = lookup_tracer(str(tracer_name)) if tracer_name else None
    if tracer_name and tracer is None:
        warnings.append(
            f"{path}: TracerName {tracer_name!r} is not a TSPO tracer known to the pipeline; "
            "genotype checks are skipped for it"
        )
    elif tracer is not None and radionuclide and tracer.radionuclide != radionuclide:
        errors.append(
            InvalidBIDSError(
                f"{raw_nuclide!r} does not match tracer {tracer.name}, which is labelled with "
                f"{tracer.radionuclide}",
                path=path,
                field="TracerRadionuclide",
            )
        )

    decay_corrected = meta.get("ImageDecayCorrected")
    if decay_corrected is not None and not isinstance(decay_corrected, bool):
        errors.append(
            InvalidBIDSError(
                f"must be true or false, got {decay_corrected!r}",
                path=path,
                field="ImageDecayCorrected",
            )
        )
        decay_corrected = None
    decay_time = number("ImageDecayCorrectionTime")
    if "ImageDecayCorrected" not in meta or meta["ImageDecayCorrected"] is None:
        errors.append(
            InvalidBIDSError(
                "required field is missing: without it the frames cannot be brought to "
                "decay-corrected to injection (true or false)",
                path=path,
                field="ImageDecayCorrected",
            )
        )
    elif decay_corrected and decay_time is None:
        warnings.append(
            f"{path}: ImageDecayCorrectionTime is absent; decay correction is assumed to TimeZero"
        )
    if start is not None and duration is not None and injection_start is not None:
        errors += check_time_axis(
            start - injection_start,
            duration,
            radionuclide,
            decay_corrected,
            None if decay_time is None else decay_time - injection_start,
            path=path,
        )

    if errors:
        raise InputProblems(errors)
    timing = FrameTiming(start - injection_start, duration)
    warnings += _correction_notes(path, injection_start, decay_corrected, decay_time, radionuclide)
    if timing.n_frames == 1:
        warnings.append(
            f"{path}: static (single-frame) PET; kinetic models need dynamic PET, so only SUVR "
            "and SUV (with body weight and dose) can be computed for this run"
        )
    return PetSidecar(
        path=path,
        timing=timing,
        time_zero=None if time_zero is None else str(time_zero),
        scan_start_s=scan_start,
        injection_start_s=float(injection_start),
        units=str(units),
        tracer_name=str(tracer_name),
        radionuclide=radionuclide,
        tracer=tracer,
        decay_corrected=decay_corrected,
        decay_correction_time_s=decay_time,
        warnings=tuple(warnings),
        injection_source=source,
        provenance=meta.get("TimeAxisProvenance"),
    )


def _correction_notes(path, injection_s, decay_corrected, decay_time_s, radionuclide) -> list:
    """What the pipeline does to the frames' times and values (for the log and the report)."""
    notes = []
    if injection_s != 0:
        notes.append(
            f"{path}: InjectionStart is {injection_s:g} s: frame times are shifted to count "
            "from injection"
        )
    half_life = HALF_LIFE_MIN[radionuclide]
    if not decay_corrected:
        notes.append(
            f"{path}: ImageDecayCorrected is false: every frame is decay-corrected to injection "
            f"(frame-integrated factors, T½ = {half_life:g} min)"
        )
    elif (decay_time_s or 0.0) != injection_s:
        shift = (decay_time_s or 0.0) - injection_s
        notes.append(
            f"{path}: frames are decay-corrected to {shift:g} s after injection; they are "
            f"rescaled to injection (× {2 ** (shift / 60.0 / half_life):.6g})"
        )
    return notes
