"""NER as a plug-in (:class:`electra_model.tasks.spec.TaskSpec`): CoNLL ``.txt`` splits, entity F1, registered as
``electra-ner``, served by :data:`electra_model.client.ner.NER`."""

from __future__ import annotations

from electra_model.client.ner import NER as NER_CLIENT
from electra_model.tasks.ner.card import ner_card
from electra_model.tasks.spec import Exporter, TaskSpec


def exporter() -> Exporter:
    """NER's export checks, imported only when an export runs (they need torch)."""
    from electra_model.tasks.ner.export_checks import NerExporter

    return NerExporter()


NER = TaskSpec(
    name="ner",
    client=NER_CLIENT,
    split_suffix=".txt",
    quality_metric="f1",
    higher_is_better=True,
    scores=("f1", "precision", "recall"),
    model_name="electra-ner",
    architectures=(
        "ElectraCRFForTokenClassification", "ElectraForTokenClassification", "RobertaPreLayerNormForTokenClassification"
    ),  # tasks/ner/heads.py
    exporter=exporter,
    card=ner_card,
)
