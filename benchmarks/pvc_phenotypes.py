"""Lesion phenotypes per size bin and regional BPND, with and without partial-volume correction.

Science level, no nipype: realistic synthetic lesions (:mod:`tspo_bidsapp.synthetic.lesions`)
are planted in the 1-mm MNI anatomy (or the open_ms_data patient's expert lesion mask is used,
``--patient26``); SRTM kinetics of every tissue class ([11C]PBR28-like, HAB, 22 frames, 60 min)
fill a label image that is blurred by the PET's Gaussian PSF; spatially correlated noise of the
synthetic generator's level is added; then each correction (none, GTM regional, RBV, iterative
Yang) is followed by a voxel-wise SRTM basis-function fit and the phenotype rules; every
corrected method is also classified from its per-lesion corrected core and rim TACs (SRTM2 with
the pipeline's k2' rule, :mod:`tspo_bidsapp.quant.phenotypes_regional`; rows "regional-...").

    OMP_NUM_THREADS=1 python benchmarks/pvc_phenotypes.py --fwhm 5 --participants 3

Prints, per method and rule: phenotype accuracy per size bin (equivalent-sphere diameter
< 5, 5-10, > 10 mm) and overall; regional BPND against the truth; the voxel-wise PVC maps'
regional means against the regional GTM.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import ndimage

from tspo_bidsapp.io.timing import TSPO_60MIN_DURATIONS_S, FrameTiming
from tspo_bidsapp.kinetics import fit_srtm2_bfm, fit_srtm_bfm
from tspo_bidsapp.quant.phenotypes import PhenotypeRule, lesion_phenotypes
from tspo_bidsapp.quant.phenotypes_regional import (
    SHELL_REGION,
    dvr_of_tacs,
    lesion_tac_columns,
    regional_lesion_phenotypes,
)
from tspo_bidsapp.quant.pvc import FWHM_TO_SIGMA, gtm_correct
from tspo_bidsapp.quant.pvc_voxel import iterative_yang, lesion_tacs, pvc_regions, rbv_correct
from tspo_bidsapp.quant.regional import ModelSettings
from tspo_bidsapp.synthetic import anatomy as an
from tspo_bidsapp.synthetic import pet
from tspo_bidsapp.synthetic.lesions import CORE_LABEL, draw_lesion_specs, plant_lesions
from tspo_bidsapp.synthetic.parameters import BPND_BY_GROUP, tissue_parameters

HALF_LIFE_MIN = 20.4
BINS = ((0, 5, "<5mm"), (5, 10, "5-10mm"), (10, 1e9, ">10mm"))
# Segmentation seen by the correction (as the TSPO-MS regions): no truth rims or phenotypes.
SEG = {"csf": 1, "gm": 2, "wm": 3, "cereb": 4, "thal": 5, "plexus": 6, "lesion": 7,
       "peri03": 8, "peri36": 9, "ref": 10}  # fmt: skip
CLASS_TO_SEG = {an.CSF: 1, an.GM: 2, an.NAWM: 3, an.CEREBELLAR_GM: 4, an.THALAMUS: 5,
                an.CHOROID_PLEXUS: 6}  # fmt: skip
REGIONS = {"cortical-GM": (SEG["gm"], an.GM), "thalamus": (SEG["thal"], an.THALAMUS),
           "NAWM": (SEG["wm"], an.NAWM)}  # fmt: skip
NOISE_SMOOTH_MM = 2.0 * pet.NOISE_SMOOTH_VOXELS  # the generator's 2-mm PET noise correlation


def segmentation(tissue, ids, zooms):
    """TSPO-MS-like labels from the tissue classes: lesions, 0-3 / 3-6 mm shells, reference."""
    seg = np.zeros(tissue.shape, np.int32)
    for cls, lab in CLASS_TO_SEG.items():
        seg[tissue == cls] = lab
    wm = np.isin(tissue, an.WHITE_MATTER_CLASSES)
    seg[wm] = SEG["wm"]
    dist = ndimage.distance_transform_edt(ids == 0, sampling=zooms)
    seg[wm & (dist > 3) & (dist <= 6)] = SEG["peri36"]
    seg[wm & (dist > 0) & (dist <= 3)] = SEG["peri03"]
    seg[ids > 0] = SEG["lesion"]
    cereb = tissue == an.CEREBELLAR_GM
    seg[cereb & (ndimage.distance_transform_edt(cereb, sampling=zooms) > 2.0)] = SEG["ref"]
    return seg, wm


def simulate(tissue, params, timing, fwhm, rng, noise_level=1.0):
    """Blurred, noisy 4-D PET on the tissue grid (1 mm) and the true class TACs."""
    ref, tacs = pet.class_tacs(timing, params, 1.0)
    sigma = fwhm * FWHM_TO_SIGMA
    out = np.empty(tissue.shape + (timing.n_frames,), np.float32)
    for f in range(timing.n_frames):
        out[..., f] = ndimage.gaussian_filter(tacs[tissue, f].astype(np.float32), sigma)
    if noise_level > 0:
        sd = pet.noise_sd(out, timing, HALF_LIFE_MIN, noise_level)
        norm = np.sqrt(1.0 / (8 * np.pi**1.5 * NOISE_SMOOTH_MM**3))  # unit variance after blur
        for f in range(timing.n_frames):
            white = rng.standard_normal(tissue.shape, dtype=np.float32)
            out[..., f] += sd[..., f] * ndimage.gaussian_filter(white, NOISE_SMOOTH_MM) / norm
    return out, ref, tacs


def dvr_values(timing, ref_tac, data, k2prime=None):
    """SRTM (``k2prime`` None) or SRTM2 DVR of every TAC (basis functions)."""
    if k2prime is None:
        res = fit_srtm_bfm(timing.start_min, timing.end_min, ref_tac, data)
    else:
        res = fit_srtm2_bfm(timing.start_min, timing.end_min, ref_tac, data, k2prime)
    return np.asarray(res.maps["BPND"], float) + 1.0


def regional_k2prime(timing, ref_tac, tacs):
    """Median k2' (1/min) of basis-function SRTM fits of large regions (close to, not the same
    as, the pipeline's rule ``registry.reliable_srtm_k2prime`` of regional NLLS fits)."""
    res = fit_srtm_bfm(timing.start_min, timing.end_min, ref_tac, tacs)
    return float(np.nanmedian(res.maps["k2prime"]))


