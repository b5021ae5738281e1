"""Change between sessions (e.g. before/after treatment) of regional and lesion values.

The first session (natural order of the labels, :func:`tables.session_order`) is the
baseline; every later session gives ``change = later - baseline`` and
``percent_change = 100 change / baseline``, per participant, tracer, rec, run, model, ref.

Lesions present at both sessions: when both sessions share one anatomy (a session-less T1w:
same lesion ids), lesions are matched by id; otherwise by their centres (RAS mm, from
``desc-lesions_morph.tsv``) with an optimal one-to-one assignment (Hungarian algorithm) and a
maximum distance ``max_mm``. Centre matching assumes the sessions' T1w images share a world
frame (same scanner position or co-registered); unmatched lesions are listed as new/resolved.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from tspo_bidsapp.group.tables import session_order

LINK = ("participant_id", "tracer", "rec", "run", "model", "ref")
LESION_VALUES = ("core_DVR", "rim_DVR", "core_active_fraction", "rim_active_fraction",
                 "volume_ml")  # fmt: skip


def regional_change(long: pd.DataFrame) -> pd.DataFrame:
    """Per region and measure: baseline and follow-up values, change, percent change."""
    if long.empty:
        return pd.DataFrame()
    rows = []
    for key, part in long.groupby([*LINK, "region", "measure"], sort=True):
        sessions = sorted(part["session"].unique(), key=session_order)
        if len(sessions) < 2:
            continue
        value = part.groupby("session")["value"].first()
        base = float(value[sessions[0]])
        for ses in sessions[1:]:
            v = float(value[ses])
            rows.append(
                dict(zip([*LINK, "region", "measure"], key, strict=True))
                | {"baseline_session": sessions[0], "session": ses, "baseline": base,
                   "followup": v, "change": v - base,
                   "percent_change": 100.0 * (v - base) / base if base != 0 else np.nan}
            )  # fmt: skip
    return pd.DataFrame(rows)


def match_lesions(
    centres_a: np.ndarray, centres_b: np.ndarray, max_mm: float = 5.0
) -> list[tuple[int, int, float]]:
    """One-to-one matches ``(row_a, row_b, distance_mm)`` of lesion centres within ``max_mm``."""
    a, b = np.asarray(centres_a, float), np.asarray(centres_b, float)
    if not len(a) or not len(b):
        return []
    dist = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2)
    cost = np.where(dist <= max_mm, dist, 1e6)
    rows, cols = linear_sum_assignment(cost)
    return [(int(i), int(j), float(dist[i, j])) for i, j in zip(rows, cols, strict=True)
            if dist[i, j] <= max_mm]  # fmt: skip


def _centres(path: Path | None) -> pd.DataFrame | None:
    if path is None or not Path(path).is_file():
        return None
    table = pd.read_csv(path, sep="\t")
    need = {"lesion_id", "x_mm", "y_mm", "z_mm"}
    if not need <= set(table.columns):
        raise ValueError(f"{path}: lesion table needs columns {sorted(need)}")
    return table.set_index("lesion_id")


def lesion_change(lesions: pd.DataFrame, morph_of, *, max_mm: float = 5.0) -> pd.DataFrame:
    """Lesion-level change for lesions present at baseline and a later session.

    ``morph_of(participant_id, session)`` gives the ``desc-lesions_morph.tsv`` path (or None)
    of a session's anatomy; the same path for two sessions means shared lesion ids.
    """
    if lesions.empty:
        return pd.DataFrame()
    rows = []
    for key, part in lesions.groupby(list(LINK), sort=True):
        sessions = sorted(part["session"].unique(), key=session_order)
        base = part[part["session"] == sessions[0]].set_index("lesion_id")
        for ses in sessions[1:]:
            later = part[part["session"] == ses].set_index("lesion_id")
            m_a, m_b = morph_of(key[0], sessions[0]), morph_of(key[0], ses)
            if m_a is not None and m_a == m_b:
                pairs = [(i, i, 0.0) for i in base.index.intersection(later.index)]
                how = "same lesion ids"
            else:
                ca, cb = _centres(m_a), _centres(m_b)
                if ca is None or cb is None:
                    continue
                ia = [i for i in base.index if i in ca.index]
                ib = [i for i in later.index if i in cb.index]
                cols = ["x_mm", "y_mm", "z_mm"]
                found = match_lesions(ca.loc[ia, cols].to_numpy(), cb.loc[ib, cols].to_numpy(),
                                      max_mm)  # fmt: skip
                pairs = [(ia[i], ib[j], d) for i, j, d in found]
                how = f"centres within {max_mm:g} mm"
            for la, lb, d in pairs:
                row = dict(zip(LINK, key, strict=True)) | {
                    "baseline_session": sessions[0], "session": ses, "baseline_lesion_id": la,
                    "lesion_id": lb, "match": how, "centre_distance_mm": d,
                    "baseline_phenotype": base.at[la, "phenotype"],
                    "phenotype": later.at[lb, "phenotype"],
                }  # fmt: skip
                for col in LESION_VALUES:
                    if col in base.columns:
                        v0, v1 = float(base.at[la, col]), float(later.at[lb, col])
                        row[f"baseline_{col}"], row[col] = v0, v1
                        row[f"change_{col}"] = v1 - v0
                rows.append(row)
    return pd.DataFrame(rows)
