"""A linear-chain CRF head for ElectraForTokenClassification: an experiment against constrained decoding (issue 12).

Constrained decoding (:mod:`electra_model.tasks.ner.tag_decoding`) trains a per-word softmax and only forbids invalid tag
bigrams at decoding time. A CRF instead learns transition scores (and start/end scores) jointly with the encoder:
the loss is the negative log-likelihood of the gold tag sequence under the chain, so the model is trained for the
sequence it is decoded for. Whether that buys F1 over constrained decoding is what ``benchmarks/ner_real_data.py
--head crf`` measures; the head stays here until it wins on validation.

Shape of the head. :class:`ElectraCRFForTokenClassification` is ElectraForTokenClassification whose ``classifier``
is a :class:`CRFClassifier`: the same linear layer (same tensor names, same initialisation, so the fine-tuning loop,
its per-layer learning rates and the "only the head may be new" load check treat it as the classifier), holding the
transition, start and end scores as well. ``forward`` returns the emissions (the linear scores per sub-token) as
``.logits`` and, given labels, the CRF NLL as ``.loss``, so :func:`electra_model.tasks.ner.finetune.finetune` trains it as is.

Which positions form the chain. The emissions of a word are read at its first sub-token, the positions whose label
is not ``IGNORE_INDEX``; each model input (a *window*: a whole sentence, or one core of a long sentence, see
:mod:`electra_model.tasks.ner.encoding`) is one chain over its labelled positions in order, with the start and end scores
at the window's edges. Windows only cut sentences longer than ``max_seq_len`` sub-tokens (rare in CoNLL-2003); at
decoding time the per-word scores of a sentence's windows are merged first, so Viterbi runs over the whole sentence.

The loss is the NLL summed over the batch's windows and divided by its number of labelled words, so it is on the
per-word scale of the softmax arm's cross-entropy (the same learning rates and gradient clipping then mean the same).

Decoding. :func:`electra_model.tasks.ner.finetune.predict_word_log_probs` gives per-word log-softmax scores; they differ from
the emissions by a constant per word, which adds the same amount to every path, so Viterbi over them with the
learned transitions finds the CRF's best path. :func:`crf_decode_tags` does that, optionally with the IOB2
constraints added on top (``-inf`` on forbidden transitions and starts).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from transformers import ElectraConfig, ElectraForTokenClassification
from transformers.modeling_outputs import TokenClassifierOutput

from electra_model.tasks.ner.encoding import IGNORE_INDEX
from electra_model.tasks.ner.tag_decoding import TagScheme


class CRFClassifier(nn.Linear):
    """The token classifier (hidden -> label emissions) and the chain's scores: ``transitions[previous, next]``,
    ``start_scores`` and ``end_scores``, all learned, all starting at zero (no prior on the tag scheme)."""

    def __init__(self, in_features: int, num_labels: int) -> None:
        super().__init__(in_features, num_labels)
        self.transitions = nn.Parameter(torch.zeros(num_labels, num_labels))
        self.start_scores = nn.Parameter(torch.zeros(num_labels))
        self.end_scores = nn.Parameter(torch.zeros(num_labels))

    def reset_chain(self) -> None:
        """Zero the chain's scores (where transformers created the head uninitialised, on loading)."""
        with torch.no_grad():
            for parameter in (self.transitions, self.start_scores, self.end_scores):
                parameter.zero_()


class ElectraCRFForTokenClassification(ElectraForTokenClassification):
    """ElectraForTokenClassification trained with a CRF NLL; see the module docstring."""

    def __init__(self, config: ElectraConfig) -> None:
        super().__init__(config)
        linear = self.classifier
        head = CRFClassifier(linear.in_features, linear.out_features)
        with torch.no_grad():  # keep the initialisation post_init gave the plain head, so arms start alike
            head.weight.copy_(linear.weight)
            head.bias.copy_(linear.bias)
        self.classifier = head

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, CRFClassifier):
            module.reset_chain()

    def forward(self, *args, labels: torch.Tensor | None = None, **kwargs) -> TokenClassifierOutput:
        output = super().forward(*args, **kwargs)
        if labels is not None:
            output.loss = crf_loss(output.logits, labels, self.classifier)
        return output


