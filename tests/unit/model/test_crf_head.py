"""The CRF head's algorithms against brute force over every tag path of tiny random inputs, and the head as a model:
trained through ``.loss``, saved and loaded with its chain scores (benchmarks/crf_head.py)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import ElectraConfig, ElectraForTokenClassification

from benchmarks.crf_head import (
    CRFClassifier,
    ElectraCRFForTokenClassification,
    chain_scores,
    crf_nll,
    labelled_words,
    log_partition,
    viterbi,
)
from electra_model.tasks.ner.finetune import check_only_head_is_new
from electra_model.tasks.ner.encoding import IGNORE_INDEX
from electra_model.tasks.ner.tag_decoding import TagScheme
from electra_model.tasks.ner.tag_decoding import viterbi as constrained_viterbi

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


@pytest.mark.parametrize("seed", range(5))
def test_viterbi_finds_the_best_path_by_enumeration_with_and_without_forbidden_moves(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(4, LABELS))
    transitions, start, end = rng.normal(size=(LABELS, LABELS)), rng.normal(size=LABELS), rng.normal(size=LABELS)
    every = brute_scores(scores, transitions, start, end)
    assert tuple(viterbi(scores, transitions, start, end)) == max(every, key=every.get)
    forbidden = transitions.copy()
    forbidden[0, 1] = forbidden[2, 1] = -np.inf
    no_start = start.copy()
    no_start[1] = -np.inf
    allowed = brute_scores(scores, forbidden, no_start, end)
    best = tuple(viterbi(scores, forbidden, no_start, end))
    assert best == max(allowed, key=allowed.get) and np.isfinite(allowed[best])


def test_zero_chain_with_the_scheme_decodes_as_constrained_decoding() -> None:
    """Learned transitions + constraints reduce to the library's constrained Viterbi when the learned part is 0."""
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    scheme = TagScheme.iob2(labels)
    head = CRFClassifier(4, len(labels))
    transitions, start, end = chain_scores(head, scheme)
    rng = np.random.default_rng(3)
    for _ in range(20):
        scores = np.log(rng.dirichlet(np.ones(len(labels)), size=int(rng.integers(1, 9))))
        assert viterbi(scores, transitions, start, end).tolist() == constrained_viterbi(scores, scheme).tolist()


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
