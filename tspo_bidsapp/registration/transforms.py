"""Rigid transforms: RAS/LPS conventions, ITK text files, motion parameters, displacement.

Two conventions meet here:

* **RAS world** (NIfTI affines, nibabel, the synthetic truth): 4x4 matrices acting on
  RAS millimetre coordinates.
* **ITK/ANTs** transforms act on LPS millimetre coordinates and map points of the
  *fixed* image to points of the *moving* image (this is what resampling needs).
  An "ITK matrix" below is the 4x4 homogeneous form of such a transform.

``LPS = diag(-1, -1, 1, 1) @ RAS``, hence ``M_lps = F @ M_ras @ F`` with ``F = F^-1``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])

#: Radius (mm) of the sphere on which rotations become displacements in the
#: framewise displacement of Power et al., NeuroImage 59:2142-2154 (2012).
FD_SPHERE_RADIUS_MM = 50.0


def ras_to_lps(matrix: np.ndarray) -> np.ndarray:
    """Express a 4x4 point map given in RAS world coordinates in LPS coordinates."""
    return LPS_FROM_RAS @ np.asarray(matrix, dtype=float) @ LPS_FROM_RAS


def lps_to_ras(matrix: np.ndarray) -> np.ndarray:
    """Express a 4x4 point map given in LPS coordinates in RAS world coordinates."""
    return LPS_FROM_RAS @ np.asarray(matrix, dtype=float) @ LPS_FROM_RAS


def ants_transform_to_matrix(transform) -> np.ndarray:
    """4x4 LPS matrix of a linear ``ants.ANTsTransform`` (fixed point -> moving point).

    Evaluates the transform at the origin and at the three unit vectors, which works for
    every linear ITK transform type (Euler, rigid, affine, with or without centre).
    """
    origin = np.asarray(transform.apply_to_point((0.0, 0.0, 0.0)), dtype=float)
    matrix = np.eye(4)
    for axis in range(3):
        unit = [0.0, 0.0, 0.0]
        unit[axis] = 1.0
        matrix[:3, axis] = np.asarray(transform.apply_to_point(tuple(unit))) - origin
    matrix[:3, 3] = origin
    return matrix


def matrix_to_ants_transform(matrix_lps: np.ndarray):
    """``ants.ANTsTransform`` (double-precision ``AffineTransform``) from a 4x4 LPS matrix."""
    import ants

    matrix_lps = np.asarray(matrix_lps, dtype=float)
    return ants.create_ants_transform(
        transform_type="AffineTransform",
        precision="double",
        dimension=3,
        matrix=matrix_lps[:3, :3],
        translation=matrix_lps[:3, 3],
        center=np.zeros(3),
    )


def write_itk_transform(matrix_lps: np.ndarray, path: str | Path) -> Path:
    """Write a 4x4 LPS fixed->moving matrix as an ITK transform (``.txt`` = ITK text)."""
    import ants

    path = Path(path)
    if path.suffix == ".txt":
        return write_itk_transform_list(np.asarray(matrix_lps)[None], path)
    ants.write_transform(matrix_to_ants_transform(matrix_lps), str(path))
    return path


def read_itk_transform(path: str | Path) -> np.ndarray:
    """Read a linear ITK transform file (``.txt`` or ``.mat``) as a 4x4 LPS matrix.

    ITK text files of affine type are parsed in double precision; other files and types
    are read through ANTsPy.
    """
    import ants

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ITK transform file not found: {path}")
    if path.suffix == ".txt":
        try:
            return read_itk_transform_list(path)[0]
        except ValueError:
            pass
    return ants_transform_to_matrix(ants.read_transform(str(path)))


def itk_to_ras_world(matrix_lps: np.ndarray) -> np.ndarray:
    """RAS world map *moving -> fixed* from an ITK fixed->moving LPS matrix.

    For a registration with fixed = T1w and moving = PET, the result maps a PET world
    point to the T1w world point showing the same anatomy (the ``pet_to_t1w``
    convention of the synthetic truth).
    """
    return np.linalg.inv(lps_to_ras(matrix_lps))


def ras_world_to_itk(matrix_ras: np.ndarray) -> np.ndarray:
    """Inverse of :func:`itk_to_ras_world`."""
    return ras_to_lps(np.linalg.inv(np.asarray(matrix_ras, dtype=float)))


def rotation_matrix(rot_x: float, rot_y: float, rot_z: float) -> np.ndarray:
    """3x3 rotation ``Rz @ Ry @ Rx`` (radians; rotate about x first, then y, then z)."""
    cx, sx = np.cos(rot_x), np.sin(rot_x)
    cy, sy = np.cos(rot_y), np.sin(rot_y)
    cz, sz = np.cos(rot_z), np.sin(rot_z)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def rigid_matrix(
    translation_mm: np.ndarray, rotation_rad: np.ndarray, center_mm: np.ndarray | None = None
) -> np.ndarray:
    """4x4 map ``x -> R (x - c) + c + t`` with ``R = rotation_matrix(*rotation_rad)``."""
    center = np.zeros(3) if center_mm is None else np.asarray(center_mm, dtype=float)
    rot = rotation_matrix(*np.asarray(rotation_rad, dtype=float))
    matrix = np.eye(4)
    matrix[:3, :3] = rot
    matrix[:3, 3] = center + np.asarray(translation_mm, dtype=float) - rot @ center
    return matrix


def rigid_parameters(
    matrix: np.ndarray, center_mm: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Translation (mm) and rotations (rad) of a rigid 4x4 map about ``center_mm``.

    Inverse of :func:`rigid_matrix`: returns ``t, (rot_x, rot_y, rot_z)`` with
    ``x -> R (x - c) + c + t`` and ``R = Rz @ Ry @ Rx``.
    """
    matrix = np.asarray(matrix, dtype=float)
    center = np.zeros(3) if center_mm is None else np.asarray(center_mm, dtype=float)
    rot = matrix[:3, :3]
    rot_y = -np.arcsin(np.clip(rot[2, 0], -1.0, 1.0))
    rot_x = np.arctan2(rot[2, 1], rot[2, 2])
    rot_z = np.arctan2(rot[1, 0], rot[0, 0])
    translation = matrix[:3, :3] @ center + matrix[:3, 3] - center
    return translation, np.array([rot_x, rot_y, rot_z])


