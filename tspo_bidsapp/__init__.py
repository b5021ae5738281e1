"""tspo-bidsapp: quantitative TSPO PET for multiple sclerosis, as a BIDS-App."""

__version__ = "0.1.0"
