"""ONNX export: the serving directory and its variants, fused attention, parity and F1 of every variant against
torch, latency, the choice of the variant served on CPU, and a CRF head's chain saved beside the graphs and decoded
with by the client and the export checks."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from tokenizers import Tokenizer
from transformers import ElectraForTokenClassification

from electra_model.tasks.ner.conll import Sentence
from electra_model.errors import ElectraError
from electra_model.export.build import _trace, export_onnx
from electra_model.export.choose import (
    block_timings,
    check_and_choose,
    check_variants,
    choose_cpu_variant,
    measure_latency,
    summarize,
)
from electra_model.export.optimize import optimize_graph
from electra_model.data.tokenizer import load_backend_tokenizer
from electra_model.client.exported import read_meta
from electra_model.client.ner import CHAIN_FILE, NerPredictor
from electra_model.tasks.ner.spec import NER
from electra_model.tasks.ner.crf import model_chain
from electra_model.tasks.ner.finetune import predict_word_log_probs
from electra_model.tasks.ner.heads import load_finetuned
from electra_model.tasks.ner.metrics import entity_scores
from electra_model.client.tag_decoding import CONSTRAINED, decode_tags
from tests.fixtures_models import CRF_START_PENALTY, LABELS, LIMITS, MAX_LEN, expected_tags, model_config, save_model_dir
from tests.params import section

TEXTS = [
    "John Smith visited Paris yesterday .",
    "Müller lives in Zürich , not in New York !",
    "Paris",
    "John and Smith met Müller in New York .",
]  # each fits MAX_LEN sub-tokens, so no word is cut off and the pattern model scores F1 1.0
VARIANTS = ["fp16", "fp32", "int8", "optimized"]


def sentences(tags_of=expected_tags) -> list[Sentence]:
    return [Sentence(tuple(text.split()), tuple(tags_of(text.split()))) for text in TEXTS]


def test_export_writes_a_self_contained_serving_directory(random_model_dir: Path, random_onnx_dir: Path) -> None:
    assert sorted(path.name for path in random_onnx_dir.iterdir()) == [
        "labels.json", "model.fp16.onnx", "model.int8.onnx", "model.onnx", "model.optimized.onnx", "model_meta.json",
        "tokenizer.json",
    ]
    assert json.loads((random_onnx_dir / "labels.json").read_text()) == LABELS
    meta = json.loads((random_onnx_dir / "model_meta.json").read_text())
    assert {key: meta[key] for key in ("labels", "max_len", "opset", "cpu_variant", "gpu_variant")} == {
        "labels": LABELS, "max_len": MAX_LEN, "opset": 17, "cpu_variant": "fp32", "gpu_variant": "fp16"
    }
    assert sorted(meta["variants"]) == VARIANTS
    assert (random_onnx_dir / "tokenizer.json").read_bytes() == (random_model_dir / "tokenizer.json").read_bytes()
    assert not [path for path in random_onnx_dir.parent.iterdir() if path.name.startswith(".")], "staging left behind"


def test_attention_is_fused_and_layer_norms_only_for_the_gpu(random_onnx_dir: Path) -> None:
    assert read_meta(random_onnx_dir)["fused_operators"] == {"Attention": 1, "BiasGelu": 1, "LayerNormalization": 3}
    ops = {
        name: {node.op_type for node in onnx.load(str(random_onnx_dir / entry["file"])).graph.node}
        for name, entry in read_meta(random_onnx_dir)["variants"].items()
    }
    assert "Attention" in ops["optimized"] and "Attention" in ops["fp16"]
    assert not {"SkipLayerNormalization", "EmbedLayerNormalization"} & ops["optimized"]
    assert {"SkipLayerNormalization", "EmbedLayerNormalization"} <= ops["fp16"]
    assert "QAttention" in ops["int8"] and "DynamicQuantizeLinear" in ops["int8"]
    assert "Softmax" in ops["fp32"] and "Attention" not in ops["fp32"]


def test_a_graph_whose_attention_does_not_fuse_is_refused(random_model_dir: Path, tmp_path: Path) -> None:
    """SDPA attention exports as a graph the optimizer cannot match; the export must say so, not ship it unfused."""
    model = ElectraForTokenClassification.from_pretrained(random_model_dir, attn_implementation="sdpa").eval()
    _trace(model, tmp_path / "sdpa.onnx", 17, NER.client.inputs, NER.client.logit_axes)
    with pytest.raises(ElectraError, match="fused 0 Attention nodes for 1 layers"):
        optimize_graph(tmp_path / "sdpa.onnx", tmp_path / "optimized.onnx", model, for_cpu=True)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("shape", [(1, 5), (4, 23)])
def test_every_variant_takes_any_batch_and_sequence_length(
    random_model_dir: Path, random_onnx_dir: Path, variant: str, shape: tuple[int, int]
) -> None:
    file = read_meta(random_onnx_dir)["variants"][variant]["file"]
    session = ort.InferenceSession(str(random_onnx_dir / file), providers=["CPUExecutionProvider"])
    assert [(i.name, i.type) for i in session.get_inputs()] == [
        ("input_ids", "tensor(int64)"), ("attention_mask", "tensor(int64)")
    ]
    assert [(o.name, o.type) for o in session.get_outputs()] == [("logits", "tensor(float)")]
    rng = np.random.default_rng(0)
    input_ids = rng.integers(5, 100, size=shape, dtype=np.int64)
    attention_mask = np.ones(shape, dtype=np.int64)
    attention_mask[0, -2:] = 0
    logits = session.run(["logits"], {"input_ids": input_ids, "attention_mask": attention_mask})[0]
    model = ElectraForTokenClassification.from_pretrained(random_model_dir, attn_implementation="eager").eval()
    with torch.no_grad():
        expected = model(input_ids=torch.from_numpy(input_ids), attention_mask=torch.from_numpy(attention_mask)).logits
    real = attention_mask.astype(bool)
    assert logits.shape == (*shape, len(LABELS))
    atol = 1e-5 if variant in ("fp32", "optimized") else 0.05  # int8 and fp16 round; padding rows are free
    np.testing.assert_allclose(logits[real], expected.numpy()[real], atol=atol)


def test_variants_match_torch_on_padded_batches(random_model_dir: Path, random_onnx_dir: Path) -> None:
    results = check_variants(random_model_dir, random_onnx_dir, sentences(), batch_size=3)
    assert sorted(results) == VARIANTS
    for name in ("fp32", "optimized"):
        assert results[name]["labels_identical"] is True
        assert results[name]["max_abs_logit_diff"] < 1e-5
    assert 0 < results["int8"]["max_abs_logit_diff"] < 0.1 and 0 < results["fp16"]["max_abs_logit_diff"] < 0.05
    assert all(0.0 <= result["f1"] <= 1.0 for result in results.values())
    summary = summarize(results, "int8", atol=1e-4, spec=NER)
    assert summary["parity_passed"] is True and summary["serve_variant"] == "int8"
    assert (summary["metric"], summary["score"]) == ("f1", results["int8"]["f1"])


def test_every_variant_is_scored_on_the_gold_tags(pattern_model_dir: Path, pattern_onnx_dir: Path) -> None:
    perfect = check_variants(pattern_model_dir, pattern_onnx_dir, sentences(), batch_size=2)
    assert {name: (r["f1"], r["precision"], r["recall"]) for name, r in perfect.items()} == {
        name: (1.0, 1.0, 1.0) for name in VARIANTS
    }

    def miss_locations(words: list[str]) -> list[str]:
        return [tag if "LOC" not in tag else "O" for tag in expected_tags(words)]

    partial = check_variants(pattern_model_dir, pattern_onnx_dir, sentences(miss_locations), batch_size=2)
    assert all(r["recall"] == 1.0 and r["precision"] < 1.0 for r in partial.values())


def test_long_sentences_are_scored_word_for_word(pattern_model_dir: Path, pattern_onnx_dir: Path) -> None:
    words = "John Smith visited Paris and New York .".split() * 6  # 48 words, three windows of MAX_LEN
    long = [Sentence(tuple(words), tuple(expected_tags(words)))]
    assert check_variants(pattern_model_dir, pattern_onnx_dir, long, batch_size=2)["fp32"]["f1"] == 1.0


def test_parity_fails_against_a_different_model(tmp_path: Path, tokenizer: Tokenizer, random_onnx_dir: Path) -> None:
    torch.manual_seed(1)
    other = save_model_dir(ElectraForTokenClassification(model_config(tokenizer)), tokenizer, tmp_path / "other")
    result = summarize(check_variants(other, random_onnx_dir, sentences(), batch_size=4), "fp32", atol=1e-3, spec=NER)
    assert result["parity_passed"] is False
    assert result["max_abs_logit_diff"] > 1e-3


def test_latency_is_measured_for_every_variant(random_onnx_dir: Path) -> None:
    latency = measure_latency(random_onnx_dir, runs=3, threads=1)
    assert sorted(latency) == VARIANTS
    for timing in latency.values():
        assert 0 < timing["median_ms"] <= timing["p95_ms"] and timing["per_s"] > 0


def test_contenders_are_timed_in_settled_blocks_not_alternated() -> None:
    """Each contender runs its calls back to back, opened by untimed calls, so one contender's lingering threads
    cannot land in another's timings; rounds repeat the blocks."""
    order: list[str] = []
    calls = {name: (lambda name=name: order.append(name)) for name in ("a", "b")}
    timings = block_timings(calls, runs=5, rounds=2, settle_s=0.0)
    assert {name: len(seconds) for name, seconds in timings.items()} == {"a": 5, "b": 5}
    blocks = [(name, len(list(group))) for name, group in itertools.groupby(order)]
    assert blocks == [("a", 6), ("b", 6), ("a", 5), ("b", 5)]  # 3 untimed calls, then 3 and 2 timed ones


