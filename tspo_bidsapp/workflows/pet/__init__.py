"""PET preprocessing workflows: motion correction, co-registration to T1w, derivatives."""

from .coreg import init_pet_coreg_wf
from .hmc import init_pet_hmc_wf
from .outputs import init_pet_preproc_derivatives_wf

__all__ = ["init_pet_coreg_wf", "init_pet_hmc_wf", "init_pet_preproc_derivatives_wf"]
