"""Nipype interfaces that read BIDS inputs and write BIDS-Derivatives.

:class:`DerivativesDataSink` names a derivative after its BIDS source (keeping sub, ses, task,
acq, ce, trc, rec, run in BIDS order), writes it atomically under
``OUTPUT_DIR/sub-<label>/[ses-<label>/]<datatype>/`` and writes its JSON sidecar.
:class:`SummarizePETRun` loads a PET run, checks its frames against the sidecar and tabulates
the validated timing with the image-wide mean activity of every frame.
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

import nibabel as nib
import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    Str,
    TraitedSpec,
    isdefined,
    traits,
)

from tspo_bidsapp.exitcodes import InvalidBIDSError
from tspo_bidsapp.io.derivatives import DERIVED_ENTITIES, SOURCE_ENTITIES
from tspo_bidsapp.io.pet_sidecar import read_pet_sidecar
from tspo_bidsapp.writing import atomic_write, copy_file_atomic

DATATYPES = ("anat", "pet", "func", "dwi", "perf", "fmap", "beh")
_VALUE = re.compile(r"^[a-zA-Z0-9]+$")


def _split_ext(name: str) -> tuple[str, str]:
    match = re.match(r"^(.*?)(\.nii\.gz|\.tsv\.gz|\.[a-zA-Z0-9]+)?$", name)
    return match.group(1), match.group(2) or ""


def derivative_path(
    source_file: str | Path,
    *,
    suffix: str | None = None,
    extension: str,
    datatype: str | None = None,
    **entities: str | None,
) -> Path:
    """Relative path of a derivative of ``source_file``: ``sub-X/[ses-Y/]<datatype>/<name>``.

    Source entities are kept in BIDS order; ``entities`` (space, seg, label, model, ref, meas,
    desc) follow them, ``desc`` last. ``suffix`` defaults to the source's.
    """
    source = Path(source_file)
    stem, _ = _split_ext(source.name)
    parts = dict(p.split("-", 1) for p in stem.split("_") if "-" in p)
    if "sub" not in parts:
        raise ValueError(f"{source}: not a BIDS file name (no sub- entity)")
    unknown = set(entities) - set(DERIVED_ENTITIES)
    if unknown:
        raise ValueError(f"unknown derivative entities: {sorted(unknown)}")
    fields = [(k, parts[k]) for k in SOURCE_ENTITIES if k in parts]
    fields += [(k, entities[k]) for k in DERIVED_ENTITIES if entities.get(k)]
    for key, value in fields:
        if not _VALUE.match(str(value)):
            raise ValueError(f"entity '{key}' must be alphanumeric, got {value!r}")
    suffix = suffix or stem.rsplit("_", 1)[-1]
    if not _VALUE.match(suffix):
        raise ValueError(f"suffix must be alphanumeric, got {suffix!r}")
    if extension and not extension.startswith("."):
        extension = "." + extension
    datatype = datatype or (source.parent.name if source.parent.name in DATATYPES else "pet")
    folder = Path(f"sub-{parts['sub']}")
    if "ses" in parts:
        folder /= f"ses-{parts['ses']}"
    name = "_".join(f"{k}-{v}" for k, v in fields) + f"_{suffix}{extension}"
    return folder / datatype / name


def _atomic_write(target: Path, write) -> None:
    """Call ``write(tmp_path)`` then rename the temporary file onto ``target``."""
    atomic_write(target, write, suffix=f".tmp{_split_ext(Path(target).name)[1]}")


class _DerivativesDataSinkInputSpec(BaseInterfaceInputSpec):
    base_directory = traits.Directory(mandatory=True, desc="OUTPUT_DIR")
    source_file = Str(mandatory=True, desc="the BIDS input this derivative comes from")
    in_file = File(exists=True, mandatory=True, desc="the file to store")
    space = Str(desc="space- entity")
    desc = Str(desc="desc- entity")
    label = Str(desc="label- entity")
    seg = Str(desc="seg- entity")
    model = Str(desc="model- entity")
    ref = Str(desc="ref- entity")
    meas = Str(desc="meas- entity")
    suffix = Str(desc="suffix (default: the source's)")
    extension = Str(desc="extension (default: in_file's)")
    datatype = Str(desc="datatype folder (default: the source's)")
    meta_dict = traits.Dict(Str, traits.Any, desc="content of the JSON sidecar")
    sources = traits.List(Str, desc="further inputs, as BIDS URIs or paths (added to Sources)")
    spatial_reference = Str(desc="SpatialReference of the space- entity (a BIDS URI or name)")
    provenance = traits.Bool(False, usedefault=True, desc="add SoftwareVersions to the sidecar")


class _DerivativesDataSinkOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="the stored derivative")
    out_meta = File(desc="its JSON sidecar")


class DerivativesDataSink(SimpleInterface):
    """Store one derivative (and its JSON sidecar) under its BIDS-Derivatives name, atomically.

    Always runs, even when the work folder holds its result: the output folder may have been
    deleted or changed since, and a copy is cheap.
    """

    input_spec = _DerivativesDataSinkInputSpec
    output_spec = _DerivativesDataSinkOutputSpec
    _always_run = True

    def _run_interface(self, runtime):
        inputs = self.inputs
        in_file = Path(inputs.in_file)
        in_ext = _split_ext(in_file.name)[1]
        extension = inputs.extension if isdefined(inputs.extension) else in_ext
        entities = {
            k: getattr(inputs, k) for k in DERIVED_ENTITIES if isdefined(getattr(inputs, k))
        }
        rel = derivative_path(
            inputs.source_file,
            suffix=inputs.suffix if isdefined(inputs.suffix) else None,
            extension=extension,
            datatype=inputs.datatype if isdefined(inputs.datatype) else None,
            **entities,
        )
        out_file = Path(inputs.base_directory) / rel
        if extension in (".nii", ".nii.gz") and extension != in_ext:
            _atomic_write(out_file, lambda tmp: nib.save(nib.load(str(in_file)), str(tmp)))
        else:
            copy_file_atomic(in_file, out_file)
        self._results["out_file"] = str(out_file)
        if extension != ".json":
            meta = dict(inputs.meta_dict) if isdefined(inputs.meta_dict) else {}
            source = Path(inputs.source_file)
            anchor = next((p for p in source.parents if p.name.startswith("sub-")), None)
            if anchor is not None:
                meta.setdefault("Sources", [f"bids:raw:{source.relative_to(anchor.parent)}"])
            if isdefined(inputs.sources):
                extra = [bids_uri(s, inputs.base_directory) for s in inputs.sources]
                meta["Sources"] = list(dict.fromkeys(meta.get("Sources", []) + extra))
            if isdefined(inputs.spatial_reference):
                meta.setdefault("SpatialReference", inputs.spatial_reference)
            if inputs.provenance:
                meta.setdefault("SoftwareVersions", software_versions())
            out_meta = out_file.with_name(_split_ext(out_file.name)[0] + ".json")
            text = json.dumps(meta, indent=2, sort_keys=True, default=_json_default) + "\n"
            _atomic_write(out_meta, lambda tmp: tmp.write_text(text))
            self._results["out_meta"] = str(out_meta)
        return runtime


def bids_uri(path: str | Path, output_dir: str | Path | None = None) -> str:
    """A BIDS URI for ``path``: ``bids::<rel>`` inside ``output_dir``, ``bids:raw:<rel>`` for a
    file of the input dataset (relative to the folder holding its ``sub-*``), else unchanged."""
    text = str(path)
    if text.startswith("bids:"):
        return text
    path = Path(path)
    if output_dir is not None:
        with contextlib.suppress(ValueError):
            return f"bids::{path.absolute().relative_to(Path(output_dir).absolute())}"
    anchor = next((p for p in path.parents if p.name.startswith("sub-")), None)
    return f"bids:raw:{path.relative_to(anchor.parent)}" if anchor is not None else text


def software_versions() -> dict[str, str]:
    """Versions of tspo-bidsapp and the libraries whose numbers end up in the derivatives."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("tspo-bidsapp", "nipype", "nibabel", "numpy", "scipy", "antspyx", "samseg"):
        with contextlib.suppress(PackageNotFoundError):
            out[name] = version(name)
    return out


