"""Rigid transforms in world (RAS mm) coordinates and frame-wise head-motion trajectories.

Convention used everywhere in the synthetic truth: a rigid transform with translation
``t`` (mm) and rotation angles ``r = (rx, ry, rz)`` (rad) about a centre ``c`` (mm) maps
``p -> R (p - c) + c + t`` with ``R = Rz(rz) @ Ry(ry) @ Rx(rx)`` (rotate about x first, then
y, then z, about fixed world axes).
"""

from __future__ import annotations

import numpy as np

from tspo_bidsapp.io.timing import FrameTiming

MOTION_ONSET_S = 120.0  # frames starting before 2 min are motion-free


def rotation_matrix(rot_rad) -> np.ndarray:
    """``Rz @ Ry @ Rx`` for angles (rx, ry, rz) in radians."""
    rx, ry, rz = (float(a) for a in rot_rad)
    cx, sx, cy, sy, cz, sz = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    r_x = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    r_y = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    r_z = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return r_z @ r_y @ r_x


def rigid_matrix(trans_mm, rot_rad, centre_mm=(0.0, 0.0, 0.0)) -> np.ndarray:
    """4x4 world matrix of ``p -> R (p - c) + c + t``."""
    rot = rotation_matrix(rot_rad)
    centre = np.asarray(centre_mm, float)
    out = np.eye(4)
    out[:3, :3] = rot
    out[:3, 3] = centre - rot @ centre + np.asarray(trans_mm, float)
    return out


def rigid_parameters(matrix: np.ndarray, centre_mm=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Inverse of :func:`rigid_matrix`: (tx, ty, tz [mm], rx, ry, rz [rad])."""
    rot = np.asarray(matrix, float)[:3, :3]
    ry = -np.arcsin(np.clip(rot[2, 0], -1.0, 1.0))
    rx = np.arctan2(rot[2, 1], rot[2, 2])
    rz = np.arctan2(rot[1, 0], rot[0, 0])
    centre = np.asarray(centre_mm, float)
    trans = np.asarray(matrix, float)[:3, 3] - centre + rot @ centre
    return np.concatenate([trans, [rx, ry, rz]])


def random_rigid_parameters(
    rng: np.random.Generator, trans_mm: float, rot_deg: float
) -> np.ndarray:
    """Translation of length ``trans_mm`` and rotation angles of norm ``rot_deg`` in random directions."""
    t = rng.normal(size=3)
    r = rng.normal(size=3)
    t *= trans_mm / np.linalg.norm(t)
    r *= np.deg2rad(rot_deg) / np.linalg.norm(r)
    return np.concatenate([t, r])


def motion_trajectory(
    timing: FrameTiming,
    rng: np.random.Generator,
    max_trans_mm: float = 3.0,
    max_rot_deg: float = 2.5,
    onset_s: float = MOTION_ONSET_S,
) -> np.ndarray:
    """Frame-wise rigid parameters (n_frames, 6): a slow drift growing with time plus one jerk.

    Frames starting before ``onset_s`` are motion-free. The drift reaches 40-70 % of the
    limits at the end of the scan; the jerk (a sudden head shift, held until the end) adds
    20-40 %. Each translation component stays within ``max_trans_mm`` and each angle within
    ``max_rot_deg``. Typical of head motion in long brain PET scans (Jin et al. 2013,
    IEEE TMI 32:1931-1944: a few mm and degrees over 60-90 min).
    """
    mid = timing.mid_s
    moving = timing.start_s >= onset_s
    params = np.zeros((timing.n_frames, 6))
    if not moving.any():
        return params
    span = max(mid[-1] - onset_s, 1.0)
    ramp = np.clip((mid - onset_s) / span, 0.0, 1.0) * moving
    limits = np.array([max_trans_mm] * 3 + [np.deg2rad(max_rot_deg)] * 3)
    drift = rng.uniform(0.4, 0.7, 6) * rng.choice([-1.0, 1.0], 6) * limits
    jerk = rng.uniform(0.2, 0.4, 6) * rng.choice([-1.0, 1.0], 6) * limits
    jerk_frame = int(rng.choice(np.flatnonzero(moving)[1:])) if moving.sum() > 1 else -1
    step = (np.arange(timing.n_frames) >= jerk_frame) & moving
    params = ramp[:, None] * drift[None, :] + step[:, None] * jerk[None, :]
    return np.clip(params, -limits, limits)
