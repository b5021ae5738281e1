"""The participant level with arterial blood, end to end through the command line.

Synthetic noise-free PET with head motion and arterial-input kinetics (``kinetics="plasma"``):
BIDS blood recordings beside the PET, motion correction, co-registration and GTM partial-volume
correction in the loop; regional V_T of every plasma-input model against the known V_T
(measured, 6 min on 2 shared cores: 2TCM -0.2 to -0.9 %, Logan plasma and MA1 +0.9 to +1.4 %,
delay 1.5 s against a true 0).
"""

from __future__ import annotations

import json

import pandas as pd
import pytest


@pytest.mark.slow
def test_noise_free_vt_from_bids_blood(tmp_path):
    from tspo_bidsapp.cli.run import main
    from tspo_bidsapp.synthetic import generate_dataset, load_truth
    from tspo_bidsapp.synthetic.derivatives import write_anat_derivatives

    bids, truth_dir, anat = tmp_path / "bids", tmp_path / "truth", tmp_path / "anat"
    subjects = generate_dataset(bids, truth_dir, size="test", seed=42, n_subjects=1,
                                noise=False, kinetics="plasma")  # fmt: skip
    write_anat_derivatives(truth_dir, subjects, anat)
    out = tmp_path / "derivatives"
    code = main([str(bids), str(out), "participant", "-w", str(tmp_path / "work"),
                 "--nprocs", "2", "--derivatives", str(anat), "--pvc", "gtm",
                 "--pet-fwhm", "4.5", "--models", "srtm", "1tcm", "2tcm", "logan-plasma",
                 "ma1", "--vb", "0.05", "--logan-tstar", "20"])  # fmt: skip
    assert code == 0
    tissues = load_truth(truth_dir, "01").tissues.set_index("name")
    pet = out / "sub-01" / "pet"
    (inp,) = pet.glob("*_inputfunction.tsv")
    provenance = json.loads(inp.with_suffix(".json").read_text())["Provenance"]
    print("parent fraction:", provenance["ParentFraction"]["Model"])
    for model, entity in (("2TCM", "2TCM"), ("Logan-plasma", "LoganPlasma"), ("MA1", "MA1")):
        (kinpar,) = pet.glob(f"*_model-{entity}_*kinpar.tsv")
        table = pd.read_csv(kinpar, sep="\t", na_values="n/a").set_index("region")
        for region, name in (("NAWM", "nawm"), ("cortical-GM", "gm"), ("thalamus", "thalamus")):
            fitted, truth = table.loc[region, "VT"], tissues.loc[name, "plasma_VT"]
            print(f"{model} {region}: V_T {fitted:.4f}, true {truth:.4f}, "
                  f"delay {60 * table.loc[region, 'delay_min']:.1f} s")  # fmt: skip
            assert fitted == pytest.approx(truth, rel=0.02), (model, region)
    assert list(pet.glob("*_space-T1w_model-MA1_*meas-VT_mimap.nii.gz"))
    assert list(pet.glob("*_space-pet_model-MA1_*meas-VT_mimap.nii.gz"))