def labelled_words(
    emissions: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The labelled positions of each row packed to the left, in order: ``(B, W, L)`` emissions, ``(B, W)`` tags
    (0 where padded) and ``(B, W)`` mask, ``W`` the most labelled positions of any row (at least 1)."""
    labelled = labels != IGNORE_INDEX
    counts = labelled.sum(1)
    width = max(int(counts.max()), 1)
    order = torch.argsort((~labelled).to(torch.int8), dim=1, stable=True)[:, :width]
    mask = torch.arange(width, device=labels.device)[None, :] < counts[:, None]
    word_emissions = emissions.gather(1, order[..., None].expand(-1, -1, emissions.shape[-1]))
    tags = labels.gather(1, order).masked_fill(~mask, 0)
    return word_emissions, tags, mask


def log_partition(
    emissions: torch.Tensor, mask: torch.Tensor, transitions: torch.Tensor, start: torch.Tensor, end: torch.Tensor
) -> torch.Tensor:
    """log Z of each row by the forward algorithm over its masked prefix: ``(B, W, L)`` -> ``(B,)``."""
    alpha = start + emissions[:, 0]
    for position in range(1, emissions.shape[1]):
        step = torch.logsumexp(alpha[:, :, None] + transitions[None], dim=1) + emissions[:, position]
        alpha = torch.where(mask[:, position, None], step, alpha)
    return torch.logsumexp(alpha + end, dim=-1)


def path_score(
    emissions: torch.Tensor,
    tags: torch.Tensor,
    mask: torch.Tensor,
    transitions: torch.Tensor,
    start: torch.Tensor,
    end: torch.Tensor,
) -> torch.Tensor:
    """Score of each row's tag path (emissions + transitions + start + end) over its masked prefix: ``(B,)``."""
    weights = mask.to(emissions.dtype)
    emitted = (emissions.gather(2, tags[..., None]).squeeze(-1) * weights).sum(1)
    moved = (transitions[tags[:, :-1], tags[:, 1:]] * weights[:, 1:]).sum(1)
    last = tags.gather(1, (mask.sum(1, keepdim=True) - 1).clamp(min=0)).squeeze(1)
    return emitted + moved + start[tags[:, 0]] + end[last]


def crf_nll(
    emissions: torch.Tensor,
    tags: torch.Tensor,
    mask: torch.Tensor,
    transitions: torch.Tensor,
    start: torch.Tensor,
    end: torch.Tensor,
) -> torch.Tensor:
    """Per-row NLL of the gold path, ``log Z - score(gold)``; 0 for a row with no labelled word."""
    nll = log_partition(emissions, mask, transitions, start, end) - path_score(
        emissions, tags, mask, transitions, start, end
    )
    return torch.where(mask[:, 0], nll, torch.zeros_like(nll))


def crf_loss(logits: torch.Tensor, labels: torch.Tensor, head: CRFClassifier) -> torch.Tensor:
    """The batch's CRF NLL per labelled word (see the module docstring), from sub-token logits and labels."""
    emissions, tags, mask = labelled_words(logits.float(), labels)
    nll = crf_nll(emissions, tags, mask, head.transitions, head.start_scores, head.end_scores)
    return nll.sum() / mask.sum().clamp(min=1)


def viterbi(scores: np.ndarray, transitions: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Label ids of the best path for one sentence's ``(words, labels)`` scores under the chain's scores
    (``-inf`` entries forbid a transition or start)."""
    words = scores.shape[0]
    if words == 0:
        return np.zeros(0, dtype=np.int64)
    score = start + scores[0]
    backpointers = np.zeros(scores.shape, dtype=np.int64)
    for position in range(1, words):
        candidates = score[:, None] + transitions
        backpointers[position] = candidates.argmax(0)
        score = candidates.max(0) + scores[position]
    path = np.empty(words, dtype=np.int64)
    path[-1] = int((score + end).argmax())
    for position in range(words - 1, 0, -1):
        path[position - 1] = backpointers[position, path[position]]
    return path


def chain_scores(
    head: CRFClassifier, scheme: TagScheme | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The head's learned transition, start and end scores as float64 arrays, with the scheme's forbidden
    transitions and starts set to ``-inf`` when a scheme is given."""
    transitions, start, end = (
        tensor.detach().cpu().double().numpy() for tensor in (head.transitions, head.start_scores, head.end_scores)
    )
    if scheme is not None:
        transitions = np.where(scheme.may_follow, transitions, -np.inf)
        start = np.where(scheme.may_start, start, -np.inf)
    return transitions, start, end


def crf_decode_tags(
    sentence_scores: Sequence[np.ndarray], model: ElectraCRFForTokenClassification, constrained: bool
) -> list[list[str]]:
    """Tags of every sentence by Viterbi over its per-word scores with the learned chain, and the IOB2 constraints
    on top when ``constrained``."""
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    scheme = TagScheme.iob2(labels)
    transitions, start, end = chain_scores(model.classifier, scheme if constrained else None)
    return [[labels[i] for i in viterbi(scores, transitions, start, end)] for scores in sentence_scores]
