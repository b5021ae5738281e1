"""SVCA reference on the synthetic participant with classes built as the group level builds
them, before and after the class changes: precision of the selected voxels (fraction that is
cerebellar GM, the true reference tissue) and reference TAC error against the true curve.

The simulation has no blood vessels, so a venous sinus is planted: a 3-voxel-thick tube on
the midline just above the brain (outside the brain mask), carrying a whole-blood curve
(0.6 x Feng input, as behind the simulated reference) with 5 % noise. Grey-matter class =
cerebellar GM, as in ``tests/test_quant_synthetic.py``.

Scenarios (classes normalised per frame):
- voxel classes (test): mean normalised voxel TAC of class masks, CSF as the fast class;
- group before: region TACs, volume-weighted mean and between-region SD, choroid plexus blood;
- group, voxel SD, plexus: the participant level's brain voxel mean/SD, choroid plexus blood;
- group, voxel SD, vascular: voxel mean/SD and the vascular (early-peak) curve;
- group after: as above plus the fifth class, CSF (what the group level now writes).

Usage: python benchmarks/svca_classes_synthetic.py [WORK_DIR]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

from tspo_bidsapp.kinetics.simulate import feng_input, fine_grid, frame_average
from tspo_bidsapp.quant.svca import (
    frame_mean_sd,
    kinetic_classes_from_masks,
    normalise_curves,
    svca_normalisation,
    svca_reference,
    vascular_voxels,
)
from tspo_bidsapp.quant.tacs import mask_mean_tac
from tspo_bidsapp.synthetic import anatomy as an

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from synthetic_participant import synthetic_participant  # noqa: E402
from test_quant_synthetic import pet_on_t1w_grid  # noqa: E402


def plant_sinus(data, tissue, timing, zooms, rng):
    """A tube of whole-blood activity along y, 2-5 mm above the top of the brain."""
    brain = tissue > 0
    i0 = brain.shape[0] // 2
    cols = np.argwhere(brain[i0].any(axis=1)).ravel()
    t = fine_grid(float(timing.end_min[-1]))
    blood = frame_average(t, 0.6 * feng_input(t, delay_min=0.25), timing.start_min,
                          timing.end_min)  # fmt: skip
    tube = np.zeros(brain.shape, bool)
    lift = int(np.ceil(2.0 / zooms[2]))
    for j in cols[len(cols) // 5 : 4 * len(cols) // 5]:
        top = np.nonzero(brain[i0, j])[0].max()
        tube[i0 - 1 : i0 + 2, j, top + lift : top + lift + 3] = True
    tube &= ~brain
    data = data.copy()
    data[tube] = blood * (1 + rng.normal(0, 0.05, (int(tube.sum()), blood.size)))
    return data, tube


def between_region(data, tissue, labels):
    """Region TACs normalised by the volume-weighted mean and between-region SD."""
    tacs = np.array([mask_mean_tac(data, tissue == k) for k in labels])
    w = np.array([(tissue == k).sum() for k in labels], float)[:, None]
    w /= w.sum()
    mean = (w * tacs).sum(0)
    sd = np.sqrt((w * (tacs - mean) ** 2).sum(0))
    return {k: normalise_curves(tacs[n], mean, sd) for n, k in enumerate(labels)}


def evaluate(data, tissue, classes, true_ref):
    brain = tissue > 0
    gm = np.isin(tissue, (an.GM, an.CEREBELLAR_GM, an.THALAMUS))
    res = svca_reference(data, brain, gm, classes)
    sel = res.reference_mask
    precision = float(np.mean(tissue[sel] == an.CEREBELLAR_GM)) if sel.any() else np.nan
    err = np.abs(res.reference_tac[1:] / true_ref[1:] - 1)
    return int(sel.sum()), precision, float(np.median(err)), float(err.max())


def main(work: Path) -> None:
    truth, t1w, tissue = synthetic_participant(work)
    zooms = tuple(float(z) for z in t1w.header.get_zooms()[:3])
    brain = tissue > 0
    labels = sorted(int(k) for k in np.unique(tissue) if k > 0)
    rng = np.random.default_rng(0)
    print("scenario                       kind   voxels  precision  TAC err median / max")
    for kind, pet in (("clean", truth.pet_noisefree), ("noisy", truth.pet)):
        data = pet_on_t1w_grid(nib.load(pet), t1w, truth.pet_to_t1w)
        data, tube = plant_sinus(data, tissue, truth.timing, zooms, rng)
        norm = svca_normalisation(data, truth.timing.mid_min, brain, zooms)
        mean, sd = frame_mean_sd(data, brain)
        region = {k: mask_mean_tac(data, tissue == k) for k in labels}
        vox = {k: normalise_curves(v, mean, sd) for k, v in region.items()}
        old = between_region(data, tissue, labels)
        vasc = normalise_curves(np.asarray(norm["VascularTAC"]), mean, sd)
        order = (an.CEREBELLAR_GM, an.NAWM, an.CHOROID_PLEXUS, an.THALAMUS)
        masks = [tissue == c for c in (an.CEREBELLAR_GM, an.NAWM, an.CSF, an.THALAMUS)]
        scenarios = {
            "voxel classes (test)": kinetic_classes_from_masks(data, brain, masks),
            "group before": np.column_stack([old[k] for k in order]),
            "group, voxel SD, plexus": np.column_stack([vox[k] for k in order]),
            "group, voxel SD, vascular": np.column_stack(
                [vox[an.CEREBELLAR_GM], vox[an.NAWM], vasc, vox[an.THALAMUS]]
            ),
            "group after (vascular + CSF)": np.column_stack(
                [vox[an.CEREBELLAR_GM], vox[an.NAWM], vasc, vox[an.THALAMUS], vox[an.CSF]]
            ),
        }
        for name, classes in scenarios.items():
            n, prec, med, mx = evaluate(data, tissue, classes, truth.reference_tac)
            print(f"{name:30s} {kind:6s} {n:7d}  {prec:9.3f}  {med:.3f} / {mx:.3f}")
        found = vascular_voxels(data, truth.timing.mid_min, brain, zooms)
        check = norm["VascularCheck"]
        print(f"  vascular voxels {int(found.sum())}, {int((found & tube).sum())} in the planted "
              f"tube ({int(tube.sum())}); check passed {check['passed']}, late/peak "
              f"{check['late_to_peak']:.3f} vs brain {check['brain_late_to_peak']:.3f}")  # fmt: skip


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()))