def size_bin(d):
    return next(name for lo, hi, name in BINS if lo <= d < hi)


def evaluate(tissue, ids, lesions, params, fwhm, rng, timing, zooms, args):
    truth_ph = {les.id: les.phenotype for les in lesions}
    size = {les.id: les.size_mm for les in lesions}
    data, _, _ = simulate(tissue, params, timing, fwhm, rng, args.noise)
    seg, wm = segmentation(tissue, ids, zooms)
    regions = pvc_regions(seg, ids, wm, zooms)
    near = ndimage.distance_transform_edt(ids == 0, sampling=zooms) <= 8.0
    sample = rng.random(tissue.shape) < args.sample
    fit_mask = near | (sample & np.isin(seg, [SEG["gm"], SEG["thal"], SEG["wm"]]))
    fit_mask &= seg > 0
    rows, regional = [], []
    truth_bp = {name: params[cls][2] for name, (_, cls) in REGIONS.items()}
    for ph in ("rim-active", "overall-active", "inactive"):
        truth_bp[f"core:{ph}"] = params[CORE_LABEL[ph]][2]
    for method in args.methods:
        t0 = time.perf_counter()
        if method in ("none", "gtm"):
            image = data
            gtm = gtm_correct(data, regions.labels, zooms, fwhm) if method == "gtm" else None
        elif method == "rbv":
            res = rbv_correct(data, regions.labels, zooms, fwhm)
            image, gtm = res.image, res.regional
        else:
            res = iterative_yang(data, regions.labels, zooms, fwhm)
            image, gtm = res.image, res.regional
        if gtm is None:  # uncorrected region means
            lab = regions.labels.ravel()
            n = np.bincount(lab)
            keep = np.flatnonzero(n)
            means = np.stack([np.bincount(lab, data[..., f].ravel())[keep] / n[keep]
                              for f in range(data.shape[-1])], axis=1)  # fmt: skip
            reg_ids, reg_tacs, reg_n = keep, means, n[keep]
        else:
            reg_ids, reg_tacs, reg_n = gtm.region_ids, gtm.tacs, gtm.voxels
        row_of = {int(r): k for k, r in enumerate(reg_ids)}
        ref_tac = reg_tacs[row_of[SEG["ref"]]]  # one reference for regions and maps

        def pooled(region_list, reg_tacs=reg_tacs, reg_n=reg_n, row_of=row_of):
            rr = [row_of[r] for r in region_list if r in row_of]
            w = reg_n[rr].astype(float)
            return (w[:, None] * reg_tacs[rr]).sum(0) / w.sum()

        reg_tac = {name: pooled([lab]) for name, (lab, _) in REGIONS.items()}
        for ph in ("rim-active", "overall-active", "inactive"):
            cores = [int(regions.lesion_core[les.id - 1]) for les in lesions if les.phenotype == ph]
            reg_tac[f"core:{ph}"] = pooled(cores)
        names = list(reg_tac)
        bp_reg = dvr_values(timing, ref_tac, np.stack([reg_tac[k] for k in names])) - 1.0
        k2p = regional_k2prime(timing, ref_tac, np.stack([reg_tac[k] for k in REGIONS]))
        # voxel maps (uncorrected for none/gtm): SRTM2 with the regional k2'
        dvr = np.full(tissue.shape, np.nan)
        dvr[fit_mask] = dvr_values(timing, ref_tac, image[fit_mask], k2p)
        for k, name in enumerate(names):
            if name.startswith("core:"):
                ph = name[5:]
                mask = np.isin(ids, [les.id for les in lesions if les.phenotype == ph])
            else:
                mask = (seg == REGIONS[name][0]) & fit_mask
            regional.append((method, name, truth_bp[name], bp_reg[k], np.nanmean(dvr[mask]) - 1))
        # phenotypes: per-lesion corrected regional TACs (every corrected method; SRTM2 with
        # the pipeline's k2' rule) and, for the voxel-wise methods, the maps
        if gtm is not None:
            les, voxels = lesion_tac_columns(lesion_tacs(regions, gtm))
            les[SHELL_REGION], voxels[SHELL_REGION] = (
                pooled([SEG["peri36"]]),
                int(reg_n[row_of[SEG["peri36"]]]),
            )
            d, info = dvr_of_tacs(timing, ref_tac, les, {k: reg_tac[k] for k in REGIONS},
                                  "SRTM2", ModelSettings(("SRTM2",)))  # fmt: skip
            for roc in args.rim_over_core:
                rule = PhenotypeRule(method="lesion", values="regional", correction=method,
                                     rim_over_core=roc)  # fmt: skip
                table = regional_lesion_phenotypes(
                    d, voxels, 1e-3, (d[SHELL_REGION], voxels[SHELL_REGION]), rule
                )
                for r in table.itertuples():
                    rows.append((method, f"regional-lesion-{roc:g}", r.lesion_id,
                                 size[r.lesion_id], truth_ph[r.lesion_id], r.phenotype))  # fmt: skip
        if method != "gtm":
            nawm = dvr[(seg == SEG["wm"]) & fit_mask]
            nawm = nawm[np.isfinite(nawm)]
            # controls-like voxel threshold: healthy NAWM DVR + 2 SD of this method's voxel noise
            thr = 1.0 + BPND_BY_GROUP[an.NAWM][0] + 2.0 * float(nawm.std())
            map_rules = [PhenotypeRule(thr, method="voxel", correction=method)] + [
                PhenotypeRule(method="lesion", correction=method, rim_over_core=roc)
                for roc in args.rim_over_core
            ]
            for rule in map_rules:
                table = lesion_phenotypes(dvr, ids, wm, zooms, rule)
                name = rule.method + ("" if rule.method == "voxel" else f"-{rule.rim_over_core:g}")
                for r in table.itertuples():
                    rows.append((method, name, r.lesion_id, size[r.lesion_id],
                                 truth_ph[r.lesion_id], r.phenotype))  # fmt: skip
        print(f"  {method}: {time.perf_counter() - t0:.1f} s, k2' {k2p:.3f}/min", flush=True)
    return rows, regional


