"""Image mosaics of the report (PNG, three planes, nilearn): overlays, contours, lesion montage.

PNGs are written at a low resolution and quantised to 256 colours so that a report stays a
few megabytes at most.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from tspo_bidsapp.writing import atomic_write  # noqa: E402

DPI = 60
N_CUTS = 5


def _save_png(display_or_fig, out: Path, side=(), dpi: int = DPI) -> Path:
    """Save a nilearn display or figure; ``side``: callables ``f(height_in) -> figure`` drawn
    at the same height and pasted to its right (colour bars, legends). Written atomically."""
    atomic_write(out, lambda tmp: _render_png(display_or_fig, tmp, side, dpi), suffix=".png")
    return out


def _render_png(display_or_fig, out: Path, side, dpi: int) -> None:
    display_or_fig.savefig(str(out), dpi=dpi)
    if hasattr(display_or_fig, "close"):
        display_or_fig.close()
    plt.close("all")
    with Image.open(out) as img:
        image = img.convert("RGB")
    for make in side:
        fig = make(image.height / dpi)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, facecolor=fig.get_facecolor())
        plt.close(fig)
        strip = Image.open(buf).convert("RGB")
        joined = Image.new("RGB", (image.width + strip.width, image.height), "black")
        joined.paste(image, (0, 0))
        joined.paste(strip, (image.width, 0))
        image = joined
    small = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(out, format="PNG", optimize=True)


def colorbar_strip(cmap: str, vmin: float, vmax: float, label: str):
    """A vertical colour bar (3 ticks, white on black) as a ``side`` figure of :func:`_save_png`."""

    def make(height_in: float):
        fig = plt.figure(figsize=(1.1, height_in), facecolor="black")
        cax = fig.add_axes((0.08, 0.1, 0.18, 0.8))
        norm = matplotlib.colors.Normalize(vmin, vmax)
        bar = fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), cax=cax)
        bar.set_ticks([vmin, 0.5 * (vmin + vmax), vmax])
        bar.ax.tick_params(colors="white", labelsize=9)
        bar.set_label(label, color="white", fontsize=10)
        return fig

    return make


def legend_strip(names: dict[int, str]):
    """Colour legend of a label overlay (tab20, as drawn by :func:`mosaic`)."""

    def make(height_in: float):
        from matplotlib.patches import Patch

        cmap = plt.get_cmap("tab20")
        handles = [Patch(color=cmap((i - 1) % 20), label=f"{i} {n}") for i, n in names.items()
                   if i > 0]  # fmt: skip
        fig = plt.figure(figsize=(3.6, height_in), facecolor="black")
        fig.legend(handles=handles, loc="center left", frameon=False, fontsize=10,
                   labelcolor="white", ncol=1 if len(handles) <= 22 else 2)  # fmt: skip
        return fig

    return make


def _mean_3d(path: Path) -> nib.Nifti1Image:
    """The image, or the mean over frames of a 4D image."""
    img = nib.load(str(path))
    if img.ndim == 4:
        data = np.asarray(img.dataobj, dtype=np.float32).mean(axis=-1)
        return nib.Nifti1Image(data, img.affine)
    return img


def _robust_vmax(img: nib.Nifti1Image, pct: float = 99.5) -> float:
    data = np.asarray(img.dataobj, dtype=np.float32)
    finite = data[np.isfinite(data) & (data != 0)]
    return float(np.percentile(finite, pct)) if finite.size else 1.0


def mosaic(
    background: Path,
    out: Path,
    *,
    overlay: Path | None = None,
    overlay_cmap: str = "hot",
    overlay_range: tuple[float, float] | None = None,
    threshold: float | None = None,
    contours: tuple[tuple[Path, str], ...] = (),
    contour_levels: dict[Path, list[float]] | None = None,
    label_overlay: Path | None = None,
    label_names: dict[int, str] | None = None,
    title: str | None = None,
    colorbar: bool = False,
    colorbar_label: str = "",
    overlay_alpha: float = 0.8,
    cut_coords: int = N_CUTS,
) -> Path:
    """Three-plane mosaic of ``background`` with an optional overlay, label map and contours.

    ``contours``: (image, colour) pairs; binary masks are outlined at 0.5, other images at the
    levels in ``contour_levels`` (default: 50 % of their robust maximum). ``label_names`` adds
    a colour legend of the label map; ``colorbar`` a colour bar of the overlay at the right.
    """
    from nilearn import plotting

    bg = _mean_3d(background)
    display = plotting.plot_anat(
        bg, display_mode="mosaic", cut_coords=cut_coords, annotate=False, draw_cross=False,
        black_bg=True, dim=-0.2, vmax=_robust_vmax(bg), title=title, colorbar=False,
    )  # fmt: skip
    if label_overlay is not None:
        labels = nib.load(str(label_overlay))
        data = np.asarray(labels.dataobj).astype(np.int32)
        data = np.where(data > 0, (data - 1) % 20 + 1, 0)
        display.add_overlay(nib.Nifti1Image(data.astype(np.float32), labels.affine),
                            cmap="tab20", transparency=0.45, threshold=0.5, vmin=0.5, vmax=20.5,
                            interpolation="nearest")  # fmt: skip
    if overlay is not None:
        img = _mean_3d(overlay)
        vmin, vmax = overlay_range or (0.0, _robust_vmax(img, 99.0))
        display.add_overlay(img, cmap=overlay_cmap, vmin=vmin, vmax=vmax, threshold=threshold,
                            transparency=overlay_alpha, colorbar=False)  # fmt: skip
    for path, colour in contours:
        img = _mean_3d(path)
        data = np.asarray(img.dataobj, dtype=np.float32)
        levels = (contour_levels or {}).get(path)
        if levels is None:
            binary = np.isin(np.unique(data[np.isfinite(data)]), (0, 1)).all()
            levels = [0.5] if binary else [0.5 * _robust_vmax(img)]
        display.add_contours(img, levels=levels, colors=[colour], linewidths=1.0)
    side = []
    if overlay is not None and colorbar:
        side.append(colorbar_strip(overlay_cmap, vmin, vmax, colorbar_label))
    if label_overlay is not None and label_names:
        side.append(legend_strip(label_names))
    return _save_png(display, out, side)


def lesion_centres(lesion_ids: np.ndarray) -> dict[int, tuple[int, int, int]]:
    """Voxel centre (rounded centroid) of every lesion id > 0 (vectorised with ndimage)."""
    from scipy import ndimage

    ids = np.unique(lesion_ids[lesion_ids > 0]).astype(int)
    centres = ndimage.center_of_mass(np.ones_like(lesion_ids, bool), lesion_ids, ids)
    return {int(i): tuple(int(round(c)) for c in cen) for i, cen in zip(ids, centres, strict=True)}


def lesion_montage(
    t1w: Path,
    lesion_dseg: Path,
    param_map: Path | None,
    chosen: dict[str, list[int]],
    out: Path,
    *,
    half_width_mm: float = 20.0,
    map_range: tuple[float, float] = (0.8, 2.0),
    map_label: str = "DVR",
) -> Path:
    """Axial crops through a few lesions of each phenotype: T1w, parametric map, lesion outline.

    ``chosen``: phenotype -> lesion ids. The map is resampled to the T1w grid when needed.
    """
    from nilearn.image import resample_to_img

    t1_img = nib.load(str(t1w))
    t1 = np.asarray(t1_img.dataobj, dtype=np.float32)
    les_img = nib.load(str(lesion_dseg))
    if les_img.shape[:3] != t1.shape or not np.allclose(les_img.affine, t1_img.affine):
        les_img = resample_to_img(les_img, t1_img, interpolation="nearest",
                                  force_resample=True, copy_header=True)  # fmt: skip
    lesions = np.asarray(les_img.dataobj).astype(np.int32)
    pmap = None
    if param_map is not None:
        map_img = nib.load(str(param_map))
        if map_img.shape[:3] != t1.shape or not np.allclose(map_img.affine, t1_img.affine):
            map_img = resample_to_img(map_img, t1_img, interpolation="linear",
                                      force_resample=True, copy_header=True)  # fmt: skip
        pmap = np.asarray(map_img.dataobj, dtype=np.float32)
    centres = lesion_centres(lesions)
    rows = [(ph, ids) for ph, ids in chosen.items() if ids]
    n_cols = max((len(ids) for _, ids in rows), default=1)
    fig, axes = plt.subplots(len(rows) or 1, n_cols, figsize=(2.8 * n_cols, 3.0 * max(len(rows), 1)),
                             squeeze=False, facecolor="black")  # fmt: skip
    zooms = t1_img.header.get_zooms()[:3]
    half = [max(3, int(round(half_width_mm / z))) for z in zooms[:2]]
    image = None
    for ax in axes.ravel():
        ax.axis("off")
    for r, (phenotype, ids) in enumerate(rows):
        for c, lesion in enumerate(ids):
            ax = axes[r, c]
            if lesion not in centres:
                continue
            x, y, z = centres[lesion]
            sl = (slice(max(x - half[0], 0), x + half[0] + 1),
                  slice(max(y - half[1], 0), y + half[1] + 1), z)  # fmt: skip
            crop = t1[sl]
            inside = crop[crop > 0]  # window the T1w on the crop, not the whole head
            lo, hi = np.percentile(inside, (1, 99.5)) if inside.size else (0.0, 1.0)
            ax.imshow(crop.T, cmap="gray", origin="lower", vmin=lo, vmax=hi)
            if pmap is not None:
                values = pmap[sl].T  # outside the brain mask: no colour (not black)
                values = np.ma.masked_where(~np.isfinite(values) | (values <= 0), values)
                image = ax.imshow(values, cmap="inferno", origin="lower", alpha=0.55,
                                  vmin=map_range[0], vmax=map_range[1])  # fmt: skip
            ax.contour((lesions[sl] == lesion).T.astype(float), levels=[0.5], colors="cyan",
                       linewidths=1.5, origin="lower")  # fmt: skip
            ax.set_title(f"{phenotype}\nlesion {lesion}", color="white", fontsize=8)
    if image is not None:
        cbar = fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6, pad=0.02)
        cbar.set_label(map_label, color="white")
        cbar.ax.tick_params(colors="white")
    return _save_png(fig, out, dpi=90)
