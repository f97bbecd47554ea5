"""The linear-chain CRF head, the default NER head (``finetune.head: crf``; benchmarks/RESULTS.md, "CRF head vs
constrained decoding": +4.95 valid entity F1 over softmax + constrained decoding on CoNLL-2003).

A softmax head scores each word alone and only has invalid tag bigrams ruled out at decoding time. A CRF instead
learns transition scores (and start/end scores) jointly with the encoder: the loss is the negative log-likelihood
of the gold tag sequence under the chain, so the model is trained for the sequence it is decoded for.

Shape of the head. :class:`ElectraCRFForTokenClassification` is ElectraForTokenClassification whose ``classifier``
is a :class:`CRFClassifier`: the same linear layer (same tensor names, same initialisation, so the fine-tuning loop,
its per-layer learning rates and the "only the head may be new" load check treat it as the classifier), holding the
transition, start and end scores as well. ``forward`` returns the emissions (the linear scores per sub-token) as
``.logits`` -- which is all the ONNX graph outputs -- and, given labels, the CRF NLL as ``.loss``.

Which positions form the chain. The emissions of a word are read at its first sub-token, the positions whose label
is not ``IGNORE_INDEX``; each model input (a *window*: a whole sentence, or one core of a long sentence, see
:mod:`electra_model.client.ner_encoding`) is one chain over its labelled positions in order, with the start and end
scores at the window's edges. At decoding time the per-word scores of a sentence's windows are merged first, so
Viterbi runs over the whole sentence.

The loss is the NLL summed over the batch's windows and divided by its number of labelled words, so it is on the
per-word scale of the softmax head's cross-entropy (the same learning rates and gradient clipping mean the same).

Decoding is torch-free: :func:`model_chain` hands the learned scores to
:func:`electra_model.client.tag_decoding.viterbi` as a :class:`~electra_model.client.tag_decoding.Chain`,
and the export stage saves them beside the ONNX graph for the client.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import ElectraConfig, ElectraForTokenClassification
from transformers.modeling_outputs import TokenClassifierOutput

from electra_model.client.ner_encoding import IGNORE_INDEX
from electra_model.client.tag_decoding import Chain


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
        with torch.no_grad():  # keep the initialisation post_init gave the plain head, so both heads start alike
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


def model_chain(model: nn.Module) -> Chain | None:
    """The learned chain of a CRF-head model as numpy scores for decoding; ``None`` for a softmax head."""
    head = getattr(model, "classifier", None)
    if not isinstance(head, CRFClassifier):
        return None
    transitions, start, end = (
        tensor.detach().cpu().double().numpy() for tensor in (head.transitions, head.start_scores, head.end_scores)
    )
    return Chain(transitions, start, end)


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
