"""Fine-tuning: initialisation sources, ELECTRA's optimizer groups, windows at prediction time, early stopping and
seeding, the head (CRF by default) and its decoding -- on models of a few thousand weights so the whole module runs
in seconds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer
from transformers import ElectraConfig, ElectraForPreTraining, ElectraForTokenClassification, ElectraTokenizerFast

from electra_model.config import FinetuneParams
from electra_model.tasks.ner.conll import Sentence
from electra_model.errors import ElectraError
from electra_model.tasks.checkpoints import load_model, load_tokenizer
from electra_model.tasks.finetuning import layerwise_groups, length_grouped_batches
from electra_model.tasks.ner.finetune import finetune, predict_tags
from electra_model.tasks.ner.crf import ElectraCRFForTokenClassification, model_chain
from electra_model.tasks.ner.metrics import entity_scores
from electra_model.client.tag_decoding import ARGMAX
from electra_model.data.tokenizer import as_transformers_tokenizer
from tests.fixtures_models import CORPUS, LABELS, PATTERN, expected_tags, make_crf_pattern, make_pattern, model_config
from tests.params import section

WORDS = sorted({word for line in CORPUS for word in line.split()})


def tiny_config(tokenizer: Tokenizer, layers: int = 2) -> ElectraConfig:
    return ElectraConfig(
        vocab_size=tokenizer.get_vocab_size(), embedding_size=8, hidden_size=16, num_hidden_layers=layers,
        num_attention_heads=2, intermediate_size=32, max_position_embeddings=64,
    )


@pytest.fixture(scope="module")
def pretrained_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer: Tokenizer) -> Path:
    """A stand-in for models/pretrained: a saved discriminator with our tokenizer files beside it."""
    directory = tmp_path_factory.mktemp("pretrained")
    torch.manual_seed(0)
    ElectraForPreTraining(tiny_config(tokenizer)).save_pretrained(directory)
    as_transformers_tokenizer(tokenizer, 64).save_pretrained(directory)
    return directory


def sentences(n: int, seed: int) -> list[Sentence]:
    rng = np.random.default_rng(seed)
    result = []
    for _ in range(n):
        words = [str(word) for word in rng.choice(WORDS, rng.integers(3, 9))]
        tags = [tag if tag == "O" or not tag.startswith("I-") else "B-" + tag[2:] for tag in expected_tags(words)]
        result.append(Sentence(tuple(words), tuple(tags)))
    return result


# ------------------------------------------------------------------------------------------ initialisation
def test_random_init_has_the_pretrained_shape_but_not_its_weights(pretrained_dir: Path) -> None:
    pretrained = load_model("pretrained", pretrained_dir, LABELS, ElectraForTokenClassification)
    random = load_model("random", pretrained_dir, LABELS, ElectraForTokenClassification)
    assert pretrained.config.num_hidden_layers == random.config.num_hidden_layers == 2
    assert pretrained.config.id2label == random.config.id2label == dict(enumerate(LABELS))
    reference = ElectraForPreTraining.from_pretrained(pretrained_dir).electra.encoder.layer[0].output.dense.weight
    assert torch.equal(pretrained.electra.encoder.layer[0].output.dense.weight, reference)
    assert not torch.equal(random.electra.encoder.layer[0].output.dense.weight, reference)


def test_any_local_checkpoint_directory_with_its_own_vocab_txt(tmp_path: Path, pretrained_dir: Path) -> None:
    """Like a downloaded google/electra-small-discriminator: weights, config and only a WordPiece vocab.txt."""
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, "##s"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    foreign = ElectraTokenizerFast.from_pretrained(tmp_path, do_lower_case=False)
    torch.manual_seed(1)
    ElectraForPreTraining(tiny_config(foreign.backend_tokenizer, layers=1)).save_pretrained(tmp_path)
    foreign.save_pretrained(tmp_path)
    (tmp_path / "tokenizer.json").unlink()
    model = load_model(str(tmp_path), pretrained_dir, LABELS, ElectraForTokenClassification)
    tokenizer = load_tokenizer(str(tmp_path), pretrained_dir)
    assert model.config.num_hidden_layers == 1 and model.config.vocab_size == len(vocab)
    assert tokenizer.encode(["Paris", "Smiths"], is_pretokenized=True, add_special_tokens=False).ids == [
        vocab.index("Paris"), vocab.index("Smith"), vocab.index("##s")
    ]


def test_a_token_classifier_with_other_labels_gets_only_a_new_head(tmp_path: Path, pretrained_dir: Path) -> None:
    """A checkpoint fine-tuned for another label set: the classifier is re-initialised, the body loads as saved."""
    other = ElectraForTokenClassification.from_pretrained(pretrained_dir, num_labels=3)
    other.save_pretrained(tmp_path)
    model = load_model(str(tmp_path), pretrained_dir, LABELS, ElectraForTokenClassification)
    assert model.classifier.out_features == len(LABELS)
    assert torch.equal(model.electra.encoder.layer[1].output.dense.weight, other.electra.encoder.layer[1].output.dense.weight)


def claim_in_config(directory: Path, **changes: int) -> None:
    """Edit a saved checkpoint's config.json so that it no longer describes the weights beside it."""
    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    (directory / "config.json").write_text(json.dumps({**config, **changes}), encoding="utf-8")


