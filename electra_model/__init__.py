"""ELECTRA pretraining and NER fine-tuning: the library every pipeline stage calls.

This package computes; it never imports prefect or dvc. Stages (``stages/``) read params and call it,
flows (``flows/``) run the stages through ``dvc repro``.
"""

from electra_model.errors import ElectraError

__all__ = ["ElectraError"]
