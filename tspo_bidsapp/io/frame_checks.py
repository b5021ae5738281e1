"""Checks of a PET frame schedule (seconds): consistency, and plausibility on the injection axis.

Every problem is an :class:`~tspo_bidsapp.exitcodes.InvalidBIDSError` (exit 16) naming the
file and the field at fault. Frames are numbered from 1 in messages (as in the log and the
report; frame 1 is the first row of the confounds table).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tspo_bidsapp.exitcodes import BidsAppError, InvalidBIDSError
from tspo_bidsapp.io.decay import implausible_schedule
from tspo_bidsapp.tracers import HALF_LIFE_MIN

# Frame boundaries are compared with this tolerance (seconds): sidecars often store rounded times.
FRAME_TOLERANCE_S = 1e-3


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
                f"durations must be positive; frame(s) {(bad + 1).tolist()} have "
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
                f"frame start times must increase; frame {i + 2} starts at {start_s[i + 1]:g} s, "
                f"not after frame {i + 1} at {start_s[i]:g} s",
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
                f"overlap the next one; frame {i + 1} starts at {start_s[i]:g} s and lasts "
                f"{duration_s[i]:g} s, so it ends at {end[i]:g} s, after frame {i + 2} starts "
                f"at {start_s[i + 1]:g} s"
            )
            if np.allclose(duration_s[: n - 1], start_s[1:n]):
                message += (
                    ". FrameDuration holds the frame end times (FrameDuration[i] equals "
                    "FrameTimesStart[i+1]); it must hold each frame's length in seconds"
                )
            errors.append(InvalidBIDSError(message, path=path, field="FrameDuration"))
    return errors


def check_time_axis(
    start_s, duration_s, radionuclide, decay_corrected, correction_s, *, path: Path
) -> list[BidsAppError]:
    """Problems of the frames on the injection axis (seconds): plausibility, decay time."""
    errors: list[BidsAppError] = []
    end_s = start_s + duration_s
    if end_s[-1] <= 0:
        errors.append(
            InvalidBIDSError(
                f"every frame ends before the injection (last frame ends {-end_s[-1]:g} s "
                "before InjectionStart): no tracer was imaged",
                path=path,
                field="FrameTimesStart",
            )
        )
    if radionuclide is None:
        return errors
    half_life = HALF_LIFE_MIN[radionuclide]
    message = implausible_schedule(end_s[-1] / 60.0, duration_s.max() / 60.0, half_life)
    if message is not None:
        field = "FrameDuration" if duration_s.max() >= 0.5 * end_s[-1] else "FrameTimesStart"
        errors.append(InvalidBIDSError(message, path=path, field=field))
    if decay_corrected and correction_s is not None and correction_s > end_s[-1]:
        errors.append(
            InvalidBIDSError(
                f"decay correction to {correction_s:g} s after injection, after the scan "
                f"ended ({end_s[-1]:g} s after injection): the time is wrong",
                path=path,
                field="ImageDecayCorrectionTime",
            )
        )
    return errors