def test_a_checkpoint_whose_tensors_do_not_fit_is_refused_naming_them(
    tmp_path: Path, pretrained_dir: Path, tokenizer: Tokenizer
) -> None:
    ElectraForPreTraining(tiny_config(tokenizer)).save_pretrained(tmp_path)
    claim_in_config(tmp_path, intermediate_size=48)  # the feed-forward matrices no longer fit: none may load at random
    with pytest.raises(ElectraError, match=r"does not hold the whole model body; 6 tensors .*intermediate\.dense"):
        load_model(str(tmp_path), pretrained_dir, LABELS, ElectraForTokenClassification)


def test_a_checkpoint_missing_body_tensors_is_refused(tmp_path: Path, pretrained_dir: Path, tokenizer: Tokenizer) -> None:
    ElectraForPreTraining(tiny_config(tokenizer, layers=1)).save_pretrained(tmp_path)
    claim_in_config(tmp_path, num_hidden_layers=2)
    with pytest.raises(ElectraError, match=r"encoder\.layer\.1\."):
        load_model(str(tmp_path), pretrained_dir, LABELS, ElectraForTokenClassification)


def test_a_directory_without_config_is_refused(tmp_path: Path, pretrained_dir: Path) -> None:
    with pytest.raises(ElectraError, match=r"finetune.init: .* is not a transformers checkpoint directory"):
        load_model(str(tmp_path), pretrained_dir, LABELS, ElectraForTokenClassification)


