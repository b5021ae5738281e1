"""PET frame timing: the one place where seconds become minutes.

BIDS PET sidecars and the ``_tacs.tsv`` files carry frame times in **seconds**.
Every kinetic model in :mod:`tspo_bidsapp.kinetics` works in **minutes**.
Build a :class:`FrameTiming` from seconds and read the ``*_min`` properties.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SECONDS_PER_MINUTE = 60.0


@dataclass(frozen=True)
class FrameTiming:
    """Frame start times and durations of a dynamic PET scan, stored in seconds.

    ``start_s[i]`` is relative to the time origin of the scan (BIDS: ``TimeZero``
    / ``ScanStart``); ``duration_s[i]`` is the frame length.
    """

    start_s: np.ndarray
    duration_s: np.ndarray

    def __post_init__(self) -> None:
        start = np.asarray(self.start_s, dtype=float).reshape(-1)
        duration = np.asarray(self.duration_s, dtype=float).reshape(-1)
        if start.shape != duration.shape:
            raise ValueError(
                f"FrameTimesStart has {start.size} values but FrameDuration has {duration.size}"
            )
        object.__setattr__(self, "start_s", start)
        object.__setattr__(self, "duration_s", duration)

    @classmethod
    def from_start_end_s(cls, start_s, end_s) -> FrameTiming:
        start = np.asarray(start_s, dtype=float)
        return cls(start, np.asarray(end_s, dtype=float) - start)

    @classmethod
    def from_durations_s(cls, durations_s, offset_s: float = 0.0) -> FrameTiming:
        """Contiguous frames from a list of durations (seconds)."""
        durations = np.asarray(durations_s, dtype=float)
        starts = offset_s + np.concatenate([[0.0], np.cumsum(durations)[:-1]])
        return cls(starts, durations)

    @property
    def n_frames(self) -> int:
        return int(self.start_s.size)

    @property
    def end_s(self) -> np.ndarray:
        return self.start_s + self.duration_s

    @property
    def mid_s(self) -> np.ndarray:
        return self.start_s + 0.5 * self.duration_s

    @property
    def start_min(self) -> np.ndarray:
        return self.start_s / SECONDS_PER_MINUTE

    @property
    def end_min(self) -> np.ndarray:
        return self.end_s / SECONDS_PER_MINUTE

    @property
    def mid_min(self) -> np.ndarray:
        return self.mid_s / SECONDS_PER_MINUTE

    @property
    def duration_min(self) -> np.ndarray:
        return self.duration_s / SECONDS_PER_MINUTE


# A common 60-min TSPO schedule: 4x15 s, 4x30 s, 3x60 s, 2x120 s, 8x300 s, 1x600 s (22 frames).
TSPO_60MIN_DURATIONS_S: tuple[float, ...] = (
    (15.0,) * 4 + (30.0,) * 4 + (60.0,) * 3 + (120.0,) * 2 + (300.0,) * 8 + (600.0,)
)
