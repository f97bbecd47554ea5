"""ONNX export of the fine-tuned NER model, and the parity check that proves the export computes what torch does.

``export_onnx`` writes one self-contained serving directory -- ``model.onnx``, ``tokenizer.json``, ``labels.json``
and ``model_meta.json`` -- which :mod:`electra_model.inference` loads with onnxruntime alone. ``check_parity`` runs
torch and onnxruntime on the same evaluation sentences; its result (logit difference, label agreement, the ONNX
model's entity scores) is what the registry gate reads. Both run inside the DVC stage ``dvc repro export``::

    export_onnx("models/ner", "models/onnx", opset=17, max_len=128)
    check_parity("models/ner", "models/onnx", read_conll("data/ner/test.txt"), batch_size=64, atol=1e-3)
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from transformers import ElectraForTokenClassification

from electra_model.data.conll import Sentence
from electra_model.errors import ElectraError
from electra_model.inference import LABELS_FILE, META_FILE, MODEL_FILE, TOKENIZER_FILE
from electra_model.io import atomic_dir, read_json, write_json
from electra_model.metrics import entity_scores
from electra_model.ner_encoding import encode_words, pad_batch, word_tags
from electra_model.tokenizer import PAD, load_backend_tokenizer

INPUT_NAMES = ["input_ids", "attention_mask"]
OUTPUT_NAME = "logits"
DYNAMIC_AXES = {name: {0: "batch", 1: "sequence"} for name in [*INPUT_NAMES, OUTPUT_NAME]}
CPU = ["CPUExecutionProvider"]


def load_torch_model(model_dir: Path | str) -> ElectraForTokenClassification:
    """The fine-tuned model in fp32 eval mode with eager attention: SDPA's fused kernel has no clean ONNX form."""
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise ElectraError(f"{model_dir}: no config.json, so no fine-tuned model to export; run `dvc repro finetune`")
    model = ElectraForTokenClassification.from_pretrained(model_dir, attn_implementation="eager", dtype=torch.float32)
    return model.eval()


def label_list(model: ElectraForTokenClassification) -> list[str]:
    """Labels in id order, the order of the logits' last axis."""
    return [model.config.id2label[index] for index in range(model.config.num_labels)]


def _trace(model: ElectraForTokenClassification, path: Path, opset: int) -> None:
    """Export with the TorchScript exporter: unlike the dynamo exporter it gives an attention graph that
    onnxruntime's transformer optimizer can fuse. Its tracer warnings are silenced because the parity check, not
    the tracer, is what proves the graph right at other shapes."""
    sample_ids = (torch.arange(16, dtype=torch.int64) % model.config.vocab_size).reshape(2, 8)
    sample_mask = torch.ones_like(sample_ids)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="Exporting aten::index operator", category=UserWarning)
        torch.onnx.export(
            model,
            (sample_ids, sample_mask),
            str(path),
            input_names=INPUT_NAMES,
            output_names=[OUTPUT_NAME],
            dynamic_axes=DYNAMIC_AXES,
            opset_version=opset,
            dynamo=False,
        )


def _check_dynamic_axes(path: Path, num_labels: int) -> None:
    """Run the graph at two shapes unlike the traced one, so an exporter that froze a shape fails here, not in use."""
    session = ort.InferenceSession(str(path), providers=CPU)
    for batch, length in ((1, 5), (3, 19)):
        feed = {name: np.ones((batch, length), dtype=np.int64) for name in INPUT_NAMES}
        shape = session.run([OUTPUT_NAME], feed)[0].shape
        if shape != (batch, length, num_labels):
            raise RuntimeError(f"exported graph gave logits of shape {shape} for input {(batch, length)}")


def export_onnx(model_dir: Path | str, out_dir: Path | str, opset: int, max_len: int) -> Path:
    """Write the serving directory atomically, so a half-finished export is never mistaken for a model."""
    model_dir = Path(model_dir)
    model = load_torch_model(model_dir)
    if max_len > model.config.max_position_embeddings:
        raise ElectraError(
            f"finetune.max_seq_len {max_len} exceeds the model's {model.config.max_position_embeddings} positions "
            f"({model_dir / 'config.json'}); lower finetune.max_seq_len"
        )
    tokenizer_file = model_dir / TOKENIZER_FILE
    if not tokenizer_file.is_file():
        raise ElectraError(f"{tokenizer_file}: tokenizer file not found next to the model; re-run `dvc repro finetune`")
    labels = label_list(model)
    with atomic_dir(out_dir) as staging:
        _trace(model, staging / MODEL_FILE, opset)
        _check_dynamic_axes(staging / MODEL_FILE, len(labels))
        shutil.copyfile(tokenizer_file, staging / TOKENIZER_FILE)
        write_json(staging / LABELS_FILE, labels)
        write_json(staging / META_FILE, {"max_len": max_len, "labels": labels, "opset": opset})
    return Path(out_dir)


def check_parity(
    model_dir: Path | str, onnx_dir: Path | str, sentences: Sequence[Sentence], batch_size: int, atol: float
) -> dict[str, Any]:
    """Compare torch and onnxruntime logits on real evaluation inputs (padding included, where export bugs hide)
    and score the ONNX model, since that model, not the torch one, is what gets registered and served.

    ``parity_passed`` needs every real token's logits within ``atol`` and identical argmax labels.
    """
    if not sentences:
        raise ElectraError("the parity check got no evaluation sentences; check the evaluation split in data/ner")
    onnx_dir = Path(onnx_dir)
    model = load_torch_model(model_dir)
    meta = read_json(onnx_dir / META_FILE)
    tokenizer = load_backend_tokenizer(onnx_dir)
    session = ort.InferenceSession(str(onnx_dir / MODEL_FILE), providers=CPU)
    id2label = dict(enumerate(meta["labels"]))
    encoded = [encode_words(tokenizer, sentence.tokens, meta["max_len"]) for sentence in sentences]
    max_diff, identical, predicted = 0.0, True, []
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start : start + batch_size]
        batch = pad_batch(chunk, tokenizer.token_to_id(PAD))
        feed = {name: batch[name] for name in INPUT_NAMES}
        onnx_logits = session.run([OUTPUT_NAME], feed)[0]
        with torch.no_grad():
            torch_logits = model(**{name: torch.from_numpy(array) for name, array in feed.items()}).logits.numpy()
        real = feed["attention_mask"].astype(bool)
        max_diff = max(max_diff, float(np.abs(onnx_logits - torch_logits)[real].max()))
        identical = identical and bool((onnx_logits.argmax(-1) == torch_logits.argmax(-1))[real].all())
        predicted.extend(word_tags(onnx_logits, chunk, id2label))
    overall = entity_scores([sentence.tags for sentence in sentences], predicted)["overall"]
    return {
        "max_abs_logit_diff": max_diff,
        "labels_identical": identical,
        "parity_passed": max_diff <= atol and identical,
        "parity_atol": atol,
        "f1": overall["f1"],
        "precision": overall["precision"],
        "recall": overall["recall"],
        "sentences": len(sentences),
    }
