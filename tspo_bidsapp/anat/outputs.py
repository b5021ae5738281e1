"""Write the TSPO-MS region set and its tables from a whole-brain segmentation and a lesion mask."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

from tspo_bidsapp.anat import labels as L
from tspo_bidsapp.anat.regions import (
    DEFAULT_REGION_PARAMS,
    RegionParams,
    build_tspoms,
    lesion_table,
    region_volumes_ml,
)


def _save_like(data: np.ndarray, ref: nib.spatialimages.SpatialImage, path: Path, dtype) -> str:
    img = nib.Nifti1Image(np.asarray(data, dtype), ref.affine)
    img.set_qform(ref.affine, 1)
    img.set_sform(ref.affine, 1)
    img.header.set_xyzt_units("mm")
    nib.save(img, str(path))
    return str(path)


def write_tspoms(
    dseg: np.ndarray,
    lesion_mask: np.ndarray,
    reference: str | Path,
    out_dir: str | Path,
    params: RegionParams = DEFAULT_REGION_PARAMS,
    *,
    sources: dict | None = None,
) -> dict[str, str]:
    """Build the TSPO-MS regions on the grid of ``reference`` (T1w) and write them to ``out_dir``.

    Returns paths: ``tspoms_dseg``, ``tspoms_tsv``, ``lesion_ids`` (one id per lesion),
    ``lesion_mask`` (lesions kept after the size filter), ``lesion_tsv`` (per-lesion volumes,
    centres), ``morph_tsv`` (region volumes, mL) and ``regions_json`` (parameters, sources).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ref = nib.load(str(reference))
    zooms = tuple(float(z) for z in ref.header.get_zooms()[:3])
    tspoms, lesion_ids = build_tspoms(dseg, lesion_mask, zooms, params)
    out = {
        "tspoms_dseg": _save_like(tspoms, ref, out_dir / "tspoms_dseg.nii.gz", np.uint8),
        "lesion_ids": _save_like(lesion_ids, ref, out_dir / "lesions_dseg.nii.gz", np.int32),
        "lesion_mask": _save_like(lesion_ids > 0, ref, out_dir / "lesion_mask.nii.gz", np.uint8),
        "tspoms_tsv": str(L.write_dseg_tsv(out_dir / "tspoms_dseg.tsv", L.TSPOMS_LABELS)),
    }
    volumes = region_volumes_ml(tspoms, zooms, L.TSPOMS_LABELS)
    rows = ["index\tname\tvolume_ml\tvoxels"]
    voxel_ml = float(np.prod(zooms)) / 1000.0
    for idx, name in sorted(L.TSPOMS_LABELS.items()):
        rows.append(f"{idx}\t{name}\t{volumes[name]:.4f}\t{round(volumes[name] / voxel_ml)}")
    (out_dir / "tspoms_morph.tsv").write_text("\n".join(rows) + "\n")
    out["morph_tsv"] = str(out_dir / "tspoms_morph.tsv")
    lrows = ["lesion_id\tvolume_ml\tx_mm\ty_mm\tz_mm"]
    for r in lesion_table(lesion_ids, zooms, ref.affine):
        lrows.append(
            f"{r['lesion_id']}\t{r['volume_ml']:.4f}\t{r['x']:.1f}\t{r['y']:.1f}\t{r['z']:.1f}"
        )
    (out_dir / "lesions.tsv").write_text("\n".join(lrows) + "\n")
    out["lesion_tsv"] = str(out_dir / "lesions.tsv")
    meta = {
        "params": params.as_dict(),
        "connectivity_note": "lesion components use the given voxel connectivity",
        "n_lesions": int(lesion_ids.max()),
        "sources": sources or {},
    }
    (out_dir / "tspoms_regions.json").write_text(json.dumps(meta, indent=2, default=str))
    out["regions_json"] = str(out_dir / "tspoms_regions.json")
    return out
