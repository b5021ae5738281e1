"""Read and check the JSON sidecar of a BIDS PET image.

Every problem is reported with the file and the field at fault, and all problems of one
sidecar are reported together. Times in the sidecar are seconds (BIDS); they are carried as a
:class:`~tspo_bidsapp.io.timing.FrameTiming`, the one place where seconds become minutes.
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
# Frame boundaries are compared with this tolerance (seconds): sidecars often store rounded times.
FRAME_TOLERANCE_S = 1e-3
_TIME_OF_DAY = re.compile(r"^\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$")


@dataclass(frozen=True)
class PetSidecar:
    """The validated content of one PET sidecar. Times are seconds relative to ``TimeZero``."""

    path: Path
    timing: FrameTiming
    time_zero: str
    scan_start_s: float
    injection_start_s: float
    units: str
    tracer_name: str
    radionuclide: str  # a key of tracers.HALF_LIFE_MIN
    tracer: Tracer | None  # None: a tracer the pipeline does not know
    decay_corrected: bool | None  # None when ImageDecayCorrected is absent
    decay_correction_time_s: float | None  # ImageDecayCorrectionTime, None when absent
    warnings: tuple[str, ...] = field(default=())

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

    def summary(self) -> dict[str, Any]:
        """A JSON-serialisable summary of the validated timing and tracer (seconds)."""
        return {
            "NumberOfFrames": self.n_frames,
            "FrameTimesStart": self.timing.start_s.tolist(),
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


def check_frame_timing(
    start_s: np.ndarray, duration_s: np.ndarray, *, path: Path, n_frames: int | None = None
) -> list[BidsAppError]:
    """Problems with frame start times and durations (seconds); an empty list when consistent."""
    errors: list[BidsAppError] = []
    if start_s.size != duration_s.size:
        errors.append(
            InvalidBIDSError(
                f"FrameTimesStart has {start_s.size} values but FrameDuration has "
                f"{duration_s.size}; they must have one value per frame",
                path=path,
                field="FrameDuration",
            )
        )
    if n_frames is not None:
        arrays = [("FrameTimesStart", start_s), ("FrameDuration", duration_s)]
        if start_s.size == duration_s.size:  # report the count once
            arrays = arrays[:1]
        for name, arr in arrays:
            if arr.size != n_frames:
                errors.append(
                    InvalidBIDSError(
                        f"lists {arr.size} frames but the PET image has {n_frames}",
                        path=path,
                        field=name,
                    )
                )
    bad = np.flatnonzero(duration_s <= 0)
    if bad.size:
        errors.append(
            InvalidBIDSError(
                f"durations must be positive; frame(s) {bad.tolist()} have "
                f"{duration_s[bad].tolist()} s",
                path=path,
                field="FrameDuration",
            )
        )
    not_increasing = np.flatnonzero(np.diff(start_s) <= 0)
    if not_increasing.size:
        i = int(not_increasing[0])
        errors.append(
            InvalidBIDSError(
                f"frame start times must increase; frame {i + 1} starts at {start_s[i + 1]:g} s, "
                f"not after frame {i} at {start_s[i]:g} s",
                path=path,
                field="FrameTimesStart",
            )
        )
    n = min(start_s.size, duration_s.size)
    if n > 1 and not not_increasing.size:
        end = start_s[: n - 1] + duration_s[: n - 1]
        overlap = np.flatnonzero(end > start_s[1:n] + FRAME_TOLERANCE_S)
        if overlap.size:
            i = int(overlap[0])
            message = (
                f"FrameDuration is inconsistent with FrameTimesStart: {overlap.size} frame(s) "
                f"overlap the next one; frame {i} starts at {start_s[i]:g} s and lasts "
                f"{duration_s[i]:g} s, so it ends at {end[i]:g} s, after frame {i + 1} starts "
                f"at {start_s[i + 1]:g} s"
            )
            if np.allclose(duration_s[: n - 1], start_s[1:n]):
                message += (
                    ". FrameDuration holds the frame end times (FrameDuration[i] equals "
                    "FrameTimesStart[i+1]); it must hold each frame's length in seconds"
                )
            errors.append(InvalidBIDSError(message, path=path, field="FrameDuration"))
    return errors


def read_pet_sidecar(path: str | Path, *, n_frames: int | None = None) -> PetSidecar:
    """Read and validate a PET sidecar; ``n_frames`` is the image's frame count when known.

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
        if name not in meta or meta[name] in (None, ""):
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
        errors += check_frame_timing(start, duration, path=path, n_frames=n_frames)

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
    if decay_corrected is None:
        warnings.append(f"{path}: ImageDecayCorrected is absent; decay correction is unknown")
    elif decay_corrected and decay_time is None:
        warnings.append(
            f"{path}: ImageDecayCorrectionTime is absent; decay correction is assumed to TimeZero"
        )

    if errors:
        raise InputProblems(errors)
    timing = FrameTiming(start, duration)
    if timing.n_frames == 1:
        warnings.append(
            f"{path}: static (single-frame) PET; kinetic models need dynamic PET, so only SUVR "
            "can be computed for this run"
        )
    return PetSidecar(
        path=path,
        timing=timing,
        time_zero=str(time_zero),
        scan_start_s=float(scan_start),
        injection_start_s=float(injection_start),
        units=str(units),
        tracer_name=str(tracer_name),
        radionuclide=radionuclide,
        tracer=tracer,
        decay_corrected=decay_corrected,
        decay_correction_time_s=decay_time,
        warnings=tuple(warnings),
    )