def scored(f1: dict[str, float], ms: dict[str, float]) -> dict[str, dict[str, float]]:
    return {name: {"f1": f1[name], "latency_ms_b1": ms[name]} for name in f1}


def test_auto_serves_the_fastest_variant_within_the_f1_drop() -> None:
    ms = {"fp32": 9.0, "optimized": 5.0, "int8": 2.0, "fp16": 1.0}
    close = scored({"fp32": 0.900, "optimized": 0.900, "int8": 0.896, "fp16": 0.9}, ms)
    variant, reason = choose_cpu_variant(close, section("export"))
    assert variant == "int8"
    assert reason.startswith("int8: fastest at batch 1 (fp32 9.00 ms, optimized 5.00 ms, int8 2.00 ms)")
    lossy = scored({"fp32": 0.900, "optimized": 0.900, "int8": 0.890, "fp16": 0.9}, ms)
    assert choose_cpu_variant(lossy, section("export"))[0] == "optimized"
    assert choose_cpu_variant(lossy, section("export", max_f1_drop=0.02))[0] == "int8"
    chosen = choose_cpu_variant(close, section("export", serve_variant="fp32"))
    assert chosen == ("fp32", "fp32: set by export.serve_variant")


def test_auto_reads_a_lower_is_better_score_from_the_other_side() -> None:
    """For an error (lower is better) the drop allowed is a rise: int8's 0.104 is within 0.005 of fp32's 0.100,
    0.110 is not, and 0.050 is better; read as a score (higher is better) the last two swap."""
    ms = {"fp32": 9.0, "optimized": 5.0, "int8": 2.0, "fp16": 1.0}
    errors = {"fp32": 0.100, "optimized": 0.100, "int8": 0.104, "fp16": 0.1}
    export = section("export", max_f1_drop=0.005)

    def served(int8: float, higher_is_better: bool) -> str:
        return choose_cpu_variant(scored({**errors, "int8": int8}, ms), export, "f1", higher_is_better)[0]

    assert served(0.104, higher_is_better=False) == "int8"
    assert (served(0.110, higher_is_better=False), served(0.110, higher_is_better=True)) == ("optimized", "int8")
    assert (served(0.050, higher_is_better=False), served(0.050, higher_is_better=True)) == ("int8", "optimized")


