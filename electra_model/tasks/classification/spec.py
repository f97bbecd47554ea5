"""Sequence classification as a plug-in (:class:`electra_model.tasks.spec.TaskSpec`): ``.jsonl`` splits, accuracy,
registered as ``electra-classifier``, served by :data:`electra_model.client.classifier.CLASSIFIER`."""

from __future__ import annotations

from electra_model.client.classifier import CLASSIFIER as CLASSIFIER_CLIENT
from electra_model.tasks.classification.card import classification_card
from electra_model.tasks.spec import Exporter, TaskSpec


def exporter() -> Exporter:
    """The classifier's export checks, imported only when an export runs (they need torch)."""
    from electra_model.tasks.classification.export_checks import ClassificationExporter

    return ClassificationExporter()


CLASSIFICATION = TaskSpec(
    name="classification",
    client=CLASSIFIER_CLIENT,
    split_suffix=".jsonl",
    quality_metric="accuracy",
    higher_is_better=True,
    scores=("accuracy", "macro_f1"),
    model_name="electra-classifier",
    architectures=("ElectraForSequenceClassification", "RobertaPreLayerNormForSequenceClassification"),
    exporter=exporter,
    card=classification_card,
)