def framewise_displacement(
    translations_mm: np.ndarray, rotations_rad: np.ndarray, radius_mm: float = FD_SPHERE_RADIUS_MM
) -> np.ndarray:
    """Framewise displacement (mm) of Power et al. (2012), one value per frame.

    ``FD_i = sum |d trans| + radius * sum |d rot|`` between frame ``i`` and ``i - 1``;
    the first frame has no predecessor and gets ``nan`` (written ``n/a`` in TSV files).
    """
    trans = np.asarray(translations_mm, dtype=float).reshape(-1, 3)
    rots = np.asarray(rotations_rad, dtype=float).reshape(-1, 3)
    if trans.shape != rots.shape:
        raise ValueError("translations and rotations must have the same number of frames")
    fd = np.full(trans.shape[0], np.nan)
    if trans.shape[0] > 1:
        fd[1:] = np.abs(np.diff(trans, axis=0)).sum(1) + radius_mm * np.abs(
            np.diff(rots, axis=0)
        ).sum(1)
    return fd


def mean_displacement(matrix_a: np.ndarray, matrix_b: np.ndarray, points_mm: np.ndarray) -> float:
    """Mean Euclidean distance (mm) between ``A @ p`` and ``B @ p`` over points ``p`` (N x 3)."""
    points = np.asarray(points_mm, dtype=float).reshape(-1, 3)
    diff = np.asarray(matrix_a, dtype=float) - np.asarray(matrix_b, dtype=float)
    moved = points @ diff[:3, :3].T + diff[:3, 3]
    return float(np.linalg.norm(moved, axis=1).mean())


def compose(*matrices: np.ndarray) -> np.ndarray:
    """Product ``M1 @ M2 @ ...``: the point map applying the *last* matrix first."""
    out = np.eye(4)
    for matrix in matrices:
        out = out @ np.asarray(matrix, dtype=float)
    return out


def write_itk_transform_list(matrices_lps: np.ndarray, path: str | Path) -> Path:
    """Write several 4x4 LPS matrices into one ITK text file (``#Transform 0..n-1``)."""
    path = Path(path)
    lines = ["#Insight Transform File V1.0"]
    for k, matrix in enumerate(np.asarray(matrices_lps, dtype=float).reshape(-1, 4, 4)):
        params = list(matrix[:3, :3].ravel()) + list(matrix[:3, 3])
        lines += [
            f"#Transform {k}",
            "Transform: AffineTransform_double_3_3",
            "Parameters: " + " ".join(f"{p:.17g}" for p in params),
            "FixedParameters: 0 0 0",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def read_itk_transform_list(path: str | Path) -> np.ndarray:
    """Read every linear (affine/rigid, 12-parameter) transform of an ITK text file -> (n, 4, 4)."""
    path = Path(path)
    matrices = []
    params = None
    for line in path.read_text().splitlines():
        if line.startswith("Transform:"):
            kind = line.split(":", 1)[1].strip()
            if not kind.startswith(("AffineTransform", "MatrixOffsetTransformBase")):
                raise ValueError(f"{path}: unsupported transform type {kind!r}")
        elif line.startswith("Parameters:"):
            params = np.array(line.split(":", 1)[1].split(), dtype=float)
        elif line.startswith("FixedParameters:"):
            centre = np.array(line.split(":", 1)[1].split(), dtype=float)
            if params is None or params.size != 12 or centre.size != 3:
                raise ValueError(f"{path}: malformed linear transform")
            matrix = np.eye(4)
            matrix[:3, :3] = params[:9].reshape(3, 3)
            matrix[:3, 3] = params[9:] + centre - matrix[:3, :3] @ centre
            matrices.append(matrix)
            params = None
    if not matrices:
        raise ValueError(f"{path}: no transform found")
    return np.stack(matrices)
