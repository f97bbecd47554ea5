"""A third task that lives in the test tree alone: sentence-pair regression ("how positive is the second text?",
a score in [0, 1]), to prove that a task is one plug-in: its spec, client, trainer, evaluator and export checks are
all here, and naming it in params.yaml (``task: pair_score``, ``plugins: [tests.pair_score_task:SPEC]``, and its
own ``pair_score:`` section) makes the pipeline's stages, registry and client serve it without a library file naming
it.

The model is transformers' sequence classifier with one output, saved under its own architecture name
(:class:`ElectraForPairScore`), so the export stage tells it from a classifier by its ``config.json``; the client
encodes pairs as the classifier does (:mod:`electra_model.client.classifier_encoding`) and reads one number per pair.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import onnxruntime as ort
import torch
from tokenizers import Tokenizer
from transformers import ElectraConfig, ElectraForSequenceClassification

from electra_model.client.classifier_encoding import INPUT_NAMES, encode, pad_batch
from electra_model.client.exported import CPU, OUTPUT_NAME, check_texts, open_model_dir, read_meta
from electra_model.client.spec import ClientSpec
from electra_model.config import Params, PositiveFloat, PositiveInt, Section
from electra_model.data.tokenizer import as_transformers_tokenizer, train_wordpiece
from electra_model.tasks.base import Finetuned, MetricsCallback
from electra_model.tasks.plugins import task_section
from electra_model.tasks.spec import TaskSpec
from tests.fixtures_classifier import FILLER, NEGATIVE, POSITIVE

NAME = "pair_score"
KIND = "pair_regression"  # the predictor kind model_meta.json records: the client dispatches on it
SUFFIX = ".scores.jsonl"
MAX_LEN = 24
SPLIT_SIZES = {"train": 160, "valid": 40, "test": 40}


class PairScoreParams(Section):
    """The task's own params.yaml section (``pair_score:``), validated when a stage starts."""

    epochs: PositiveInt
    learning_rate: PositiveFloat


class ElectraForPairScore(ElectraForSequenceClassification):
    """A one-output sequence classifier under its own name, so ``config.json`` says which task saved it."""


@dataclass(frozen=True)
class ScoredPair:
    text: str
    pair: str
    score: float


def make_split(count: int, seed: int) -> list[ScoredPair]:
    """Pairs whose score the second text's cue word decides (1.0 positive, 0.0 negative)."""
    rng = random.Random(seed)
    examples = []
    for _ in range(count):
        positive = rng.random() < 0.5
        words = rng.choices(FILLER, k=rng.randint(2, 6))
        words.insert(rng.randint(0, len(words)), rng.choice(POSITIVE if positive else NEGATIVE))
        examples.append(ScoredPair(" ".join(rng.choices(FILLER, k=3)), " ".join(words), float(positive)))
    return examples


def write_split(examples: Sequence[ScoredPair], path: Path) -> Path:
    path.write_text("".join(json.dumps(vars(e)) + "\n" for e in examples), encoding="utf-8")
    return path