#: Derivative suffixes and folders the BIDS schema does not (yet) define, for ``.bidsignore``.
#: The validator matches folders written without a trailing slash, and one ``*`` per name.
BIDSIGNORE_PATTERNS = (
    "logs",
    "sub-*.html",
    "sub-*/figures",
    "*_tacs.tsv",
    "*_tacs.json",
    "*_kinpar.tsv",
    "*_kinpar.json",
    "*_mimap.nii.gz",
    "*_mimap.json",
    "*_morph.tsv",
    "*_morph.json",
    "*_xfm.txt",
    "*_xfm.json",
    "*_petref.nii.gz",
    "*_petref.json",
    "*_desc-confounds_timeseries.tsv",
    "*_desc-confounds_timeseries.json",
    "*_desc-ref_mask.*",
    "*_desc-anatsources_T1w.json",
    "*_inputfunction.tsv",
    "*_inputfunction.json",
    "group",
)


def write_bidsignore(output_dir: str | Path, patterns=BIDSIGNORE_PATTERNS) -> Path:
    """Add ``patterns`` missing from ``OUTPUT_DIR/.bidsignore`` (kept lines stay; atomic)."""
    target = Path(output_dir) / ".bidsignore"
    lines = target.read_text().splitlines() if target.exists() else []
    missing = [p for p in patterns if p not in lines]
    if missing or not target.exists():
        text = "\n".join(lines + missing) + "\n"
        _atomic_write(target, lambda tmp: tmp.write_text(text))
    return target


