"""Run SAMSEG (Puonti et al., NeuroImage 143:235-249, 2016; lesion mode: Cerri et al., NeuroImage
225:117471, 2021) in a subprocess and collect its outputs as NIfTI.

SAMSEG ships its atlas and lesion model with the ``samseg`` package and runs offline. Lesion mode
needs tensorflow (the lesion shape model); T1w-only runs do not.
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from tspo_bidsapp.anat import labels as L
from tspo_bidsapp.childproc import run_child

DEFAULT_SEED = 12345
DEFAULT_LESION_THRESHOLD = 0.3  # SAMSEG's default lesion posterior threshold


@dataclass(frozen=True)
class SamsegOutputs:
    """NIfTI outputs of one SAMSEG run (T1w grid), plus cost."""

    out_dir: str
    dseg: str  #: FreeSurfer-labelled segmentation (99 = lesion in lesion mode)
    t1w_preproc: str  #: bias-corrected T1w (SAMSEG scales WM to 110)
    flair_preproc: str | None  #: bias-corrected FLAIR (lesion mode)
    brain_mask: str
    lesion_probseg: str | None  #: lesion posterior (lesion mode)
    lesion_probseg_noshape: str | None  #: lesion posterior without the shape model (diagnostic)
    wall_s: float
    peak_rss_mb: float
    command: list[str]

    def as_dict(self) -> dict:
        return asdict(self)


def lesion_mode_available() -> bool:
    """True when tensorflow is importable (required by SAMSEG's lesion mode)."""
    return importlib.util.find_spec("tensorflow") is not None


def samseg_argv(
    t1w: str | Path,
    flair: str | Path | None,
    out_dir: str | Path,
    *,
    threads: int = 1,
    seed: int = DEFAULT_SEED,
    lesion_threshold: float = DEFAULT_LESION_THRESHOLD,
    save_unshaped: bool = False,
) -> list[str]:
    """Command line of the SAMSEG subprocess: lesion mode (FLAIR brighter) when FLAIR is given."""
    argv = [sys.executable, "-m", "tspo_bidsapp.anat.samseg_child"]
    inputs, modes = [str(t1w)], ["T1w"]
    if flair is not None:
        inputs.append(str(flair))
        modes.append("FLAIR")
    argv += ["-o", str(out_dir), "-i", *inputs, "-m", *modes, "--threads", str(int(threads))]
    if flair is not None:
        if save_unshaped:
            argv.insert(3, "--save-unshaped")
        argv += [
            "--lesion",
            "--lesion-mask-pattern", "0", "1",
            "--threshold", str(lesion_threshold),
            "--random-seed", str(int(seed)),
            "--pallidum-separate",
            "--save-posteriors", "Lesions",
        ]  # fmt: skip
    return argv


def thread_env(threads: int) -> dict[str, str]:
    """Environment limiting every threaded library of the subprocess to ``threads``."""
    n = str(max(int(threads), 1))
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS=n,
        OPENBLAS_NUM_THREADS=n,
        MKL_NUM_THREADS=n,
        ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS=n,
        TF_NUM_INTRAOP_THREADS=n,
        TF_NUM_INTEROP_THREADS="1",
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONHASHSEED="0",
    )
    return env


