"""What each int8 quantization choice costs in entity F1 and buys in batch-1 latency, on a fine-tuned NER model.

The export stage's int8 variant quantizes per output channel, only the transformer's MatMul and Attention nodes, and
keeps the classifier head in float. This measures those choices against the alternatives, from one export of the
model, in one process: onnxruntime's defaults (per-tensor scales, every supported operator including the embedding
Gathers), then each choice added in turn. F1 is scored on validation (what chose the settings) and test (reported)::

    python benchmarks/int8_variants.py --model /tmp/ner/pretrained/model \\
        --valid ../shared/data/conll2003/valid.txt.gz --test ../shared/data/conll2003/test.txt.gz

Prints a markdown table: valid and test entity F1 and batch-1 median latency (full ``max_len``, 2 threads) per
variant, the optimized fp32 graph first as the reference.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from onnxruntime.quantization.registry import IntegerOpsRegistry
from tokenizers import Tokenizer

from electra_model.config import load_params
from electra_model.tasks.ner.conll import Sentence, read_conll
from electra_model.export.build import export_onnx
from electra_model.export.choose import block_timings, latency_summary
from electra_model.export.optimize import INT8_OPERATORS, quantize_int8
from electra_model.client.exported import CPU, LABELS_FILE, OUTPUT_NAME, TOKENIZER_FILE, open_session
from electra_model.client.ner import NerPredictor, read_chain
from electra_model.tasks.ner.metrics import entity_scores

SETTINGS = {  # name -> (per_channel, operators, head_in_float)
    "int8 onnxruntime defaults": (False, tuple(IntegerOpsRegistry), False),
    "+ per channel": (True, tuple(IntegerOpsRegistry), False),
    "+ embeddings in float": (True, INT8_OPERATORS, False),
    "+ head in float (served)": (True, INT8_OPERATORS, True),
}


PARAMS = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
"""params.yaml: the export's opset and the fine-tuned model's input length."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="a fine-tuned model directory (save_pretrained)")
    parser.add_argument("--valid", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--max-len", type=int, default=PARAMS.finetune.max_seq_len)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=40)
    return parser.parse_args()


def f1(predictor: NerPredictor, sentences: list[Sentence]) -> float:
    tags = predictor.tag_words([list(sentence.tokens) for sentence in sentences])
    return 100 * entity_scores([sentence.tags for sentence in sentences], tags)["overall"]["f1"]


def main() -> None:
    args = parse_args()
    valid, test = read_conll(args.valid), read_conll(args.test)
    with tempfile.TemporaryDirectory() as scratch:
        onnx_dir = export_onnx(args.model, Path(scratch) / "onnx", PARAMS.export.opset, args.max_len, PARAMS.export.limits)
        labels = json.loads((onnx_dir / LABELS_FILE).read_text(encoding="utf-8"))
        chain = read_chain(onnx_dir, labels)  # a CRF head's, decoded with as the client does; None for softmax
        tokenizer = Tokenizer.from_file(str(onnx_dir / TOKENIZER_FILE))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        files = {"fp32 optimized (reference)": onnx_dir / "model.optimized.onnx"}
        for name, (per_channel, operators, head_in_float) in SETTINGS.items():
            files[name] = Path(scratch) / f"{len(files)}.onnx"
            quantize_int8(onnx_dir / "model.optimized.onnx", files[name], len(labels), per_channel, operators,
                          head_in_float)
        sessions = {name: open_session(path, [CPU], args.threads) for name, path in files.items()}
        vocab = tokenizer.get_vocab_size()
        ids = np.random.default_rng(0).integers(5, vocab, size=(1, args.max_len), dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        calls = {name: (lambda session=session: session.run([OUTPUT_NAME], feed)) for name, session in sessions.items()}
        latency = {name: latency_summary(seconds, 1) for name, seconds in block_timings(calls, args.runs).items()}
        print("| variant | valid F1 | test F1 | b1 median ms |")
        print("| --- | ---: | ---: | ---: |")
        for name, session in sessions.items():
            predictor = NerPredictor(session, tokenizer, labels, args.max_len, batch_size=64, variant=name, chain=chain)
            print(f"| {name} | {f1(predictor, valid):.2f} | {f1(predictor, test):.2f} | "
                  f"{latency[name]['median_ms']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
