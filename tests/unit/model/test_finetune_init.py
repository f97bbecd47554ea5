"""``finetune.init`` from published checkpoints, offline: a ``save_pretrained`` directory (with a ``tokenizer.json``,
or with only a WordPiece ``vocab.txt`` as google's ELECTRA checkpoints have) and a Hugging Face model id (read from
the local hub cache, or refused quickly and clearly where the hub cannot be reached), for both tasks. The checkpoint's
own tokenizer, not ours, must encode the data and be the one a fine-tuned model is saved with."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from huggingface_hub import constants
from tokenizers import Tokenizer
from transformers import ElectraConfig, ElectraForPreTraining, ElectraForTokenClassification, ElectraTokenizerFast

from electra_model.config import FinetuneParams
from electra_model.tasks.ner.conll import Sentence
from electra_model.data.tokenizer import as_transformers_tokenizer, load_backend_tokenizer, train_wordpiece
from electra_model.errors import ElectraError
from electra_model.tasks.checkpoints import hub_checkpoint, load_model, load_tokenizer, model_source
from electra_model.tasks.classification.data import TextExample
from electra_model.tasks.classification.train import finetune_classifier
from electra_model.tasks.ner.finetune import finetune
from tests.fixtures_models import LABELS, PATTERN
from tests.params import section

WORDS = ["john", "smith", "paris", "visited", "the", "film", "was", "good", "bad", "in", "new", "york", "and"]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def tiny_discriminator(vocab_size: int, directory: Path) -> None:
    config = ElectraConfig(vocab_size=vocab_size, embedding_size=8, hidden_size=16, num_hidden_layers=1,
                           num_attention_heads=2, intermediate_size=32, max_position_embeddings=32)
    torch.manual_seed(3)
    ElectraForPreTraining(config).save_pretrained(directory)


def vocab_txt_checkpoint(directory: Path) -> Path:
    """Weights, config and a lower-casing WordPiece ``vocab.txt`` only, as google/electra-small-discriminator."""
    directory.mkdir(parents=True, exist_ok=True)
    vocab = [*SPECIALS, *WORDS, "##s"]
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    foreign = ElectraTokenizerFast.from_pretrained(directory, do_lower_case=True)
    foreign.save_pretrained(directory)
    (directory / "tokenizer.json").unlink()
    tiny_discriminator(len(vocab), directory)
    return directory


def tokenizer_json_checkpoint(directory: Path) -> Path:
    """Weights, config and a fast tokenizer saved with ``save_pretrained`` (``tokenizer.json``), lower-casing."""
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = train_wordpiece([" ".join(WORDS)] * 3, vocab_size=120, min_frequency=1, lowercase=True)
    as_transformers_tokenizer(tokenizer, 32).save_pretrained(directory)
    tiny_discriminator(tokenizer.get_vocab_size(), directory)
    return directory


CHECKPOINTS = {"tokenizer.json": tokenizer_json_checkpoint, "vocab.txt only": vocab_txt_checkpoint}


@pytest.fixture(scope="module")
def ours(tmp_path_factory: pytest.TempPathFactory, tokenizer: Tokenizer) -> Path:
    """Our pretrain stage's output, cased and of another vocabulary: what must NOT be used with a foreign init."""
    directory = tmp_path_factory.mktemp("ours")
    tiny_discriminator(tokenizer.get_vocab_size(), directory)
    as_transformers_tokenizer(tokenizer, 32).save_pretrained(directory)
    return directory


@pytest.fixture(autouse=True)
def fresh_hub_resolution() -> None:
    hub_checkpoint.cache_clear()


def ids(tokenizer: Tokenizer, text: str) -> list[int]:
    return tokenizer.encode(text.split(), is_pretokenized=True, add_special_tokens=False).ids


def params(init: Path | str, **changes: object) -> FinetuneParams:
    base = dict(init=str(init), max_seq_len=32, batch_size=8, epochs=1, learning_rate=1e-3, device="cpu")
    return section("finetune", **{**base, **changes})


def ner_sentences(count: int, seed: int) -> list[Sentence]:
    rng = random.Random(seed)
    result = []
    for _ in range(count):
        words = rng.choices(["John", "Smith", "Paris", "visited", "the", "in", "and"], k=rng.randint(3, 7))
        tags = ["O" if PATTERN.get(word, "O") == "O" else "B-" + PATTERN[word][2:] for word in words]
        result.append(Sentence(tuple(words), tuple(tags)))
    return result


def texts(count: int, seed: int) -> list[TextExample]:
    rng = random.Random(seed)
    result = []
    for index in range(count):
        label = rng.choice(["neg", "pos"])
        words = rng.choices(["The", "film", "was", "in", "Paris"], k=3) + ["Good" if label == "pos" else "Bad"]
        result.append(TextExample(" ".join(words), None, label, f"made:{index}"))
    return result


