"""FSDP2 sharding keeps the generator's and discriminator's shared embeddings one tensor, and a gathered checkpoint
restores a sharded model exactly (a one-rank gloo group: the same code paths as N ranks, in one process)."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
from torch.distributed.tensor import DTensor

from electra_model.pretraining import checkpoint
from electra_model.pretraining.modeling import ElectraPretrainingModel, electra_configs, mask_tokens
from electra_model.pretraining.sharding import gather_state, restore_state, shard_model
from electra_model.training import build_optimizer
from tests.params import section

VOCAB = 97


@pytest.fixture
def process_group(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def plain_model() -> ElectraPretrainingModel:
    discriminator, generator = electra_configs(section("pretrain").presets["tiny"], VOCAB, 16, 0, 0.1, "hf", "electra")
    torch.manual_seed(0)
    return ElectraPretrainingModel(discriminator, generator, disc_weight=50.0)


def sharded_model() -> ElectraPretrainingModel:
    return shard_model(plain_model())


def train_one_step(model: ElectraPretrainingModel, optimizer: torch.optim.Optimizer) -> None:
    ids = torch.randint(5, VOCAB, (2, 16), generator=torch.Generator().manual_seed(1))
    sampler = torch.Generator().manual_seed(2)
    masked = mask_tokens(ids, torch.ones_like(ids, dtype=torch.bool), 4, 0.15, 0.85, sampler)
    model(ids, None, masked, sampler).loss.backward()
    optimizer.step()
    optimizer.zero_grad()


def test_sharding_keeps_the_shared_embeddings_one_parameter(process_group):
    model = sharded_model()
    embeddings = model.discriminator.electra.embeddings
    word = embeddings.word_embeddings.weight
    assert isinstance(word, DTensor)  # sharded, in the root group
    assert model.generator.electra.embeddings is embeddings
    assert model.generator.generator_lm_head.weight is word
    optimizer = build_optimizer(model, 1e-2, 0.01, 1e-6, torch.device("cpu"))
    assert sum(p is word for group in optimizer.param_groups for p in group["params"]) == 1  # updated once a step
    before = word.full_tensor().clone()
    train_one_step(model, optimizer)
    assert model.generator.generator_lm_head.weight is model.discriminator.electra.embeddings.word_embeddings.weight
    assert not torch.equal(word.full_tensor(), before)


def test_a_gathered_checkpoint_restores_a_fresh_sharded_model(process_group, tmp_path):
    model = sharded_model()
    optimizer = build_optimizer(model, 1e-2, 0.01, 1e-6, torch.device("cpu"))
    train_one_step(model, optimizer)
    path = checkpoint.write_checkpoint(tmp_path, 1, *gather_state(model, optimizer, is_main=True), {}, keep=1)

    fresh = sharded_model()
    fresh_optimizer = build_optimizer(fresh, 1e-2, 0.01, 1e-6, torch.device("cpu"))
    model_tensors, optimizer_state, _ = checkpoint.read_checkpoint(path, torch.device("cpu"))
    plain = plain_model()  # the names a single process stores: each shared tensor once
    assert set(model_tensors) == set(checkpoint.untied(plain.state_dict(), plain))
    restore_state(path, fresh, fresh_optimizer, (model_tensors, optimizer_state))
    for (name, a), b in zip(model.named_parameters(), fresh.parameters()):
        assert torch.equal(a.full_tensor(), b.full_tensor()), name
        for slot, value in optimizer.state[a].items():
            restored = fresh_optimizer.state[b][slot]
            assert torch.equal(torch.as_tensor(value.full_tensor() if isinstance(value, DTensor) else value),
                               torch.as_tensor(restored.full_tensor() if isinstance(restored, DTensor) else restored))
