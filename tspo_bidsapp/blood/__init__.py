"""Arterial blood: BIDS blood recordings and processed input functions for plasma-input models.

Plain numpy/scipy; nothing here knows about nipype.
"""

from tspo_bidsapp.blood.find import find_blood_recordings, find_input_function
from tspo_bidsapp.blood.inputfunction import InputFunction
from tspo_bidsapp.blood.output import write_input_function
from tspo_bidsapp.blood.process import (
    check_coverage,
    input_function_from_recordings,
    process_blood,
)
from tspo_bidsapp.blood.recordings import (
    BloodRecording,
    read_blood_recording,
    read_input_function,
)
from tspo_bidsapp.blood.units import BloodDataError

__all__ = [
    "BloodDataError",
    "BloodRecording",
    "InputFunction",
    "check_coverage",
    "find_blood_recordings",
    "find_input_function",
    "input_function_from_recordings",
    "process_blood",
    "read_blood_recording",
    "read_input_function",
    "write_input_function",
]