def run_samseg(
    t1w: str | Path,
    flair: str | Path | None,
    out_dir: str | Path,
    *,
    threads: int = 1,
    seed: int = DEFAULT_SEED,
    lesion_threshold: float = DEFAULT_LESION_THRESHOLD,
    save_unshaped: bool = False,
) -> SamsegOutputs:
    """Run SAMSEG on T1w (+ FLAIR, lesion mode) into ``out_dir``; return NIfTI outputs and cost.

    Raises ``RuntimeError`` with the end of SAMSEG's log when it fails, and when FLAIR is given but
    tensorflow (needed by the lesion mode) is not installed.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if flair is not None and not lesion_mode_available():
        raise RuntimeError(
            "SAMSEG lesion mode needs tensorflow (pip install tensorflow-cpu); "
            f"cannot segment lesions from FLAIR {flair}"
        )
    argv = samseg_argv(
        t1w, flair, out_dir, threads=threads, seed=seed,
        lesion_threshold=lesion_threshold, save_unshaped=save_unshaped,
    )  # fmt: skip
    log = out_dir / "samseg.log"
    t0 = time.monotonic()
    with open(log, "w") as fh:
        returncode = run_child(argv, stdout=fh, stderr=subprocess.STDOUT, env=thread_env(threads))
    wall = time.monotonic() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    if returncode != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-20:])
        raise RuntimeError(f"SAMSEG failed on {t1w} (exit {returncode}); log {log}:\n{tail}")
    outputs = collect_samseg_outputs(out_dir, argv, wall, peak_mb)
    (out_dir / "tspo_samseg_run.json").write_text(json.dumps(outputs.as_dict(), indent=2))
    return outputs


def _mgz_to_nifti(src: Path, dst: Path, dtype) -> Path:
    img = nib.load(str(src))
    data = np.asarray(img.dataobj).astype(dtype)
    out = nib.Nifti1Image(data, img.affine)
    out.header.set_xyzt_units("mm")
    out.set_qform(img.affine, 1)
    out.set_sform(img.affine, 1)
    nib.save(out, str(dst))
    return dst


def collect_samseg_outputs(
    out_dir: str | Path, command: list[str] | None = None, wall_s: float = float("nan"),
    peak_rss_mb: float = float("nan"),
) -> SamsegOutputs:  # fmt: skip
    """Convert SAMSEG's ``.mgz`` outputs in ``out_dir`` to NIfTI (``tspo_*.nii.gz``)."""
    out_dir = Path(out_dir)
    seg_mgz = out_dir / "seg.mgz"
    if not seg_mgz.exists():
        raise FileNotFoundError(f"{out_dir}: no seg.mgz (SAMSEG did not finish)")
    dseg = _mgz_to_nifti(seg_mgz, out_dir / "tspo_dseg.nii.gz", np.int16)
    seg_img = nib.load(str(dseg))
    brain = ~L.in_labels(np.asarray(seg_img.dataobj), L.NON_BRAIN)
    mask_path = out_dir / "tspo_brain_mask.nii.gz"
    nib.save(nib.Nifti1Image(brain.astype(np.uint8), seg_img.affine), str(mask_path))
    t1 = _mgz_to_nifti(
        out_dir / "T1w_bias_corrected.mgz", out_dir / "tspo_T1w_preproc.nii.gz", np.float32
    )
    flair = out_dir / "FLAIR_bias_corrected.mgz"
    flair_nii = (
        _mgz_to_nifti(flair, out_dir / "tspo_FLAIR_preproc.nii.gz", np.float32)
        if flair.exists()
        else None
    )
    prob = out_dir / "posteriors" / "Lesions.mgz"
    prob_nii = (
        _mgz_to_nifti(prob, out_dir / "tspo_lesion_probseg.nii.gz", np.float32)
        if prob.exists()
        else None
    )
    noshape = out_dir / "lesion_posterior_noshape.mgz"
    noshape_nii = (
        _mgz_to_nifti(noshape, out_dir / "tspo_lesion_probseg_noshape.nii.gz", np.float32)
        if noshape.exists()
        else None
    )
    return SamsegOutputs(
        out_dir=str(out_dir),
        dseg=str(dseg),
        t1w_preproc=str(t1),
        flair_preproc=str(flair_nii) if flair_nii else None,
        brain_mask=str(mask_path),
        lesion_probseg=str(prob_nii) if prob_nii else None,
        lesion_probseg_noshape=str(noshape_nii) if noshape_nii else None,
        wall_s=float(wall_s),
        peak_rss_mb=float(peak_rss_mb),
        command=list(command or []),
    )