# ----------------------------------------------------------------------------------------------- optimizer
def test_layerwise_groups_decay_the_learning_rate_by_depth(tokenizer: Tokenizer) -> None:
    model = ElectraForTokenClassification(tiny_config(tokenizer, layers=3))
    groups = layerwise_groups(model, learning_rate=1.0, weight_decay=0.01, decay=0.5)
    grouped = [id(p) for group in groups for p in group["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters()), "every parameter exactly once"
    lr_of = {id(p): group["lr"] for group in groups for p in group["params"]}
    decay_of = {id(p): group["weight_decay"] for group in groups for p in group["params"]}
    assert lr_of[id(model.classifier.weight)] == 1.0
    assert lr_of[id(model.electra.encoder.layer[2].output.dense.weight)] == 0.5
    assert lr_of[id(model.electra.encoder.layer[0].output.dense.weight)] == 0.125
    assert lr_of[id(model.electra.embeddings.word_embeddings.weight)] == 0.0625
    assert lr_of[id(model.electra.embeddings_project.weight)] == 0.0625
    for name, parameter in model.named_parameters():
        no_decay = name.endswith(".bias") or "LayerNorm" in name
        assert decay_of[id(parameter)] == (0.0 if no_decay else 0.01), name


def test_length_grouped_batches_cover_every_example_once() -> None:
    lengths = list(np.random.default_rng(0).integers(3, 60, 500))
    batches = length_grouped_batches(lengths, 8, np.random.default_rng(1))
    assert sorted(int(i) for batch in batches for i in batch) == list(range(500))
    spread = np.mean([np.ptp([lengths[i] for i in batch]) for batch in batches])
    assert spread < 10, "batches hold examples of similar length"


# ---------------------------------------------------------------------------------------------- prediction
def test_every_word_of_a_1000_word_sentence_gets_its_prediction(tokenizer: Tokenizer) -> None:
    """The pattern model tags each word by its token alone, so any misplaced window or word shows."""
    torch.manual_seed(0)
    model = ElectraForTokenClassification(model_config(tokenizer)).eval()
    make_pattern(model, tokenizer)
    begins = [word for word, tag in PATTERN.items() if tag.startswith("B-")]  # I- words only inside their entity
    phrases = [*begins, "John Smith", "New York", "John Smith Smith", "visited", "café", "in"]
    words = " ".join(np.random.default_rng(3).choice(phrases, 1000)).split()[:1000]
    short = ["John", "Smith", "visited", "Paris"]
    unlabelled = [Sentence(tuple(short), ("O",) * 4), Sentence(tuple(words), ("O",) * 1000)]
    predicted = predict_tags(model, tokenizer, unlabelled, 16, 8)
    assert predicted == [expected_tags(short), expected_tags(words)]


# ------------------------------------------------------------------------------------------------ training
def params(**changes: object) -> FinetuneParams:
    base = dict(max_seq_len=32, batch_size=8, epochs=2, learning_rate=3e-3, patience=1, device="cpu", warmup_ratio=0.25)
    return section("finetune", **{**base, **changes})


def test_finetune_is_seeded_keeps_the_best_epoch_and_logs(pretrained_dir: Path) -> None:
    train, valid = sentences(32, 0), sentences(16, 1)
    logged: list[tuple[int, dict]] = []
    model, tokenizer, summary = finetune(params(), 7, pretrained_dir, train, valid, lambda s, m: logged.append((s, m)))
    valid_f1 = [metrics["valid_f1"] for _, metrics in logged if "valid_f1" in metrics]
    assert summary["epochs_run"] == len(valid_f1) and summary["best_valid_f1"] == max(valid_f1)
    assert valid_f1[summary["best_epoch"] - 1] == summary["best_valid_f1"]
    again = predict_tags(model, tokenizer, valid, 32, 16)
    assert entity_scores([s.tags for s in valid], again)["overall"]["f1"] == summary["best_valid_f1"]
    rates = [metrics["learning_rate"] for _, metrics in logged if "learning_rate" in metrics]
    assert rates[0] < max(rates) and rates[-1] < max(rates), "warmup, then linear decay"
    _, _, repeated = finetune(params(), 7, pretrained_dir, train, valid, lambda s, m: None)
    assert repeated == summary


# Recorded from the two loops before they became one (tasks/finetuning.py): the same seed must still give these.
RECORDED_EPOCHS = {
    "softmax": [(0.8494722992181778, 0.0), (0.40983825642615557, 0.88), (0.20411743130534887, 0.721311475409836),
                (0.15485201426781714, 0.7118644067796611)],
    "crf": [(0.836421899497509, 0.0), (0.40820465330034494, 0.8571428571428571),
            (0.20910221617668867, 0.721311475409836), (0.15984333772212267, 0.793103448275862)],
}


@pytest.mark.parametrize("head", ["softmax", "crf"])
def test_the_same_seed_gives_the_metrics_recorded_before_the_loop_was_shared(pretrained_dir: Path, head: str) -> None:
    """Best epoch 2 of 4: the kept epoch is not the last, and patience 2 stops the run before ``epochs``."""
    logged: list[dict] = []
    _, _, summary = finetune(params(epochs=6, patience=2, head=head, learning_rate=2e-2, layer_lr_decay=1.0), 7,
                             pretrained_dir, sentences(64, 0), sentences(24, 1), lambda s, m: logged.append(m))
    epochs = [(metrics["epoch_train_loss"], metrics["valid_f1"]) for metrics in logged if "epoch" in metrics]
    assert [loss for loss, _ in epochs] == pytest.approx([loss for loss, _ in RECORDED_EPOCHS[head]], rel=1e-5)
    assert [f1 for _, f1 in epochs] == pytest.approx([f1 for _, f1 in RECORDED_EPOCHS[head]])
    best = RECORDED_EPOCHS[head][1][1]
    assert summary == pytest.approx({"best_valid_f1": best, "best_epoch": 2, "epochs_run": 4, "steps": 32})


def test_early_stopping_stops_after_patience_epochs_without_gain(pretrained_dir: Path) -> None:
    train, valid = sentences(16, 0), sentences(8, 1)
    _, _, summary = finetune(params(epochs=6, learning_rate=1e-9), 0, pretrained_dir, train, valid, lambda s, m: None)
    assert summary["best_epoch"] == 1 and summary["epochs_run"] == 2


def test_constrained_decoding_drops_an_inside_tag_that_continues_nothing(tokenizer: Tokenizer) -> None:
    torch.manual_seed(0)
    model = ElectraForTokenClassification(model_config(tokenizer)).eval()
    make_pattern(model, tokenizer)
    sentence = [Sentence(("John", "and", "Smith", "met", "Müller"), ("O",) * 5)]
    argmax = predict_tags(model, tokenizer, sentence, 16, 8, decoding=ARGMAX)
    assert argmax == [["B-PER", "O", "I-PER", "O", "B-PER"]]  # conlleval counts "Smith" as a third entity
    assert predict_tags(model, tokenizer, sentence, 16, 8) == [["B-PER", "O", "O", "O", "B-PER"]]


def test_a_diverging_run_stops_at_the_first_non_finite_loss_naming_step_and_params(pretrained_dir: Path) -> None:
    """A learning rate of 1e30 sends the weights to inf in one step; the run stops there, not epochs later."""
    train, valid = sentences(32, 0), sentences(8, 1)
    logged: list[tuple[int, dict]] = []
    with pytest.raises(ElectraError) as error:
        finetune(params(learning_rate=1e30, epochs=3), 0, pretrained_dir, train, valid,
                 lambda step, metrics: logged.append((step, metrics)))
    message = str(error.value)
    step = len(logged) + 1  # every step before the bad one was logged, the bad one was not
    assert message.startswith(f"fine-tuning diverged: the training loss is nan at step {step} ")
    assert "finetune.learning_rate = 1e+30" in message and "finetune.batch_size = 8" in message
    assert all(np.isfinite(metrics["train_loss"]) for _, metrics in logged)
    assert not any("valid_f1" in metrics for _, metrics in logged), "stopped inside the first epoch"


# ---------------------------------------------------------------------------------------------------- heads
@pytest.mark.parametrize(("head", "model_class"), [("crf", ElectraCRFForTokenClassification),
                                                   ("softmax", ElectraForTokenClassification)])
def test_finetune_head_picks_the_model_class_and_the_crf_learns_its_chain(
    pretrained_dir: Path, head: str, model_class: type
) -> None:
    train, valid = sentences(16, 0), sentences(8, 1)
    model, _, _ = finetune(params(epochs=1, head=head), 0, pretrained_dir, train, valid, lambda s, m: None)
    assert type(model) is model_class
    chain = model_chain(model)
    assert (chain is None) == (head == "softmax")
    if chain is not None:
        assert np.abs(chain.transitions).sum() > 0, "the chain scores train with the rest"


def test_predict_tags_decodes_a_crf_with_its_chain(tokenizer: Tokenizer) -> None:
    """What finetune's early stopping scores validation with: the chain forbids the first word's B-PER."""
    model = make_crf_pattern(tokenizer)
    sentence = [Sentence(("John", "Smith", "visited", "Paris"), ("O",) * 4)]
    [tags] = predict_tags(model, tokenizer, sentence, 16, 8)
    assert tags[0] != "B-PER" and tags[3] == "B-LOC"
    plain = ElectraForTokenClassification(model_config(tokenizer)).eval()
    make_pattern(plain, tokenizer)
    assert predict_tags(plain, tokenizer, sentence, 16, 8) == [["B-PER", "I-PER", "O", "B-LOC"]]
