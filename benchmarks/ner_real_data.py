"""CoNLL-2003 fine-tuning on real data: random initialisation vs our pretrained discriminator, same settings.

Reads the CoNLL-2003 files in place (IOB1, converted to IOB2 on reading), fine-tunes with early stopping on valid,
scores test with the conlleval rules and writes, under ``--out`` (keep it outside the repository):
``summary.json``, ``conlleval.txt``, ``predictions.txt`` (``word gold guess``, scorable with ``electra score``) and
``model/`` (the best checkpoint with its tokenizer, e.g. for ``inference_latency.py --f1-model``)::

    python benchmarks/ner_real_data.py --init random --model-dir PRETRAINED_DIR --out /tmp/ner/random
    python benchmarks/ner_real_data.py --init pretrained --model-dir PRETRAINED_DIR --out /tmp/ner/pretrained

``--init random`` takes the shape and tokenizer of ``--model-dir`` and none of its weights, so the two runs differ
in the initial weights only. The last line printed is ``test entity F1: X.XXXX``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from electra_model.config import FinetuneParams
from electra_model.conlleval import count_chunks, report, sequence_rows
from electra_model.data.conll import check_labels_known, read_conll
from electra_model.finetune import finetune, predict_tags
from electra_model.metrics import entity_scores
from electra_model.tokenizer import as_transformers_tokenizer

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "conll2003"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--init", required=True, help="random | pretrained | a transformers checkpoint directory")
    parser.add_argument("--model-dir", type=Path, required=True, help="our pretrained discriminator (shape, tokenizer)")
    parser.add_argument("--data", type=Path, default=DATA, help="folder with train/valid/test.txt.gz")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    parser.add_argument("--layer-lr-decay", type=float, default=0.8)
    parser.add_argument("--max-seq-len", type=int, default=128)
    parser.add_argument("--patience", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    splits = {name: read_conll(args.data / f"{name}.txt.gz") for name in ("train", "valid", "test")}
    for name in ("valid", "test"):
        check_labels_known(splits["train"], splits[name], args.data / f"{name}.txt.gz")
    params = FinetuneParams(
        init=args.init,
        max_seq_len=args.max_seq_len,
        batch_size=args.batch_size,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        layer_lr_decay=args.layer_lr_decay,
        patience=args.patience,
        device=args.device,
    )
    started = time.perf_counter()
    model, tokenizer, summary = finetune(
        params, args.seed, args.model_dir, splits["train"], splits["valid"], lambda step, metrics: None
    )
    train_s = time.perf_counter() - started
    model.save_pretrained(args.out / "model", safe_serialization=True)
    as_transformers_tokenizer(tokenizer, args.max_seq_len).save_pretrained(args.out / "model")
    test = splits["test"]
    predicted = predict_tags(model, tokenizer, test, args.max_seq_len, 64)
    gold = [sentence.tags for sentence in test]
    conlleval_text = report(count_chunks(sequence_rows(gold, predicted)))
    scores = entity_scores(gold, predicted)
    results = {
        "init": args.init,
        "model_dir": str(args.model_dir),
        "params": params.model_dump(),
        "seed": args.seed,
        "parameters": sum(p.numel() for p in model.parameters()),
        "finetune": summary,
        "train_wall_s": round(train_s, 1),
        "total_wall_s": round(time.perf_counter() - started, 1),
        "test_entity": scores,
    }
    (args.out / "summary.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    (args.out / "conlleval.txt").write_text(conlleval_text, encoding="utf-8")
    rows = [
        line
        for sentence, tags in zip(test, predicted)
        for line in (*(f"{w} {g} {p}" for w, g, p in zip(sentence.tokens, sentence.tags, tags)), "")
    ]
    (args.out / "predictions.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    print(conlleval_text, end="")
    print(json.dumps({key: results[key] for key in ("init", "finetune", "train_wall_s", "total_wall_s")}))
    print(f"test entity F1: {scores['overall']['f1']:.4f}")


if __name__ == "__main__":
    main()
