"""ONNX export of a fine-tuned model (NER or sequence classification) in four variants: one self-contained
serving directory.

The task is read from the model folder itself (``config.json``'s ``architectures``, which ``save_pretrained``
writes, matched against each registered :class:`~electra_model.tasks.spec.TaskSpec`), and its spec says what the
graph takes and gives: a classifier's ``input_ids``, ``attention_mask`` and ``token_type_ids`` (pairs are
``[CLS] a [SEP] b [SEP]``) to one row of label logits per text, NER's first two to logits per token.
``export_onnx`` writes the directory the torch-free clients load (:mod:`electra_model.client.loader` picks the
task's predictor from ``model_meta.json``, which names the ``task``, its ``inputs`` and ``labels``): ``tokenizer.json``, ``labels.json``, ``model_meta.json``, for
a CRF-head NER model ``crf_chain.json`` (its learned transition, start and end scores: the graphs output the
emissions, the client's Viterbi adds the chain), and the variants

    fp32       model.onnx            the TorchScript export (eager attention, so the optimizer can fuse it)
    optimized  model.optimized.onnx  onnxruntime's transformer optimizer (model_type 'bert'): fused Attention,
                                     SkipLayerNormalization, BiasGelu, EmbedLayerNormalization
    int8       model.int8.onnx       dynamic int8 quantization (per channel; head and embeddings float), for CPU
    fp16       model.fp16.onnx       the optimized graph in fp16 (inputs and outputs kept), for GPU

The fusing and quantizing are :mod:`electra_model.export.optimize`'s; which variant is served, and how well each
computes the model, is :mod:`electra_model.export.choose`'s. All of it runs in the DVC stage ``dvc repro export``::

    export_onnx("models/finetuned", "models/onnx", opset=17, max_len=128, limits=params.export.limits)
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from transformers import PreTrainedModel

from electra_model.client.exported import CPU, LABELS_FILE, META_FILE, MODEL_FILE, OUTPUT_NAME, TOKENIZER_FILE
from electra_model.client.limits import META_KEY as LIMITS_KEY
from electra_model.config import RequestLimitParams
from electra_model.errors import ElectraError
from electra_model.export.optimize import convert_fp16, optimize_graph, quantize_int8
from electra_model.io import atomic_dir, read_json, write_json
from electra_model.tasks.registry import spec_for_architectures
from electra_model.tasks.spec import TaskSpec

VARIANT_FILES = {
    "fp32": MODEL_FILE,
    "optimized": "model.optimized.onnx",
    "int8": "model.int8.onnx",
    "fp16": "model.fp16.onnx",
}
GPU_VARIANT = "fp16"


def model_spec(model_dir: Path | str) -> TaskSpec:
    """The task of the fine-tuned model in ``model_dir``, from the architectures its ``config.json`` was saved with:
    the model decides how it is exported, checked and served, so no param can disagree with it."""
    config = Path(model_dir) / "config.json"
    if not config.is_file():
        raise ElectraError(f"{model_dir}: no config.json, so no fine-tuned model here; run `dvc repro finetune`")
    return spec_for_architectures(read_json(config).get("architectures") or [], config)


def load_torch_model(model_dir: Path | str) -> PreTrainedModel:
    """The fine-tuned model, with the head it was trained with, in fp32 eval mode with eager attention: SDPA's fused
    kernel has no clean ONNX form."""
    exporter = model_spec(model_dir).exporter()
    return exporter.load_model(Path(model_dir), attn_implementation="eager", dtype=torch.float32).eval()


def label_list(model: PreTrainedModel) -> list[str]:
    """Labels in id order, the order of the logits' last axis."""
    return [model.config.id2label[index] for index in range(model.config.num_labels)]


