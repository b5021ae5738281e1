"""Which PET runs get the plasma-input models: their arterial input and their model list.

:func:`check_blood_inputs` runs before anything is written (all problems together, exit 16);
:func:`run_models` is what the per-run workflow uses.
"""

from __future__ import annotations

import logging

from tspo_bidsapp.config import Config
from tspo_bidsapp.exitcodes import InputProblems, InvalidBIDSError
from tspo_bidsapp.io.blood_input import ArterialSource, check_arterial_inputs, find_arterial_input
from tspo_bidsapp.kinetics.registry import INPUT_FUNCTION, model_names
from tspo_bidsapp.quant.regional import models_for_run

LOGGER = logging.getLogger("tspo_bidsapp")


def run_models(config: Config, run) -> tuple[tuple[str, ...], ArterialSource | None]:
    """The models a PET run fits and its arterial input (None when it fits no plasma model).

    Plasma-input models run where the run has blood; a run with blood but no plasma-input
    model in ``--models`` keeps its reference models (logged).
    """
    blood = find_arterial_input(run.pet_file, config.derivatives)
    models = models_for_run(config.models, blood is not None)
    if blood is not None and not set(models) & set(model_names(INPUT_FUNCTION)):
        LOGGER.info("%s has arterial blood; add e.g. --models 1tcm logan-plasma for V_T",
                    run.pet_file.name)  # fmt: skip
        blood = None
    return models, blood


def check_blood_inputs(config: Config, subjects) -> None:
    """Check every run's blood (reading, units, coverage, a PET for every recording) and that
    every run can fit at least one requested model; raises InputProblems (exit 16)."""
    runs = [run for subject in subjects for run in subject.pet_runs]
    sources = check_arterial_inputs(runs, config.derivatives,
                                    parent_fraction_model=config.parent_fraction_model)  # fmt: skip
    errors = []
    for run in runs:
        if run.sidecar.is_static:
            continue
        try:
            models_for_run(config.models, run.pet_file in sources)
        except ValueError as exc:
            errors.append(InvalidBIDSError(str(exc), path=run.pet_file, field="blood"))
    if errors:
        raise InputProblems(errors)
