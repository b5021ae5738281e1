"""Coverage and agreement of the treatment-monitoring tests over simulated trials.

Each trial: 32 patients (16 treated, 16 control), between-subject SD 8 %, scan-to-scan SD 3 %,
NAWM DVR -10 % at follow-up in the treated arm (``tests/test_group_monitoring.py``). Reports
how often each 95 % CI contains the planted effect, the largest paired/mixed-model difference,
and how often the paired t-test and the mixed model reach the same decision at alpha 0.05.

Usage: python benchmarks/group_monitoring_coverage.py [N_TRIALS]   (default 200)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from tspo_bidsapp.group.monitoring import change_statistics

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_group_monitoring import EFFECT, _trial  # noqa: E402


def main(n_trials: int = 200) -> None:
    rng = np.random.default_rng(2026)
    tests = ("paired t", "mixed model", "two-sample t", "mixed model interaction")
    truth = {"paired t": 100 * EFFECT, "mixed model": 100 * EFFECT,
             "two-sample t": 100 * EFFECT, "mixed model interaction": 100 * EFFECT}  # fmt: skip
    covered = dict.fromkeys(tests, 0)
    same, gap = 0, 0.0
    control_same, control_cover = 0, 0
    for _ in range(n_trials):
        long, arms = _trial(rng)
        values = long[long["region"] == "NAWM"].assign(tracer="PBR28", model="SRTM",
                                                       ref="cerebellum", measure="DVR")  # fmt: skip
        stats = change_statistics(values, arms, regions=("NAWM",)).set_index(["arm", "test"])
        for test in tests:
            arm = "treated" if test in ("paired t", "mixed model") else "treated vs control"
            row = stats.loc[(arm, test)]
            covered[test] += row["ci_low"] <= truth[test] <= row["ci_high"]
        p, m = stats.loc[("treated", "paired t")], stats.loc[("treated", "mixed model")]
        same += (p["p"] < 0.05) == (m["p"] < 0.05)
        gap = max(gap, abs(p["percent_change"] - m["percent_change"]))
        pc, mc = stats.loc[("control", "paired t")], stats.loc[("control", "mixed model")]
        control_same += (pc["p"] < 0.05) == (mc["p"] < 0.05)
        control_cover += pc["ci_low"] <= 0 <= pc["ci_high"]
    print(f"{n_trials} simulated trials, planted {100 * EFFECT:.0f} % in the treated arm")
    for test in tests:
        print(f"  95 % CI of {test:25s} contains the effect in {covered[test] / n_trials:.3f}")
    print(f"  control arm paired CI contains 0 in {control_cover / n_trials:.3f}")
    print(f"  paired vs mixed estimate: largest difference {gap:.2e} percentage points")
    print(
        f"  same decision at 0.05: treated {same / n_trials:.3f}, "
        f"control {control_same / n_trials:.3f}"
    )


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
