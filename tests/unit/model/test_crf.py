"""The CRF head's algorithms against brute force over every tag path of tiny random inputs, and the head as a model:
trained through ``.loss``, saved and loaded with its chain scores, never with a chain silently re-initialised or
dropped (electra_model/tasks/ner/crf.py, heads.py). Its numpy decoding: tests/unit/code/test_tag_decoding.py."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import ElectraConfig, ElectraForPreTraining, ElectraForTokenClassification

from electra_model.errors import ElectraError
from electra_model.tasks.ner.crf import (
    ElectraCRFForTokenClassification,
    crf_nll,
    labelled_words,
    log_partition,
    model_chain,
)
from electra_model.client.ner_encoding import IGNORE_INDEX
from electra_model.tasks.checkpoints import check_only_head_is_new
from electra_model.tasks.ner.heads import load_finetuned

LABELS = 3


def random_chain(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return (torch.randn(LABELS, LABELS, generator=generator, dtype=torch.float64),
            torch.randn(LABELS, generator=generator, dtype=torch.float64),
            torch.randn(LABELS, generator=generator, dtype=torch.float64))


def brute_scores(emissions: np.ndarray, transitions: np.ndarray, start: np.ndarray, end: np.ndarray) -> dict:
    """Score of every tag path of one sequence, by enumeration."""
    scores = {}
    for path in itertools.product(range(emissions.shape[1]), repeat=emissions.shape[0]):
        score = start[path[0]] + end[path[-1]] + sum(emissions[i, tag] for i, tag in enumerate(path))
        scores[path] = score + sum(transitions[a, b] for a, b in zip(path, path[1:]))
    return scores


def test_forward_algorithm_and_nll_match_enumeration_over_a_ragged_batch() -> None:
    generator = torch.Generator().manual_seed(0)
    transitions, start, end = random_chain(generator)
    lengths = [1, 2, 4, 3]
    emissions = torch.randn(len(lengths), max(lengths), LABELS, generator=generator, dtype=torch.float64)
    emissions[0, 1:] = 1e3  # padding must not leak into a row's score
    tags = torch.randint(0, LABELS, (len(lengths), max(lengths)), generator=generator)
    mask = torch.arange(max(lengths))[None, :] < torch.tensor(lengths)[:, None]
    tags = tags.masked_fill(~mask, 0)

    log_z = log_partition(emissions, mask, transitions, start, end)
    nll = crf_nll(emissions, tags, mask, transitions, start, end)
    for row, length in enumerate(lengths):
        scores = brute_scores(emissions[row, :length].numpy(), transitions.numpy(), start.numpy(), end.numpy())
        expected_log_z = np.logaddexp.reduce(list(scores.values()))
        gold = tuple(tags[row, :length].tolist())
        assert log_z[row].item() == pytest.approx(expected_log_z, abs=1e-9)
        assert nll[row].item() == pytest.approx(expected_log_z - scores[gold], abs=1e-9)
        assert nll[row].item() > 0


def test_labelled_positions_are_packed_in_order_and_an_unlabelled_row_costs_nothing() -> None:
    emissions = torch.arange(2 * 5 * LABELS, dtype=torch.float64).reshape(2, 5, LABELS)
    labels = torch.tensor([[IGNORE_INDEX, 2, IGNORE_INDEX, 0, 1], [IGNORE_INDEX] * 5])
    words, tags, mask = labelled_words(emissions, labels)
    assert tags.tolist() == [[2, 0, 1], [0, 0, 0]]
    assert mask.tolist() == [[True] * 3, [False] * 3]
    assert torch.equal(words[0], emissions[0, [1, 3, 4]])
    generator = torch.Generator().manual_seed(1)
    nll = crf_nll(words, tags, mask, *random_chain(generator))
    assert nll[1].item() == 0.0 and nll[0].item() > 0


def tiny_config() -> ElectraConfig:
    return ElectraConfig(vocab_size=30, embedding_size=8, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=16, max_position_embeddings=16, num_labels=LABELS)


def test_the_head_trains_through_loss_and_keeps_its_chain_when_saved_and_loaded(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = ElectraCRFForTokenClassification(tiny_config())
    input_ids = torch.randint(0, 30, (2, 6))
    ignored = IGNORE_INDEX
    labels = torch.tensor([[ignored, 1, 2, ignored, 0, ignored], [ignored, 0, 1, ignored, ignored, ignored]])
    model.eval()
    output = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), labels=labels)
    assert output.logits.shape == (2, 6, LABELS)
    output.loss.backward()
    assert model.classifier.transitions.grad.abs().sum() > 0
    with torch.no_grad():
        model.classifier.transitions.add_(torch.randn(LABELS, LABELS))
    model.save_pretrained(tmp_path / "crf")
    loaded = ElectraCRFForTokenClassification.from_pretrained(tmp_path / "crf")
    assert torch.equal(loaded.classifier.transitions, model.classifier.transitions)


def test_a_plain_checkpoint_loads_with_only_a_new_head_and_a_zero_chain(tmp_path: Path) -> None:
    ElectraForTokenClassification(tiny_config()).save_pretrained(tmp_path / "plain")
    model, info = ElectraCRFForTokenClassification.from_pretrained(tmp_path / "plain", output_loading_info=True)
    check_only_head_is_new(tmp_path / "plain", info)
    new = ["classifier.end_scores", "classifier.start_scores", "classifier.transitions"]
    assert sorted(info["missing_keys"]) == new
    assert model.classifier.transitions.abs().sum() == 0 and model.classifier.start_scores.abs().sum() == 0


def trained_crf(tmp_path: Path) -> tuple[ElectraCRFForTokenClassification, Path]:
    torch.manual_seed(0)
    model = ElectraCRFForTokenClassification(tiny_config())
    with torch.no_grad():
        for parameter in (model.classifier.transitions, model.classifier.start_scores, model.classifier.end_scores):
            parameter.add_(torch.randn(parameter.shape))
    model.save_pretrained(tmp_path / "crf")
    return model, tmp_path / "crf"


def test_a_saved_model_loads_with_the_head_it_was_trained_with(tmp_path: Path) -> None:
    model, saved = trained_crf(tmp_path)
    loaded = load_finetuned(saved)
    assert type(loaded) is ElectraCRFForTokenClassification
    chain, expected = model_chain(loaded), model_chain(model)
    assert np.array_equal(chain.transitions, expected.transitions) and np.array_equal(chain.end, expected.end)
    assert np.array_equal(chain.transitions, model.classifier.transitions.detach().double().numpy())
    ElectraForTokenClassification(tiny_config()).save_pretrained(tmp_path / "plain")
    plain = load_finetuned(tmp_path / "plain")
    assert type(plain) is ElectraForTokenClassification and model_chain(plain) is None


def test_a_crf_folder_without_its_chain_or_not_a_ner_model_is_refused(tmp_path: Path) -> None:
    """A config that says CRF over weights without the chain would otherwise load with a zero chain, and a plain
    class over a CRF's weights would drop it: both are errors naming the tensors."""
    _, saved = trained_crf(tmp_path)
    ElectraForTokenClassification(tiny_config()).save_pretrained(tmp_path / "plain")
    (tmp_path / "plain" / "config.json").write_text((saved / "config.json").read_text())
    with pytest.raises(ElectraError, match="classifier.transitions"):
        load_finetuned(tmp_path / "plain")
    (saved / "config.json").write_text((saved / "config.json").read_text().replace(
        "ElectraCRFForTokenClassification", "ElectraForTokenClassification"))
    with pytest.raises(ElectraError, match="classifier.end_scores"):
        load_finetuned(saved)
    ElectraForPreTraining(tiny_config()).save_pretrained(tmp_path / "pretrained")
    with pytest.raises(ElectraError, match="config.json.*not a fine-tuned NER model"):
        load_finetuned(tmp_path / "pretrained")
    with pytest.raises(ElectraError, match="no config.json"):
        load_finetuned(tmp_path / "nothing")
