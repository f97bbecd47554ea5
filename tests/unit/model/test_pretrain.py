"""The pretraining loop and its data path on a tiny corpus: it learns, it is deterministic, it resumes exactly,
and its output loads in transformers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import ElectraForPreTraining, ElectraForTokenClassification

from electra_model.config import load_params
from electra_model.data.blocks import STREAM_FORMAT, PackedBlocks, cached_token_stream, pack_blocks, token_dtype
from electra_model.errors import ElectraError
from electra_model.pretraining.loop import (
    BlockOrder,
    RunningStats,
    Trainer,
    build_model,
    compile_bodies,
    curriculum_blocks,
    pretrain,
    run_key,
    save_pretrained,
)
from electra_model.data.tokenizer import as_transformers_tokenizer, train_wordpiece
from electra_model.training import Distributed

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


@pytest.fixture(scope="module")
def blocks(tokenizer):
    return pack_blocks(tokenizer, LINES, max_seq_len=32)


def record(logged: list[tuple[int, dict]]):
    return lambda step, metrics: logged.append((step, metrics))


def test_blocks_are_full_length_with_cls_and_sep(tokenizer, blocks):
    assert blocks.dtype == np.uint16 and blocks.shape[1] == 32
    assert (blocks[:, 0] == tokenizer.token_to_id("[CLS]")).all()
    assert (blocks[:, -1] == tokenizer.token_to_id("[SEP]")).all()
    assert not (blocks[:, 1:-1] == tokenizer.token_to_id("[PAD]")).any()
    stream = np.concatenate([np.asarray(e.ids) for e in tokenizer.encode_batch(LINES, add_special_tokens=False)])
    assert np.array_equal(blocks[:, 1:-1].ravel(), stream[: blocks.shape[0] * 30])  # every token, in corpus order


def test_token_stream_is_cached_and_memory_mapped(tokenizer, blocks, tmp_path):
    stream = cached_token_stream(tokenizer, lambda: LINES, tmp_path / "tokens-key")
    assert isinstance(stream, np.memmap) and stream.dtype == np.uint16
    assert [p.name for p in tmp_path.iterdir()] == [f"tokens-key.{STREAM_FORMAT}.uint16"]

    def must_not_tokenize():
        raise AssertionError("the cached stream was tokenized again")

    again = cached_token_stream(tokenizer, must_not_tokenize, tmp_path / "tokens-key")
    packed = PackedBlocks.for_tokenizer(again, tokenizer, 32)
    assert packed.shape == blocks.shape
    assert np.array_equal(packed[np.array([3, 0])], blocks[[3, 0]])


def test_too_small_a_corpus_is_a_clear_error(tokenizer):
    with pytest.raises(ElectraError, match="fewer than one block"):
        pack_blocks(tokenizer, ["Anna"], max_seq_len=32)


def test_token_dtype_fits_the_vocabulary():
    assert token_dtype(65536) == np.uint16 and token_dtype(65537) == np.uint32


def test_block_order_is_seeded_covers_every_block_per_epoch_and_is_a_function_of_the_step():
    order = BlockOrder(n_blocks=10, batch_size=5, seed=7)
    assert sorted(np.concatenate([order.batch(1), order.batch(2)])) == list(range(10))
    assert sorted(np.concatenate([order.batch(3), order.batch(4)])) == list(range(10))
    resumed = BlockOrder(10, 5, seed=7)
    assert np.array_equal(resumed.batch(4), order.batch(4))  # no history needed: a resume reads the same blocks
    assert not np.array_equal(BlockOrder(10, 5, seed=8).batch(1), order.batch(1))


def test_the_generator_never_samples_special_tokens(tokenizer, tiny_params):
    model = build_model(tiny_params, tokenizer)
    specials = {tokenizer.token_to_id(t) for t in ("[PAD]", "[CLS]", "[SEP]", "[MASK]")}
    assert set(model.never_sample.tolist()) == specials


def test_compiling_keeps_parameter_names_so_checkpoints_still_fit(tokenizer, tiny_params):
    model = build_model(tiny_params, tokenizer)
    names = list(model.state_dict())
    compile_bodies(model)  # compilation itself happens lazily, at the first forward pass
    assert list(model.state_dict()) == names


def test_pretraining_learns_and_is_deterministic(tokenizer, tiny_params, blocks, tmp_path):
    logged: list[tuple[int, dict]] = []
    model, final = pretrain(tiny_params, 3, tokenizer, blocks, record(logged))
    assert [step for step, _ in logged] == [10, 20, 30]
    first, last = logged[0][1], logged[-1][1]
    assert last["mlm_loss"] < first["mlm_loss"] and last["rtd_loss"] < first["rtd_loss"]
    assert 0.05 < last["replaced_fraction"] < 0.15  # 15% masked, minus the samples that equal the original
    expected = {"mlm_loss", "mlm_accuracy", "rtd_loss", "rtd_accuracy", "rtd_precision", "rtd_recall", "learning_rate", "tokens_per_s", "mfu"}
    assert set(final) >= expected and 0 < final["mfu"] < 1
    again: list[tuple[int, dict]] = []
    pretrain(tiny_params, 3, tokenizer, blocks, record(again))
    assert [m["loss"] for _, m in again] == [m["loss"] for _, m in logged]

    tokenizer_dir = tmp_path / "tokenizer"
    as_transformers_tokenizer(tokenizer, 32).save_pretrained(tokenizer_dir)
    save_pretrained(model, tokenizer_dir, tmp_path / "out")
    loaded = ElectraForPreTraining.from_pretrained(tmp_path / "out")
    assert loaded.config.hidden_size == tiny_params.architecture.hidden_size
    assert (tmp_path / "out" / "model.safetensors").is_file() and (tmp_path / "out" / "tokenizer.json").is_file()


def test_an_mlm_only_run_trains_the_discriminator_shape_and_reports_no_rtd_figures(tokenizer, tiny_params, blocks, tmp_path):
    """objective: mlm, the paper's comparison arm: one encoder of the discriminator's width learns by MLM alone,
    nothing RTD-shaped is logged (or warned about), and the saved encoder is what fine-tuning loads."""
    params = tiny_params.model_copy(update={"objective": "mlm"})
    logged: list[tuple[int, dict]] = []
    model, final = pretrain(params, 3, tokenizer, blocks, record(logged), on_warning=pytest.fail)
    first, last = logged[0][1], logged[-1][1]
    assert last["mlm_loss"] < first["mlm_loss"] and last["loss"] == last["mlm_loss"]
    assert not [key for key in final if key.startswith("rtd_") or key == "replaced_fraction"]
    assert model.encoder.config.hidden_size == params.architecture.hidden_size

    tokenizer_dir = tmp_path / "tokenizer"
    as_transformers_tokenizer(tokenizer, 32).save_pretrained(tokenizer_dir)
    save_pretrained(model, tokenizer_dir, tmp_path / "out")
    assert not (tmp_path / "out" / "generator").exists()
    tagger = ElectraForTokenClassification.from_pretrained(tmp_path / "out", num_labels=3)
    trained = model.encoder.electra.encoder.layer[0].attention.self.query.weight
    assert torch.equal(tagger.electra.encoder.layer[0].attention.self.query.weight, trained)


class Interrupted(Exception):
    pass


def interrupt_at(stop: int):
    def on_log(step: int, metrics: dict) -> None:
        if step == stop:
            raise Interrupted

    return on_log


def test_a_resumed_run_continues_exactly_where_the_checkpoint_left_off(tokenizer, tiny_params, blocks, tmp_path):
    params = tiny_params.model_copy(update={"max_steps": 20, "checkpoint_every": 10, "keep_checkpoints": 1})
    whole: list[tuple[int, dict]] = []
    pretrain(params, 5, tokenizer, blocks, record(whole), checkpoint_dir=tmp_path / "whole")
    with pytest.raises(Interrupted):  # dies at step 20, before its checkpoint: step 10's is the newest
        pretrain(params, 5, tokenizer, blocks, interrupt_at(20), checkpoint_dir=tmp_path / "cut")
    assert [p.name for p in (tmp_path / "cut").iterdir()] == ["step-00000010"]
    resumed: list[tuple[int, dict]] = []
    pretrain(params, 5, tokenizer, blocks, record(resumed), checkpoint_dir=tmp_path / "cut")
    assert [step for step, _ in resumed] == [10, 20]  # step 10 is replayed from the checkpoint's history
    compared = ("loss", "mlm_loss", "rtd_loss", "rtd_accuracy")
    for (_, got), (_, expected) in zip(resumed, whole):
        assert {k: got[k] for k in compared} == {k: expected[k] for k in compared}
    assert [p.name for p in (tmp_path / "cut").iterdir()] == ["step-00000020"]  # keep_checkpoints: 1


def test_run_key_follows_the_trajectory_not_the_reporting(tiny_params):
    key = run_key(tiny_params, 3, "data")
    assert run_key(tiny_params.model_copy(update={"log_every": 5}), 3, "data") == key
    assert run_key(tiny_params.model_copy(update={"learning_rate": 1e-4}), 3, "data") != key
    assert run_key(tiny_params, 4, "data") != key and run_key(tiny_params, 3, "other") != key


@pytest.mark.skipif(not torch.cuda.is_available(), reason="host-device synchronisation exists only with a GPU")
def test_a_training_step_never_waits_for_the_gpu(tokenizer, tiny_params, blocks):
    trainer = Trainer(tiny_params.model_copy(update={"device": "cuda"}), 0, tokenizer, blocks, Distributed())
    stats = RunningStats.zeros(trainer.device)
    trainer.train_step(trainer.model, stats)  # first step: lazy CUDA initialisation may synchronise
    torch.cuda.set_sync_debug_mode("error")
    try:
        trainer.train_step(trainer.model, stats)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_a_diverging_run_stops_at_the_first_non_finite_step_and_checkpoints_nothing(
    tokenizer, tiny_params, blocks, tmp_path
):
    """The loss is checked at logging steps (no per-step host sync), yet the step named is the exact first one."""
    params = tiny_params.model_copy(update={"learning_rate": 1e30, "checkpoint_every": 10})
    logged: list[tuple[int, dict]] = []
    with pytest.raises(ElectraError) as error:
        pretrain(params, 3, tokenizer, blocks, record(logged), checkpoint_dir=tmp_path / "run")
    message = str(error.value)
    assert message.startswith("pretraining diverged: the training loss is nan at step 2 ("), message
    assert "pretrain.learning_rate = 1e+30" in message and "pretrain.batch_size = 8" in message
    assert logged == [] and not (tmp_path / "run").exists(), "no metrics or checkpoint of a NaN model"


def test_the_first_non_finite_step_is_recorded_without_reading_the_loss(tokenizer, tiny_params, blocks):
    trainer = Trainer(tiny_params, 0, tokenizer, blocks, Distributed())
    for step, loss in [(1, 2.0), (2, 1.5), (3, float("inf")), (4, float("nan"))]:
        trainer.step = step
        trainer._note_nonfinite(torch.tensor(loss))
    assert trainer.first_nonfinite_step.item() == 3
    with pytest.raises(ElectraError, match=r"the training loss is nan at step 3 \(pretrain.learning_rate"):
        trainer.stop_if_diverged(float("nan"), 1)
    trainer.stop_if_diverged(1.0, 1)  # a finite window passes


def test_the_curriculum_cuts_blocks_into_short_pieces_for_its_share_of_the_steps(tiny_params, blocks):
    params = tiny_params.model_copy(update={"short_seq_len": 16, "short_seq_fraction": 0.5})
    rows = blocks[:4]
    short = curriculum_blocks(rows, 15, params)  # step 15 of 30: still in the curriculum
    assert short.shape == (8, 16) and torch.equal(short.reshape(4, 32), torch.from_numpy(rows.astype(np.int64)))
    assert curriculum_blocks(rows, 16, params).shape == (4, 32)
    off = params.model_copy(update={"short_seq_fraction": 0.0})
    assert curriculum_blocks(rows, 1, off).shape == (4, 32)
