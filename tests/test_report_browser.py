"""The report as a person sees it: headless Chromium loads it with every figure and no errors."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

os.environ.setdefault("NIPYPE_NO_ET", "1")

import pytest
from test_reports import built_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


def chromium(url: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
            "--hide-scrollbars", "--virtual-time-budget=5000", *extra, url]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def console_errors(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines()
            if "CONSOLE" in ln or "ERR_FILE_NOT_FOUND" in ln or "Uncaught" in ln]  # fmt: skip


def test_report_loads_with_all_figures(tmp_path_factory, tmp_path, synthetic_study):
    out, _ = built_report(tmp_path_factory, synthetic_study)
    url = (out / "sub-01.html").as_uri()
    dom = chromium(url, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", dom.stdout).group(1)
    n_images = int(re.search(r'data-images="(\d+)"', body).group(1))
    assert n_images >= 12
    assert re.search(r'data-broken-images="(\d+)"', body).group(1) == "0"
    assert console_errors(dom.stderr) == []
    shot = tmp_path / "report.png"
    result = chromium(url, tmp_path, f"--screenshot={shot}", "--window-size=1200,3000")
    assert result.returncode == 0 and shot.stat().st_size > 50_000


def test_broken_figure_is_detected(tmp_path_factory, tmp_path, synthetic_study):
    """A missing figure file is caught by the same checks (the test can fail)."""
    out, _ = built_report(tmp_path_factory, synthetic_study)
    copy = tmp_path / "copy"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("*.nii.gz"))
    next((copy / "sub-01" / "figures").glob("*.svg")).unlink()
    dom = chromium((copy / "sub-01.html").as_uri(), tmp_path, "--dump-dom")
    assert re.search(r'data-broken-images="(\d+)"', dom.stdout).group(1) == "1"
    assert console_errors(dom.stderr)
