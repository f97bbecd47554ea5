"""The pretraining loop on a tiny corpus: it learns, it is deterministic, and its output loads in transformers."""

from __future__ import annotations

import numpy as np
import pytest
from transformers import ElectraForPreTraining

from electra_model.config import load_params
from electra_model.data.blocks import load_blocks, pack_blocks, save_blocks, token_dtype
from electra_model.errors import ElectraError
from electra_model.pretrain import batch_order, pretrain, save_pretrained
from electra_model.tokenizer import as_transformers_tokenizer, train_wordpiece

LINES = [
    f"{name} moved to {city} in {year} and worked for the {org} company there ."
    for name, city, org in zip(["Anna", "Boris", "Chen", "Dara"] * 10, ["Paris", "Oslo", "Lima", "Kyiv"] * 10, ["Acme", "Globex", "Initech", "Umbrella"] * 10)
    for year in (1990, 2001, 2015)
]


@pytest.fixture(scope="module")
def tokenizer():
    return train_wordpiece(LINES, vocab_size=200, min_frequency=1, lowercase=False)


@pytest.fixture(scope="module")
def tiny_params():
    params = load_params("params.yaml").pretrain
    return params.model_copy(update={"max_steps": 30, "batch_size": 8, "max_seq_len": 32, "warmup_steps": 3, "log_every": 10})


def test_blocks_are_full_length_with_cls_and_sep(tokenizer, tmp_path):
    blocks = pack_blocks(tokenizer, LINES, max_seq_len=32)
    assert blocks.dtype == np.uint16 and blocks.shape[1] == 32
    assert (blocks[:, 0] == tokenizer.token_to_id("[CLS]")).all()
    assert (blocks[:, -1] == tokenizer.token_to_id("[SEP]")).all()
    assert not (blocks[:, 1:-1] == tokenizer.token_to_id("[PAD]")).any()
    save_blocks(blocks, tmp_path / "blocks.npy")
    assert np.array_equal(load_blocks(tmp_path / "blocks.npy"), blocks)


def test_too_small_a_corpus_is_a_clear_error(tokenizer):
    with pytest.raises(ElectraError, match="fewer than one block"):
        pack_blocks(tokenizer, ["Anna"], max_seq_len=32)


def test_token_dtype_fits_the_vocabulary():
    assert token_dtype(65536) == np.uint16 and token_dtype(65537) == np.uint32


def test_batch_order_is_seeded_and_covers_every_block_per_epoch():
    order = batch_order(n_blocks=10, batch_size=5, steps=4, seed=7)
    assert sorted(order[:2].ravel()) == list(range(10))
    assert np.array_equal(order, batch_order(10, 5, 4, seed=7))
    assert not np.array_equal(order, batch_order(10, 5, 4, seed=8))


def test_pretraining_learns_and_is_deterministic(tokenizer, tiny_params, tmp_path):
    blocks = pack_blocks(tokenizer, LINES, max_seq_len=32)
    logged: list[tuple[int, dict]] = []
    model, final = pretrain(tiny_params, 3, tokenizer, blocks, lambda step, m: logged.append((step, m)))
    assert [step for step, _ in logged] == [10, 20, 30]
    first, last = logged[0][1], logged[-1][1]
    assert last["mlm_loss"] < first["mlm_loss"]
    assert set(final) >= {"mlm_loss", "mlm_accuracy", "rtd_loss", "rtd_accuracy", "rtd_precision", "rtd_recall", "learning_rate", "tokens_per_s"}
    again: list[tuple[int, dict]] = []
    pretrain(tiny_params, 3, tokenizer, blocks, lambda step, m: again.append((step, m)))
    assert [m["loss"] for _, m in again] == [m["loss"] for _, m in logged]

    tokenizer_dir = tmp_path / "tokenizer"
    as_transformers_tokenizer(tokenizer, 32).save_pretrained(tokenizer_dir)
    save_pretrained(model, tokenizer_dir, tmp_path / "out")
    loaded = ElectraForPreTraining.from_pretrained(tmp_path / "out")
    assert loaded.config.hidden_size == tiny_params.architecture.hidden_size
    assert (tmp_path / "out" / "model.safetensors").is_file() and (tmp_path / "out" / "tokenizer.json").is_file()