def test_check_and_choose_records_the_choice_in_the_served_directory(
    pattern_model_dir: Path, tmp_path: Path
) -> None:
    onnx_dir = export_onnx(pattern_model_dir, tmp_path / "onnx", opset=17, max_len=MAX_LEN, limits=LIMITS)
    export = section("export", serve_variant="int8")
    quality = check_and_choose(pattern_model_dir, onnx_dir, sentences(), 2, export, split="valid")
    assert (quality.serve_variant, quality.score, quality.parity_passed) == ("int8", 1.0, True)
    assert quality.fused_operators["Attention"] == 1
    assert all(variant["latency_ms_b1"] > 0 for variant in quality.variants.values())
    meta = read_meta(onnx_dir)
    assert meta["cpu_variant"] == "int8" and meta["variants"]["int8"]["f1"] == 1.0
    predictor = NerPredictor.from_dir(onnx_dir, providers=["CPUExecutionProvider"])
    assert predictor.variant == "int8"
    assert [e.text for e in predictor.predict(["John Smith left Paris."])[0]] == ["John Smith", "Paris"]


def test_export_without_a_model_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(ElectraError, match="no config.json"):
        export_onnx(tmp_path / "missing", tmp_path / "onnx", opset=17, max_len=MAX_LEN, limits=LIMITS)
    assert not (tmp_path / "onnx").exists()