def patient_lesions(anatomy, folder, rng):
    """The open_ms_data patient's expert lesion mask (MNI space) on the anatomy's grid.

    Lesions (connected components >= 10 mm^3) are written into the tissue map where they lie
    in white matter, with phenotypes drawn at the SPMS shares; rims are the white matter within
    2 mm (nearest lesion), perilesional WM 2-5 mm, as the generator plants them.
    """
    import nibabel as nib

    from tspo_bidsapp.anat.regions import label_lesions
    from tspo_bidsapp.quant.phenotypes import rim_labels, shell_labels
    from tspo_bidsapp.synthetic.lesions import PHENOTYPE_SHARE, PHENOTYPES, Lesion

    img = nib.load(f"{folder}/GOLD_STANDARD_N4_noneck_reduced_winsor_regtoFLAIR_regtoMNI.nii.gz")
    m = np.linalg.inv(img.affine) @ anatomy.affine
    mask = ndimage.affine_transform(
        (np.asarray(img.dataobj) > 0).astype(np.float32), m[:3, :3], offset=m[:3, 3],
        output_shape=anatomy.shape, order=1,
    ) > 0.5  # fmt: skip
    tissue = anatomy.labels.copy()
    wm = tissue == an.NAWM
    ids = label_lesions(mask & wm, (1.0, 1.0, 1.0), min_volume_mm3=10.0)
    n = int(ids.max())
    phen = rng.choice(PHENOTYPES, size=n, p=PHENOTYPE_SHARE["SPMS"])
    rims = rim_labels(ids, wm, (1.0, 1.0, 1.0), 2.0)
    peri = shell_labels(ids, wm, (1.0, 1.0, 1.0), 2.0, 5.0)
    tissue[peri > 0] = an.PERILESIONAL_WM
    core_of = np.array([0] + [CORE_LABEL[p] for p in phen])
    tissue[rims > 0] = core_of[rims[rims > 0]] + 1
    tissue[ids > 0] = core_of[ids[ids > 0]]
    counts = np.bincount(ids.ravel(), minlength=n + 1)
    lesions = []
    for k in range(1, n + 1):
        les = Lesion(k, str(phen[k - 1]), 0.0, (0.0, 0.0, 0.0), volume_ml=counts[k] / 1000.0)
        les.size_mm = float(np.cbrt(6.0 * counts[k] / np.pi))
        lesions.append(les)
    return tissue, ids, lesions


