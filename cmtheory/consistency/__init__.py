"""Consistency models on tractable targets: the ideal (zero learning error) recursion of
consistency training, and neural CT, CD, Direct CM and sCM trained against exact teachers."""

from cmtheory.consistency.ideal import ct_coefficients, ideal_ct_1d, ideal_ct_deviation, ideal_ct_error, ideal_ct_gaussian, ideal_ct_radial
from cmtheory.consistency.networks import EDMConsistency, TimeMLP, TrigFlowConsistency
from cmtheory.consistency.training import (
    TrainingLog,
    block_means,
    consistency_sample,
    scm_sample,
    teacher_solve,
    train_consistency,
    train_ct_sequence,
    train_scm,
)

__all__ = [
    "ct_coefficients",
    "ideal_ct_1d",
    "ideal_ct_error",
    "ideal_ct_deviation",
    "ideal_ct_gaussian",
    "ideal_ct_radial",
    "EDMConsistency",
    "TimeMLP",
    "TrigFlowConsistency",
    "TrainingLog",
    "block_means",
    "consistency_sample",
    "scm_sample",
    "teacher_solve",
    "train_consistency",
    "train_ct_sequence",
    "train_scm",
]