def _trace(
    model: PreTrainedModel, path: Path, opset: int, inputs: Sequence[str], logit_axes: Mapping[int, str]
) -> None:
    """Export with the TorchScript exporter: unlike the dynamo exporter it gives an attention graph that
    onnxruntime's transformer optimizer can fuse. Its tracer warnings are silenced because the parity check, not
    the tracer, is what proves the graph right at other shapes."""
    sample_ids = (torch.arange(16, dtype=torch.int64) % model.config.vocab_size).reshape(2, 8)
    sample = {"input_ids": sample_ids, "attention_mask": torch.ones_like(sample_ids),
              "token_type_ids": (torch.arange(8) >= 5).long().expand(2, 8).contiguous()}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="Exporting aten::index operator", category=UserWarning)
        torch.onnx.export(
            model,
            tuple(sample[name] for name in inputs),  # forward's first parameters, in this order, for every head
            str(path),
            input_names=list(inputs),
            output_names=[OUTPUT_NAME],
            dynamic_axes={**{name: {0: "batch", 1: "sequence"} for name in inputs}, OUTPUT_NAME: dict(logit_axes)},
            opset_version=opset,
            dynamo=False,
        )


def _check_dynamic_axes(path: Path, inputs: Sequence[str], num_labels: int, per_token: bool) -> None:
    """Run the graph at two shapes unlike the traced one, so an exporter that froze a shape fails here, not in use."""
    session = ort.InferenceSession(str(path), providers=[CPU])
    for batch, length in ((1, 5), (3, 19)):
        feed = {name: np.ones((batch, length), dtype=np.int64) for name in inputs}
        shape = session.run([OUTPUT_NAME], feed)[0].shape
        expected = (batch, length, num_labels) if per_token else (batch, num_labels)
        if shape != expected:
            raise RuntimeError(f"exported graph gave logits of shape {shape} for input {(batch, length)}")


def _stamp(path: Path, properties: Mapping[str, Any]) -> None:
    """Record facts the client checks at load (vocabulary size, ...) inside the model file itself, so a model
    file that was swapped or paired with another tokenizer is refused rather than run."""
    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, {key: str(value) for key, value in properties.items()})
    onnx.save(model, str(path))


def export_onnx(
    model_dir: Path | str, out_dir: Path | str, opset: int, max_len: int, limits: RequestLimitParams
) -> Path:
    """Write the serving directory with every variant atomically, so a half-finished export is never mistaken for
    a model. ``model_meta.json`` serves fp32 on CPU until :func:`set_cpu_variant` records the choice; its ``task``
    and ``inputs`` tell the client which post-processing the graph needs, its ``limits`` what one request to a
    server of it may cost (:mod:`electra_model.client.limits`)."""
    model_dir = Path(model_dir)
    spec = model_spec(model_dir)
    inputs = spec.client.inputs
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
        paths = {name: staging / file for name, file in VARIANT_FILES.items()}
        _trace(model, paths["fp32"], opset, inputs, spec.client.logit_axes)
        _check_dynamic_axes(paths["fp32"], inputs, len(labels), per_token=spec.client.per_token)
        fused = optimize_graph(paths["fp32"], paths["optimized"], model, for_cpu=True)
        quantize_int8(paths["optimized"], paths["int8"], len(labels))
        gpu_graph = staging / "gpu-fused.onnx"
        optimize_graph(paths["fp32"], gpu_graph, model, for_cpu=False)
        convert_fp16(gpu_graph, paths["fp16"])
        gpu_graph.unlink()
        for name, path in paths.items():
            _stamp(path, {"vocab_size": model.config.vocab_size, "num_labels": len(labels), "variant": name})
        shutil.copyfile(tokenizer_file, staging / TOKENIZER_FILE)
        write_json(staging / LABELS_FILE, labels)
        for name, payload in spec.exporter().extra_files(model, labels).items():
            write_json(staging / name, payload)
        write_json(
            staging / META_FILE,
            {
                "task": spec.name,
                "predictor": spec.client.kind,
                "inputs": list(inputs),
                "max_len": max_len,
                "labels": labels,
                "opset": opset,
                "vocab_size": model.config.vocab_size,
                "fused_operators": fused,
                "variants": {name: {"file": file} for name, file in VARIANT_FILES.items()},
                "cpu_variant": "fp32",
                "gpu_variant": GPU_VARIANT,
                LIMITS_KEY: limits.model_dump(),
            },
        )
    return Path(out_dir)


