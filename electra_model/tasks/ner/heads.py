"""The NER heads and which one a saved model has: chosen by ``finetune.head`` when training, read back from the
model folder's ``config.json`` (``architectures``, which ``save_pretrained`` writes) when evaluating, exporting or
serving, so that every later stage decodes the model as it was trained without a param that could disagree.

    crf      :class:`electra_model.tasks.ner.crf.ElectraCRFForTokenClassification` (the default), decoded with its
             learned transitions and the IOB2 constraints
    softmax  transformers' ElectraForTokenClassification, decoded with the IOB2 constraints alone
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from transformers import AutoConfig, ElectraForTokenClassification, PretrainedConfig, PreTrainedModel

from electra_model.errors import ElectraError
from electra_model.tasks.checkpoints import for_body
from electra_model.tasks.ner.crf import ElectraCRFForTokenClassification

ModelT = TypeVar("ModelT", bound=PreTrainedModel)

HEADS: dict[str, type[ElectraForTokenClassification]] = {
    "crf": ElectraCRFForTokenClassification,
    "softmax": ElectraForTokenClassification,
}


PRE_LN_SOFTMAX = "RobertaPreLayerNormForTokenClassification"
"""The softmax head on the pre-LN backbone (``pretrain.backbone: roberta_prelayernorm``): transformers' own class."""


def head_name(config: PretrainedConfig, where: Path) -> str:
    """The head a saved config was written by, from its ``architectures``."""
    by_class = {model_class.__name__: name for name, model_class in HEADS.items()} | {PRE_LN_SOFTMAX: "softmax"}
    found = [by_class[name] for name in config.architectures or [] if name in by_class]
    if not found:
        raise ElectraError(
            f"{where / 'config.json'}: architectures {config.architectures} is not a fine-tuned NER model "
            f"({', '.join(by_class)}); point at the folder the finetune stage wrote (models/finetuned)"
        )
    return found[0]


def load_finetuned(model_dir: Path | str, **options: Any) -> ElectraForTokenClassification:
    """The fine-tuned NER model with the head it was saved with (see :func:`load_saved`)."""
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise ElectraError(f"{model_dir}: no config.json, so no fine-tuned model here; run `dvc repro finetune`")
    config = AutoConfig.from_pretrained(model_dir)
    return load_saved(model_dir, for_body(HEADS[head_name(config, model_dir)], config, model_dir), **options)


def load_saved(model_dir: Path, model_class: type[ModelT], **options: Any) -> ModelT:
    """A saved model of ``model_class`` with every tensor read from the folder: a tensor that would be initialised
    anew (a chain score a plain class would not know, or one missing from the file) is an error, not a silently
    re-initialised or dropped weight. ``options`` go to ``from_pretrained``."""
    model, info = model_class.from_pretrained(model_dir, output_loading_info=True, **options)
    mismatched = [entry[0] if isinstance(entry, tuple) else entry for entry in info.get("mismatched_keys", [])]
    wrong = sorted({*info.get("missing_keys", []), *mismatched, *info.get("unexpected_keys", [])})
    if wrong:
        raise ElectraError(
            f"{model_dir}: the saved weights do not fit its {model_class.__name__} head ({len(wrong)} tensors "
            f"missing, unexpected or of another shape: {', '.join(wrong[:8])}{' ...' if len(wrong) > 8 else ''}); "
            "re-run `dvc repro finetune`"
        )
    return model
