"""Report figures are written atomically: a failed write leaves the old file and no debris."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from tspo_bidsapp.reports.figures import save_figure  # noqa: E402


def test_figure_is_written_and_a_failed_write_keeps_the_old_one(tmp_path):
    out = tmp_path / "fig.svg"
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    save_figure(fig, out)
    first = out.read_bytes()
    assert first.startswith(b"<?xml") and b"</svg>" in first

    fig, ax = plt.subplots()

    def broken(path, **kwargs):
        with open(path, "wb") as fh:
            fh.write(b"<?xml half")
        raise OSError("disk full")

    fig.savefig = broken
    with pytest.raises(OSError, match="disk full"):
        save_figure(fig, out)
    assert out.read_bytes() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.svg"]
