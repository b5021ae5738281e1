"""Arterial blood: BIDS blood recordings and processed input functions for plasma-input models.

Plain numpy/scipy; nothing here knows about nipype.
"""

from tspo_bidsapp.blood.inputfunction import InputFunction

__all__ = ["InputFunction"]
