"""The shared fine-tuning loop as a new task would use it: a task that supplies only its batches, its own loss and
its validation (here a score where lower is better) gets the epoch it selects, early stopping and the per-step and
per-epoch logs, on a model of a few thousand weights."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional
from transformers import ElectraConfig, ElectraForSequenceClassification

from electra_model.tasks.finetuning import Batch, TrainBatches, Validation, finetune_loop
from electra_model.training import seed_everything
from tests.params import section

LENGTHS = [3, 5, 8, 4, 6, 7, 3, 5, 8, 6, 4, 7]
TARGETS = np.array([length % 2 for length in LENGTHS])


def collate(indices: np.ndarray) -> dict[str, np.ndarray]:
    """Token ids 5.. padded with 0, and the target under a key the model does not know: only the task's loss reads
    it."""
    width = max(LENGTHS[index] for index in indices)
    input_ids = np.zeros((len(indices), width), dtype=np.int64)
    for row, index in enumerate(indices):
        input_ids[row, : LENGTHS[index]] = np.arange(5, 5 + LENGTHS[index])
    return {"input_ids": input_ids, "attention_mask": (input_ids > 0).astype(np.int64), "target": TARGETS[indices]}


def test_a_task_supplying_batches_loss_and_validation_gets_selection_early_stopping_and_logs() -> None:
    seed_everything(0)
    config = ElectraConfig(vocab_size=20, embedding_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=32, max_position_embeddings=16, num_labels=2)
    model = ElectraForSequenceClassification(config)
    losses_computed = []

    def loss(model: nn.Module, batch: Batch) -> torch.Tensor:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        losses_computed.append(1)
        return functional.cross_entropy(logits, batch["target"])

    scripted = iter([0.5, 0.3, 0.4, 0.35, 0.1, 0.1])  # lower is better: epoch 2, then two epochs without gain
    weights_at_epoch = []

    def score(model: nn.Module) -> dict[str, float]:
        weights_at_epoch.append(model.classifier.out_proj.weight.detach().clone())
        return {"valid_loss": next(scripted)}

    logged: list[tuple[int, dict[str, float]]] = []
    params = section("finetune", batch_size=4, epochs=6, patience=2, learning_rate=1e-2, device="cpu")
    summary = finetune_loop(model, params, 0, TrainBatches(LENGTHS, collate),
                            Validation(score, "valid_loss", higher_is_better=False),
                            lambda step, metrics: logged.append((step, metrics)), loss=loss)

    assert summary == {"best_valid_loss": 0.3, "best_epoch": 2, "epochs_run": 4, "steps": 12}
    assert len(losses_computed) == 12, "3 batches of 4 per epoch, each through the task's loss"
    assert torch.equal(model.classifier.out_proj.weight, weights_at_epoch[1]), "epoch 2's weights are kept"
    assert not torch.equal(weights_at_epoch[1], weights_at_epoch[3])
    epochs = [(step, metrics) for step, metrics in logged if "epoch" in metrics]
    assert [step for step, _ in epochs] == [3, 6, 9, 12]
    assert [metrics["valid_loss"] for _, metrics in epochs] == [0.5, 0.3, 0.4, 0.35]
    assert all(set(metrics) == {"epoch", "epoch_train_loss", "valid_loss"} for _, metrics in epochs)
    steps = [metrics for _, metrics in logged if "epoch" not in metrics]
    assert len(steps) == 12 and all(set(metrics) == {"train_loss", "learning_rate"} for metrics in steps)
