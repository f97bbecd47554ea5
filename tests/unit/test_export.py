"""ONNX export: the serving directory, dynamic shapes, and the torch/onnxruntime parity check."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from tokenizers import Tokenizer
from transformers import ElectraForTokenClassification

from electra_model.data.conll import Sentence
from electra_model.errors import ElectraError
from electra_model.export import check_parity, export_onnx
from tests.fixtures_models import LABELS, MAX_LEN, expected_tags, model_config, save_model_dir

TEXTS = [
    "John Smith visited Paris yesterday .",
    "Müller lives in Zürich , not in New York !",
    "Paris",
    "John and Smith met Müller in New York .",
]  # each fits MAX_LEN sub-tokens, so no word is cut off and the pattern model scores F1 1.0


def sentences(tags_of=expected_tags) -> list[Sentence]:
    return [Sentence(tuple(text.split()), tuple(tags_of(text.split()))) for text in TEXTS]


def test_export_writes_a_self_contained_serving_directory(random_model_dir: Path, random_onnx_dir: Path) -> None:
    assert sorted(path.name for path in random_onnx_dir.iterdir()) == [
        "labels.json", "model.onnx", "model_meta.json", "tokenizer.json"
    ]
    assert json.loads((random_onnx_dir / "labels.json").read_text()) == LABELS
    meta = json.loads((random_onnx_dir / "model_meta.json").read_text())
    assert meta == {"labels": LABELS, "max_len": MAX_LEN, "opset": 17}
    assert (random_onnx_dir / "tokenizer.json").read_bytes() == (random_model_dir / "tokenizer.json").read_bytes()
    assert not [path for path in random_onnx_dir.parent.iterdir() if path.name.startswith(".")], "staging left behind"


@pytest.mark.parametrize("shape", [(1, 5), (4, 23)])
def test_onnx_graph_takes_any_batch_and_sequence_length(
    random_model_dir: Path, random_onnx_dir: Path, shape: tuple[int, int]
) -> None:
    session = ort.InferenceSession(str(random_onnx_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [(i.name, i.type) for i in session.get_inputs()] == [
        ("input_ids", "tensor(int64)"), ("attention_mask", "tensor(int64)")
    ]
    assert [o.name for o in session.get_outputs()] == ["logits"]
    rng = np.random.default_rng(0)
    input_ids = rng.integers(5, 100, size=shape, dtype=np.int64)
    attention_mask = np.ones(shape, dtype=np.int64)
    attention_mask[0, -2:] = 0
    logits = session.run(["logits"], {"input_ids": input_ids, "attention_mask": attention_mask})[0]
    model = ElectraForTokenClassification.from_pretrained(random_model_dir, attn_implementation="eager").eval()
    with torch.no_grad():
        expected = model(input_ids=torch.from_numpy(input_ids), attention_mask=torch.from_numpy(attention_mask)).logits
    assert logits.shape == (*shape, len(LABELS))
    np.testing.assert_allclose(logits, expected.numpy(), atol=1e-5)


def test_parity_passes_on_padded_batches(random_model_dir: Path, random_onnx_dir: Path) -> None:
    result = check_parity(random_model_dir, random_onnx_dir, sentences(), batch_size=3, atol=1e-4)
    assert result["parity_passed"] is True
    assert result["labels_identical"] is True
    assert result["max_abs_logit_diff"] < 1e-4
    assert result["sentences"] == len(TEXTS)
    assert 0.0 <= result["f1"] <= 1.0


def test_parity_scores_the_onnx_model_on_the_gold_tags(pattern_model_dir: Path, pattern_onnx_dir: Path) -> None:
    perfect = check_parity(pattern_model_dir, pattern_onnx_dir, sentences(), batch_size=2, atol=1e-3)
    assert (perfect["f1"], perfect["precision"], perfect["recall"]) == (1.0, 1.0, 1.0)

    def miss_locations(words: list[str]) -> list[str]:
        return [tag if "LOC" not in tag else "O" for tag in expected_tags(words)]

    partial = check_parity(pattern_model_dir, pattern_onnx_dir, sentences(miss_locations), batch_size=2, atol=1e-3)
    assert partial["recall"] == 1.0 and partial["precision"] < 1.0


def test_parity_fails_against_a_different_model(tmp_path: Path, tokenizer: Tokenizer, random_onnx_dir: Path) -> None:
    torch.manual_seed(1)
    other = save_model_dir(ElectraForTokenClassification(model_config(tokenizer)), tokenizer, tmp_path / "other")
    result = check_parity(other, random_onnx_dir, sentences(), batch_size=4, atol=1e-3)
    assert result["parity_passed"] is False
    assert result["max_abs_logit_diff"] > 1e-3


def test_export_without_a_model_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(ElectraError, match="no config.json"):
        export_onnx(tmp_path / "missing", tmp_path / "onnx", opset=17, max_len=MAX_LEN)
    assert not (tmp_path / "onnx").exists()


def test_export_refuses_a_max_len_beyond_the_model_positions(random_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ElectraError, match="finetune.max_seq_len 100 exceeds the model's 64 positions"):
        export_onnx(random_model_dir, tmp_path / "onnx", opset=17, max_len=100)