# ----------------------------------------------------------------------------------------- checkpoint folders
@pytest.mark.parametrize("layout", CHECKPOINTS)
def test_ner_finetunes_from_a_checkpoint_directory_with_its_own_tokenizer(
    tmp_path: Path, ours: Path, layout: str
) -> None:
    source = CHECKPOINTS[layout](tmp_path / "checkpoint")
    model, tokenizer, _ = finetune(params(source), 0, ours, ner_sentences(16, 0), ner_sentences(8, 1), lambda s, m: None)
    loaded = load_model(str(source), ours, LABELS, ElectraForTokenClassification)
    assert model.config.vocab_size == loaded.config.vocab_size != 0
    assert model.config.num_hidden_layers == 1, "the checkpoint's shape, not ours (2 layers)"
    assert tokenizer.token_to_id("john") is not None and ids(tokenizer, "John") == [tokenizer.token_to_id("john")], (
        "the checkpoint's lower-casing vocabulary encodes the data"
    )
    assert tokenizer.get_vocab() != load_backend_tokenizer(ours).get_vocab()
    saved = tmp_path / "finetuned"  # what the finetune stage writes; evaluate, export and the client read it
    as_transformers_tokenizer(tokenizer, 32).save_pretrained(saved)
    assert load_backend_tokenizer(saved).get_vocab() == tokenizer.get_vocab()
    assert ids(load_backend_tokenizer(saved), "Paris visited") == ids(tokenizer, "paris visited")


@pytest.mark.parametrize("layout", CHECKPOINTS)
def test_classification_finetunes_from_a_checkpoint_directory_with_its_own_tokenizer(
    tmp_path: Path, ours: Path, layout: str
) -> None:
    source = CHECKPOINTS[layout](tmp_path / "checkpoint")
    task = section("classification")
    model, tokenizer, summary = finetune_classifier(
        params(source, layer_lr_decay=1.0), task, 0, ours, texts(16, 0), texts(8, 1), lambda s, m: None
    )
    assert model.config.num_hidden_layers == 1 and model.config.id2label == {0: "neg", 1: "pos"}
    assert tokenizer.get_vocab() == load_tokenizer(str(source), ours).get_vocab()
    assert ids(tokenizer, "Good") == [tokenizer.token_to_id("good")]
    assert summary["epochs_run"] == 1


def test_a_path_that_is_no_directory_is_refused_as_a_path(tmp_path: Path, ours: Path) -> None:
    for init in (str(tmp_path / "missing"), "./models/missing", "a/b/c"):
        with pytest.raises(ElectraError, match=r"finetune.init: .* is not a transformers checkpoint directory .*no "
                                               r"directory"):
            model_source(init, ours)


# --------------------------------------------------------------------------------------------- hub model ids
def cache_snapshot(cache: Path, model_id: str, make: object) -> Path:
    """A model as the Hugging Face cache holds one after a download: refs/main names the snapshot folder."""
    repo = cache / f"models--{model_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT, encoding="utf-8")
    return make(repo / "snapshots" / COMMIT)  # type: ignore[operator]


def test_a_hub_id_in_the_local_cache_loads_offline_for_both_tasks(
    tmp_path: Path, ours: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    snapshot = cache_snapshot(tmp_path / "hub", "acme/electra-tiny-discriminator", vocab_txt_checkpoint)
    assert model_source("acme/electra-tiny-discriminator", ours) == snapshot
    _, tokenizer, _ = finetune(params("acme/electra-tiny-discriminator"), 0, ours, ner_sentences(8, 0),
                               ner_sentences(4, 1), lambda s, m: None)
    assert tokenizer.get_vocab() == load_tokenizer(str(snapshot), ours).get_vocab()
    model, _, _ = finetune_classifier(params("acme/electra-tiny-discriminator"), section("classification"), 0, ours,
                                      texts(8, 0), texts(4, 1), lambda s, m: None)
    assert model.config.num_hidden_layers == 1


def test_a_hub_id_with_hf_hub_offline_and_no_cache_fails_at_once_saying_what_to_do(tmp_path: Path) -> None:
    """Run as a user would: the hub library's own HF_HUB_OFFLINE switch, in a fresh process."""
    code = (
        "from pathlib import Path\n"
        "from electra_model.tasks.checkpoints import model_source\n"
        "model_source('google/electra-small-discriminator', Path('models/pretrained'))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "empty-cache")}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and time.monotonic() - started < 60
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("electra_model.errors.ElectraError: finetune.init: 'google/electra-small-discriminator'")
    assert "HF_HUB_OFFLINE is set" in message and "hf download google/electra-small-discriminator" in message
    assert "set finetune.init to that directory's path" in message


def test_a_hub_id_without_a_reachable_hub_fails_within_seconds(
    tmp_path: Path, ours: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing listens on the endpoint: the short probe reports it instead of the hub client waiting or retrying."""
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    started = time.monotonic()
    with pytest.raises(ElectraError, match=r"finetune.init: 'acme/missing' .* the hub at http://127.0.0.1:9 is not "
                                           r"reachable .* not in the local Hugging Face cache"):
        load_model("acme/missing", ours, LABELS, ElectraForTokenClassification)
    assert time.monotonic() - started < 10