def report(rows, regional, fwhm):
    import pandas as pd

    df = pd.DataFrame(rows, columns=["method", "rule", "id", "size_mm", "truth", "call"])
    df["bin"] = df["size_mm"].map(size_bin)
    df["ok"] = df["truth"] == df["call"]
    print(f"\n== phenotype accuracy, FWHM {fwhm} mm (correct/n) ==")
    for (method, rule), g in df.groupby(["method", "rule"], sort=False):
        cells = [f"{name}: {g[g.bin == name].ok.mean():.0%} ({g[g.bin == name].ok.sum()}/"
                 f"{(g.bin == name).sum()})" for _, _, name in BINS]  # fmt: skip
        print(f"{method:5s} {rule:7s} overall {g.ok.mean():.0%} ({g.ok.sum()}/{len(g)}) | "
              + " | ".join(cells))  # fmt: skip
    reg = pd.DataFrame(regional, columns=["method", "region", "truth", "regional", "map_mean"])
    reg = reg.groupby(["method", "region"], sort=False).mean().reset_index()
    reg["regional_vs_truth_%"] = 100 * (reg.regional / reg.truth - 1)
    reg["map_vs_regional_%"] = 100 * (reg.map_mean / reg.regional - 1)
    reg["DVR_vs_truth_%"] = 100 * ((1 + reg.regional) / (1 + reg.truth) - 1)
    reg["mapDVR_vs_regional_%"] = 100 * ((1 + reg.map_mean) / (1 + reg.regional) - 1)
    print(f"\n== regional BPND, FWHM {fwhm} mm (mean over participants) ==")
    print(reg.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return df, reg


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fwhm", type=float, default=5.0)
    p.add_argument("--participants", type=int, default=3)
    p.add_argument("--group", default="SPMS")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--noise", type=float, default=1.0)
    p.add_argument("--sample", type=float, default=0.05, help="fraction of GM/WM voxels fitted")
    p.add_argument("--methods", nargs="+", default=["none", "gtm", "rbv", "iy"])
    p.add_argument(
        "--rim-over-core",
        nargs="+",
        type=float,
        default=[PhenotypeRule(method="lesion").rim_over_core],
        help="lesion rule (regional values and maps): rim/core - 1 above this -> rim-active",
    )
    p.add_argument("--patient26", help="open_ms_data patient folder (expert lesion mask)")
    p.add_argument("--save", help="write the per-lesion calls (and .regional) to this TSV")
    p.add_argument("--report", nargs="+", help="only print the summary of saved runs")
    args = p.parse_args(argv)
    if args.report:
        import pandas as pd

        calls = pd.concat([pd.read_csv(f, sep="\t") for f in args.report])
        reg = pd.concat([pd.read_csv(f + ".regional", sep="\t") for f in args.report])
        report(calls.iloc[:, :6].values.tolist(), reg.values.tolist(), args.fwhm)
        return
    rng = np.random.default_rng(args.seed)
    timing = FrameTiming.from_durations_s(TSPO_60MIN_DURATIONS_S)
    anatomy = an.build_anatomy(1.0)
    zooms = (1.0, 1.0, 1.0)
    rows, regional = [], []
    for k in range(args.participants if not args.patient26 else 1):
        if args.patient26:
            tissue, ids, lesions = patient_lesions(anatomy, args.patient26, rng)
        else:
            tissue, ids, lesions = plant_lesions(anatomy, draw_lesion_specs(args.group, rng), rng)
        params = tissue_parameters(args.group, "HAB", "PBR28", rng)
        print(f"participant {k + 1}: {len(lesions)} lesions, sizes "
              f"{sorted(round(les.size_mm, 1) for les in lesions)}", flush=True)  # fmt: skip
        r, g = evaluate(tissue, ids, lesions, params, args.fwhm, rng, timing, zooms, args)
        rows += r
        regional += g
    df, _ = report(rows, regional, args.fwhm)
    if args.save:
        import pandas as pd

        df.to_csv(args.save, sep="\t", index=False)
        cols = ["method", "region", "truth", "regional", "map_mean"]
        pd.DataFrame(regional, columns=cols).to_csv(args.save + ".regional", sep="\t", index=False)


if __name__ == "__main__":
    main()
