"""Synthetic TSPO-MS BIDS datasets with known ground truth (anatomy, lesions, kinetics, motion).

``generate_dataset`` writes the BIDS tree and, beside it, the truth that ``load_truth`` reads.
"""

from tspo_bidsapp.synthetic.dataset import generate_dataset
from tspo_bidsapp.synthetic.truth import SubjectTruth, load_truth

__all__ = ["SubjectTruth", "generate_dataset", "load_truth"]
