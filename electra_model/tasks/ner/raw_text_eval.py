"""Scoring the path users call: plain text in, entities with character offsets out.

The evaluate stage scores the model on the dataset's own words; a user calls ``electra predict`` on text, which the
client cuts into words itself (:func:`electra_model.client.text_words.split_words`). Where the two cuts disagree
the user
gets a different, usually worse, model than the one that was measured. So each evaluation sentence is also
turned into the text a person would type (:func:`electra_model.client.text_words.detokenize`), run through the
client's
own :class:`~electra_model.client.ner.NerPredictor` (here on the torch model, since the ONNX export comes
later in
the pipeline; the export stage checks that ONNX and torch agree), and the entities' character spans are mapped back
onto the gold words and scored with the conlleval rules.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import ElectraForTokenClassification

from electra_model.tasks.ner.conll import Sentence
from electra_model.client.exported import OUTPUT_NAME
from electra_model.client.ner import Entity, NerPredictor
from electra_model.tasks.ner.crf import model_chain
from electra_model.client.text_words import WordSpan, detokenize, split_words


class TorchLogitsSession:
    """What :class:`NerPredictor` needs of an onnxruntime session (``run``), computed by the torch model."""

    def __init__(self, model: ElectraForTokenClassification) -> None:
        self.model = model.eval()

    def run(self, output_names: Sequence[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        if list(output_names) != [OUTPUT_NAME]:
            raise ValueError(f"only {OUTPUT_NAME!r} is computed, not {list(output_names)}")
        with torch.no_grad():
            inputs = {name: torch.from_numpy(array).to(self.model.device) for name, array in feed.items()}
            return [self.model(**inputs).logits.float().cpu().numpy()]


def torch_predictor(
    model: ElectraForTokenClassification, tokenizer: Tokenizer, max_len: int, batch_size: int
) -> NerPredictor:
    """The serving client's predictor over a torch model, with the same windows, batching and decoding (the CRF
    head's chain included, as the export stage hands it to the client)."""
    tokenizer.no_truncation()
    tokenizer.no_padding()
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    return NerPredictor(
        TorchLogitsSession(model), tokenizer, labels, max_len, batch_size, variant="torch", chain=model_chain(model)
    )


def tags_on_words(spans: Sequence[WordSpan], entities: Sequence[Entity]) -> list[str]:
    """IOB2 tags of the gold words from entities found in the text: a word belongs to the first entity whose
    character span overlaps it (a word the client cut in two can meet two entities); an entity's first word gets
    ``B-``, the rest ``I-``."""
    tags = ["O"] * len(spans)
    for entity in entities:
        claimed = [i for i, (_, start, end) in enumerate(spans) if start < entity.end and entity.start < end]
        for position, index in enumerate(i for i in claimed if tags[i] == "O"):
            tags[index] = f"{'B' if position == 0 else 'I'}-{entity.type}"
    return tags


@dataclass(frozen=True)
class RawTextResult:
    """Tags of the gold words from the raw-text path, and where the client's word cut differed from the data's."""

    tags: list[list[str]]
    sentences_split_differently: int
    disagreements: list[tuple[str, str, int]]  # (data's words, client's words, count), most frequent first


def raw_text_tags(predictor: NerPredictor, sentences: Sequence[Sentence], top: int = 20) -> RawTextResult:
    """Run every sentence as detokenized text through ``predictor`` and map its entities back to the gold words."""
    texts, spans = zip(*(detokenize(sentence.tokens) for sentence in sentences)) if sentences else ((), ())
    entities = predictor.predict(list(texts))
    differences: Counter[tuple[str, str]] = Counter()
    differing = 0
    for sentence, text in zip(sentences, texts):
        words = [word for word, _, _ in split_words(text)]
        if words != list(sentence.tokens):
            differing += 1
            differences.update(_differences(list(sentence.tokens), words))
    return RawTextResult(
        tags=[tags_on_words(s, e) for s, e in zip(spans, entities)],
        sentences_split_differently=differing,
        disagreements=[(gold, got, count) for (gold, got), count in differences.most_common(top)],
    )


def _differences(gold: list[str], got: list[str]) -> list[tuple[str, str]]:
    """The stretches where two word lists differ, as ``(gold words, client words)`` strings."""
    matcher = SequenceMatcher(a=gold, b=got, autojunk=False)
    return [
        (" ".join(gold[a1:a2]), " ".join(got[b1:b2]))
        for op, a1, a2, b1, b2 in matcher.get_opcodes()
        if op != "equal"
    ]