def write_dseg_tsv(dseg_file: str | Path, labels: dict[int, str]) -> Path:
    """Write the BIDS ``dseg.tsv`` (index, name; background omitted) beside ``dseg_file``."""
    dseg_file = Path(dseg_file)
    target = dseg_file.with_name(_split_ext(dseg_file.name)[0] + ".tsv")
    rows = ["index\tname"] + [f"{i}\t{n}" for i, n in sorted(labels.items()) if int(i) != 0]
    text = "\n".join(rows) + "\n"
    _atomic_write(target, lambda tmp: tmp.write_text(text))
    return target


def _json_default(value):
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def frame_means(data: np.ndarray) -> np.ndarray:
    """Mean of the finite voxels of every frame of a 3D/4D image (frames on the last axis)."""
    data = np.asarray(data, dtype=float)
    if data.ndim == 3:
        data = data[..., np.newaxis]
    flat = data.reshape(-1, data.shape[-1])
    finite = np.isfinite(flat)
    counts = finite.sum(axis=0)
    sums = np.where(finite, flat, 0.0).sum(axis=0)
    return np.divide(sums, counts, out=np.full(flat.shape[1], np.nan), where=counts > 0)


class _SummarizePETRunInputSpec(BaseInterfaceInputSpec):
    pet_file = File(exists=True, mandatory=True, desc="the PET image")
    sidecar_file = File(exists=True, mandatory=True, desc="its BIDS JSON sidecar")
    metadata = traits.Dict(Str, traits.Any, desc="extra items for the summary (genotype, flags)")


class _SummarizePETRunOutputSpec(TraitedSpec):
    out_tsv = File(exists=True, desc="frame_start, frame_end, frame_duration (s), image_mean")
    out_meta = traits.Dict(desc="validated timing, tracer and genotype flags")


class SummarizePETRun(SimpleInterface):
    """Check the PET frames against the sidecar and tabulate timing and per-frame mean."""

    input_spec = _SummarizePETRunInputSpec
    output_spec = _SummarizePETRunOutputSpec

    def _run_interface(self, runtime):
        img = nib.load(self.inputs.pet_file)
        if img.ndim not in (3, 4):
            raise InvalidBIDSError(
                f"must be 3D or 4D, has shape {img.shape}", path=img.get_filename()
            )
        n_frames = 1 if img.ndim == 3 else img.shape[3]
        sidecar = read_pet_sidecar(self.inputs.sidecar_file, n_frames=n_frames)
        means = frame_means(img.get_fdata(dtype=np.float32))
        timing = sidecar.timing
        table = np.column_stack([timing.start_s, timing.end_s, timing.duration_s, means])
        out_tsv = Path(runtime.cwd) / "frames.tsv"
        header = "frame_start\tframe_end\tframe_duration\timage_mean"
        np.savetxt(out_tsv, table, delimiter="\t", header=header, comments="", fmt="%.6g")
        meta = sidecar.summary()
        if isdefined(self.inputs.metadata):
            meta.update(self.inputs.metadata)
        meta["ImageMeanUnits"] = sidecar.units
        self._results["out_tsv"] = str(out_tsv)
        self._results["out_meta"] = meta
        return runtime
