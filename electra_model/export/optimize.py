"""The graph work between the plain export and the served variants: onnxruntime's transformer fusions, dynamic
int8 quantization and the fp16 conversion (:func:`electra_model.export.build.export_onnx` calls them in turn)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.transformers import optimizer
from onnxruntime.transformers.fusion_options import FusionOptions
from onnxruntime.transformers.onnx_model import OnnxModel
from transformers import PreTrainedModel

from electra_model.errors import ElectraError


def fusion_options(for_cpu: bool) -> FusionOptions:
    """The transformer optimizer's BERT fusions; on CPU without the SkipLayerNormalization and
    EmbedLayerNormalization kernels, which were slower on CPU than what onnxruntime makes of the unfused ops
    (benchmarks/RESULTS.md, "Why the serving and export settings are what they are")."""
    options = FusionOptions("bert")
    if for_cpu:
        options.enable_skip_layer_norm = False
        options.enable_bias_skip_layer_norm = False
        options.enable_embed_layer_norm = False
    return options


def optimize_graph(source: Path, target: Path, model: PreTrainedModel, for_cpu: bool) -> dict[str, int]:
    """Fuse the graph with onnxruntime's transformer optimizer and return the fused-operator counts.

    The fusion is pattern matching on the exported graph, so a change of exporter, opset or attention
    implementation can silently leave attention unfused (a plain, slower graph that still passes parity); one
    fused Attention node per layer is therefore required, not hoped for.
    """
    logging.getLogger("onnxruntime.transformers").setLevel(logging.WARNING)
    fused = optimizer.optimize_model(
        str(source),
        model_type="bert",
        num_heads=model.config.num_attention_heads,
        hidden_size=model.config.hidden_size,
        optimization_options=fusion_options(for_cpu),
    )
    counts = {name: int(count) for name, count in fused.get_fused_operator_statistics().items() if count}
    layers = model.config.num_hidden_layers
    if counts.get("Attention", 0) != layers:
        raise ElectraError(
            f"onnxruntime's optimizer fused {counts.get('Attention', 0)} Attention nodes for {layers} layers "
            f"(fused: {counts}); export.opset must be 14-20 and the model exported with eager attention"
        )
    fused.save_model_to_file(str(target))
    return counts


INT8_OPERATORS = ("MatMul", "Attention")
"""What int8 quantizes: the transformer's matrix products. The embedding lookups (Gather) stay float: quantizing
them saves no compute (a lookup is a copy) and costs accuracy (benchmarks/RESULTS.md, "int8 that keeps quality")."""


def classifier_nodes(model: onnx.ModelProto, num_labels: int) -> list[str]:
    """Names of the MatMul nodes that project onto the labels (their weight is ``hidden x num_labels``): the task
    head, kept in float because its errors go straight into the logits that pick the tags."""
    shapes = {tensor.name: list(tensor.dims) for tensor in model.graph.initializer}
    return [
        node.name
        for node in model.graph.node
        if node.op_type == "MatMul" and any(shapes.get(name, [None])[-1] == num_labels for name in node.input)
    ]


def quantize_int8(
    source: Path,
    target: Path,
    num_labels: int,
    per_channel: bool = True,
    operators: Sequence[str] = INT8_OPERATORS,
    head_in_float: bool = True,
) -> None:
    """Dynamic int8 (weights int8, activations quantized per call): no calibration data needed, and the CPU
    kernels for the fused Attention and MatMul nodes exist. By default weights are quantized per output channel
    (one scale per column instead of one per matrix, so a column of small weights keeps its resolution) and the
    classifier head and the embedding lookups stay float (:data:`INT8_OPERATORS`); the other settings exist for
    benchmarks/int8_variants.py, which measures what each choice costs. ``DefaultTensorType`` covers the outputs of
    fused contrib ops, whose types onnx shape inference cannot infer.

    Weights use 7 bits (``reduce_range``): on x86 CPUs without VNNI (AVX2 only) onnxruntime's u8 x s8 kernel sums
    pairs of products in 16 bits, which saturates with full-range int8 weights; a model is exported once and served
    anywhere, so it must be right on those CPUs too (measured: logits off by 0.51 instead of < 0.1 on an AVX2 EPYC)."""
    logging.disable(logging.WARNING)  # the quantizer logs a generic pre-processing tip on the root logger
    try:
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            reduce_range=True,
            op_types_to_quantize=list(operators),
            nodes_to_exclude=classifier_nodes(onnx.load(str(source)), num_labels) if head_in_float else [],
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        logging.disable(logging.NOTSET)


def convert_fp16(source: Path, target: Path) -> None:
    """fp16 weights and compute with fp32 inputs and outputs, so a GPU client feeds and reads the same arrays."""
    model = OnnxModel(onnx.load(str(source)))
    model.convert_float_to_float16(keep_io_types=True)
    model.save_model_to_file(str(target))