def read_split(path: Path) -> list[ScoredPair]:
    return [ScoredPair(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]


def pearson(predicted: Sequence[float], gold: Sequence[float]) -> float:
    return float(np.corrcoef(np.asarray(predicted), np.asarray(gold))[0, 1])


def scores(predicted: Sequence[float], gold: Sequence[float]) -> dict[str, float]:
    diff = np.asarray(predicted) - np.asarray(gold)
    return {"pearson": pearson(predicted, gold), "mse": float((diff**2).mean())}


# -------------------------------------------------------------------------------------------------- the data half
@dataclass(frozen=True)
class PairScoreSplits:
    """The generated splits, written as the download stage writes a task's data."""

    task: ClassVar[str] = NAME
    seed: int

    def write(self, folder: Path) -> dict[str, Any]:
        for offset, (split, count) in enumerate(SPLIT_SIZES.items()):
            write_split(make_split(count, self.seed + offset), folder / f"{split}{SUFFIX}")
        return {split: {"examples": count} for split, count in SPLIT_SIZES.items()}


class PairScoreTask:
    """The task's data as the stages see it: generated from ``seed`` (the demo source is the only one it has)."""

    name = NAME
    title = "Pair score"
    valid_curve = ("valid_pearson",)

    def load_data(self, params: Params, cache_dir: Path) -> PairScoreSplits:
        return PairScoreSplits(params.seed)

    def split_path(self, folder: Path, split: str) -> Path:
        return Path(folder) / f"{split}{SUFFIX}"


# ------------------------------------------------------------------------------------------------ the client half
class PairScorePredictor:
    """One number per ``(text, pair)`` from the exported graph, without torch."""

    def __init__(self, session: ort.InferenceSession, tokenizer: Tokenizer, max_len: int, variant: str) -> None:
        self.session, self.tokenizer, self.max_len, self.variant = session, tokenizer, max_len, variant

    @classmethod
    def from_dir(
        cls, onnx_dir: Path | str, providers: Sequence[str] | None = None, variant: str | None = None,
        batch_size: int = 32, threads: int | None = None,
    ) -> PairScorePredictor:
        opened = open_model_dir(onnx_dir, KIND, INPUT_NAMES, providers, variant, threads)
        return cls(opened.session, opened.tokenizer, opened.max_len, opened.variant)

    def logits(self, texts: Sequence[str], pairs: Sequence[str]) -> np.ndarray:
        batch = pad_batch(encode(self.tokenizer, texts, pairs, self.max_len), self.tokenizer.token_to_id("[PAD]"))
        return self.session.run([OUTPUT_NAME], dict(batch))[0].astype(np.float32)

    def predict(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> list[float]:
        texts = check_texts(texts)
        return [float(value) for value in self.logits(texts, check_texts(pairs or [""] * len(texts)))[:, 0]]


CLIENT = ClientSpec(
    kind=KIND, load=PairScorePredictor.from_dir, inputs=INPUT_NAMES, logit_axes={0: "batch"}, takes_pairs=True,
    to_json=lambda score: {"score": score}, human=lambda score: [f"{score:.3f}"],
)


# ------------------------------------------------------------------------------------------- the training half
def torch_scores(model: ElectraForPairScore, tokenizer: Tokenizer, examples: Sequence[ScoredPair]) -> np.ndarray:
    batch = pad_batch(
        encode(tokenizer, [e.text for e in examples], [e.pair for e in examples], MAX_LEN),
        tokenizer.token_to_id("[PAD]"),
    )
    with torch.no_grad():
        return model(**{name: torch.from_numpy(array) for name, array in batch.items()}).logits.numpy()


class PairScoreTrainer:
    """Mean squared error on the train split for ``pair_score.epochs`` epochs (the split is tiny and clean)."""

    def finetune(self, params: Params, pretrained_dir: Path, data_dir: Path, on_log: MetricsCallback) -> Finetuned:
        section = task_section(params)
        tokenizer = Tokenizer.from_file(str(pretrained_dir / "tokenizer.json"))
        config = ElectraConfig.from_pretrained(pretrained_dir, num_labels=1)
        torch.manual_seed(params.seed)
        model = ElectraForPairScore(config)
        train = read_split(data_dir / f"train{SUFFIX}")
        valid = read_split(data_dir / f"valid{SUFFIX}")
        optimizer = torch.optim.AdamW(model.parameters(), lr=section.learning_rate)
        pad = tokenizer.token_to_id("[PAD]")
        step = 0
        for epoch in range(section.epochs):
            model.train()
            for first in range(0, len(train), 16):
                chunk = train[first : first + 16]
                batch = pad_batch(encode(tokenizer, [e.text for e in chunk], [e.pair for e in chunk], MAX_LEN), pad)
                logits = model(**{name: torch.from_numpy(array) for name, array in batch.items()}).logits[:, 0]
                loss = torch.nn.functional.mse_loss(logits, torch.tensor([e.score for e in chunk]))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                step += 1
                on_log(step, {"train_loss": loss.item(), "learning_rate": section.learning_rate})
            model.eval()
            valid_pearson = pearson(torch_scores(model, tokenizer, valid)[:, 0], [e.score for e in valid])
            on_log(step, {"epoch": epoch + 1, "valid_pearson": valid_pearson})
        return Finetuned(model, tokenizer, {"best_valid_pearson": valid_pearson, "epochs_run": section.epochs})


class PairScoreEvaluator:
    """Pearson and MSE of the torch model on a held-out split."""

    def evaluate(self, params: Any, model_dir: Path, split_path: Path, split: str, reports: Path,
                 confusion: Path) -> dict[str, Any]:
        model = ElectraForPairScore.from_pretrained(model_dir).eval()
        tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        examples = read_split(split_path)
        return scores(torch_scores(model, tokenizer, examples)[:, 0], [e.score for e in examples])


def save_pretrained_base(directory: Path) -> Path:
    """A random-init starting point of a tiny shape, with its tokenizer, as the pretrain stage lays one out."""
    tokenizer = train_wordpiece([" ".join(POSITIVE + NEGATIVE + FILLER)] * 5, vocab_size=200, min_frequency=1,
                                lowercase=False)
    ElectraConfig(
        vocab_size=tokenizer.get_vocab_size(), embedding_size=16, hidden_size=16, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=32, max_position_embeddings=64,
    ).save_pretrained(directory)
    as_transformers_tokenizer(tokenizer, MAX_LEN).save_pretrained(directory)
    return directory


# --------------------------------------------------------------------------------------------- the export half
class PairScoreExporter:
    """The torch side of the export: parity of every variant's scores with torch, and their Pearson correlation."""

    def load_model(self, model_dir: Path, **options: Any) -> ElectraForPairScore:
        return ElectraForPairScore.from_pretrained(model_dir, **options)

    def extra_files(self, model: ElectraForPairScore, labels: Sequence[str]) -> dict[str, Any]:
        return {}

    def read_split(self, path: Path) -> list[ScoredPair]:
        return read_split(path)

    def check_variants(self, model: ElectraForPairScore, onnx_dir: Path, examples: Sequence[ScoredPair],
                       batch_size: int) -> dict[str, dict[str, Any]]:
        gold = [e.score for e in examples]
        texts, pairs = [e.text for e in examples], [e.pair for e in examples]
        reference = None
        results = {}
        for name in read_meta(onnx_dir)["variants"]:
            predictor = PairScorePredictor.from_dir(onnx_dir, providers=[CPU], variant=name)
            if reference is None:
                reference = torch_scores(model, predictor.tokenizer, examples)
            values = predictor.logits(texts, pairs)
            results[name] = {
                "max_abs_logit_diff": float(np.abs(values - reference).max()),
                "labels_identical": bool(((values > 0.5) == (reference > 0.5)).all()),
                **scores(values[:, 0], gold),
            }
        return results

    def score_variants(self, onnx_dir: Path, examples: Sequence[ScoredPair], batch_size: int) -> dict[str, dict[str, float]]:
        gold = [e.score for e in examples]
        return {
            name: scores(PairScorePredictor.from_dir(onnx_dir, providers=[CPU], variant=name).predict(
                [e.text for e in examples], [e.pair for e in examples]), gold)
            for name in read_meta(onnx_dir)["variants"]
        }


SPEC = TaskSpec(
    name=NAME, client=CLIENT, split_suffix=SUFFIX, quality_metric="pearson", higher_is_better=True, scores=("pearson", "mse"),
    model_name="electra-pair-score", architectures=(ElectraForPairScore.__name__,), exporter=PairScoreExporter,
    data=PairScoreTask, trainer=PairScoreTrainer, evaluator=PairScoreEvaluator, params_model=PairScoreParams,
)