def test_export_refuses_a_max_len_beyond_the_model_positions(random_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ElectraError, match="finetune.max_seq_len 100 exceeds the model's 64 positions"):
        export_onnx(random_model_dir, tmp_path / "onnx", opset=17, max_len=100, limits=LIMITS)


# ------------------------------------------------------------------------------------------------- CRF head
def chain_decoding(model_dir: Path, words: list[list[str]]) -> tuple[list[list[str]], list[list[str]]]:
    """The torch model's own decoding (with its chain) and its emissions' constrained decoding, as evaluation
    computes them, for comparison with what the exported directory decodes."""
    model = load_finetuned(model_dir).eval()
    tokenizer = load_backend_tokenizer(model_dir)
    scores = predict_word_log_probs(model, tokenizer, [Sentence(tuple(w), ("O",) * len(w)) for w in words], MAX_LEN, 4)
    return (decode_tags(scores, LABELS, CONSTRAINED, model_chain(model)), decode_tags(scores, LABELS, CONSTRAINED))


def test_a_crf_model_exports_its_chain_and_the_client_decodes_with_it(
    crf_pattern_model_dir: Path, crf_pattern_onnx_dir: Path, random_onnx_dir: Path
) -> None:
    saved = json.loads((crf_pattern_onnx_dir / CHAIN_FILE).read_text())
    chain = model_chain(load_finetuned(crf_pattern_model_dir))
    assert saved["labels"] == LABELS and saved["transitions"] == chain.transitions.tolist()
    assert saved["start"][LABELS.index("B-PER")] == CRF_START_PENALTY and saved["end"] == chain.end.tolist()
    words = [text.split() for text in TEXTS]
    own, emissions_only = chain_decoding(crf_pattern_model_dir, words)
    assert own != emissions_only, "the chain must change some decision, or this test shows nothing"
    assert own[0][0] != "B-PER" and emissions_only[0][0] == "B-PER"  # "John" opens TEXTS[0]
    for variant in ("fp32", "int8"):
        predictor = NerPredictor.from_dir(crf_pattern_onnx_dir, providers=["CPUExecutionProvider"], variant=variant)
        assert predictor.tag_words(words) == own
    softmax = NerPredictor.from_dir(random_onnx_dir, providers=["CPUExecutionProvider"])
    assert not (random_onnx_dir / CHAIN_FILE).exists() and softmax.chain is None


def test_the_export_checks_score_the_crf_models_own_decoding(
    crf_pattern_model_dir: Path, crf_pattern_onnx_dir: Path
) -> None:
    """The alias gate and the served-variant choice read these F1s: they must be the chain's, not the emissions'."""
    gold = sentences()
    own, _ = chain_decoding(crf_pattern_model_dir, [list(s.tokens) for s in gold])
    expected = entity_scores([s.tags for s in gold], own)["overall"]["f1"]
    results = check_variants(crf_pattern_model_dir, crf_pattern_onnx_dir, gold, batch_size=2)
    assert expected < 1.0 and results["fp32"]["f1"] == results["optimized"]["f1"] == expected
    assert results["fp32"]["labels_identical"] and results["fp32"]["max_abs_logit_diff"] < 1e-5


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda chain: {**chain, "labels": chain["labels"][::-1]}, "its labels .* are not the model's"),
        (lambda chain: {**chain, "end": chain["end"][:-1]}, "do not describe one set of labels"),
        (lambda chain: {key: value for key, value in chain.items() if key != "start"}, "lacks 'start'"),
        (lambda chain: "not json {", "Expecting value"),
    ],
)
def test_a_chain_file_that_does_not_belong_to_the_model_is_refused(
    crf_pattern_onnx_dir: Path, tmp_path: Path, change, message: str
) -> None:
    copy = tmp_path / "onnx"
    shutil.copytree(crf_pattern_onnx_dir, copy)
    changed = change(json.loads((copy / CHAIN_FILE).read_text()))
    (copy / CHAIN_FILE).write_text(changed if isinstance(changed, str) else json.dumps(changed))
    with pytest.raises(ElectraError, match=f"{CHAIN_FILE}: not the CRF chain the export stage writes .*{message}"):
        NerPredictor.from_dir(copy, providers=["CPUExecutionProvider"])
