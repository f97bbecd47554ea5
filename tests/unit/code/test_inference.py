"""Text to entities on onnxruntime: offsets into the original text, windows for long text, and model loading."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import onnx
import onnxruntime as ort
import pytest
from tokenizers import Tokenizer

from electra_model.errors import ElectraError
from electra_model.client.exported import pick_variant, session_options
from electra_model.client.ner import Entity, NerPredictor, entity_spans, split_words
from tests.fixtures_models import CORPUS, MAX_LEN, expected_tags


@pytest.fixture(scope="module")
def predictor(pattern_onnx_dir: Path) -> NerPredictor:
    return NerPredictor.from_dir(pattern_onnx_dir)


def found(entities: list[Entity]) -> list[tuple[str, str, int, int]]:
    return [(entity.type, entity.text, entity.start, entity.end) for entity in entities]


def test_offsets_index_the_original_text(predictor: NerPredictor) -> None:
    text = "😀  John Smith,\tvisited   Zürich!! Müller (New York)\nsaid: «Paris»."
    expected = [("PER", "John Smith"), ("LOC", "Zürich"), ("PER", "Müller"), ("LOC", "New York"), ("LOC", "Paris")]
    [entities] = predictor.predict([text])
    assert found(entities) == [(kind, span, text.index(span), text.index(span) + len(span)) for kind, span in expected]
    assert all(entity.score > 0.99 for entity in entities)


def test_words_split_by_conll_rules_on_any_whitespace() -> None:
    text = " Dr.  O'Neil\tmet\u00a0Zoë!"
    words = ["Dr.", "O'Neil", "met", "Zoë", "!"]
    assert split_words(text) == [(word, text.index(word), text.index(word) + len(word)) for word in words]


def test_a_word_without_sub_tokens_is_tagged_o(predictor: NerPredictor) -> None:
    text = "John \u200b Paris"  # the zero-width space is a word the normalizer deletes entirely
    assert found(predictor.predict([text])[0]) == [("PER", "John", 0, 4), ("LOC", "Paris", 7, 12)]


def test_blank_texts_give_no_entities(predictor: NerPredictor) -> None:
    results = predictor.predict(["", "   ", "\n\t", "Paris", " ", "\u00a0\u3000\u2028"])
    assert [found(entities) for entities in results] == [[], [], [], [("LOC", "Paris", 0, 5)], [], []]
    assert predictor.predict([]) == []
    [none, [paris]] = predictor.predict_words([[], ["Paris"]])
    assert none == [] and (paris.type, paris.text, paris.start, paris.end) == ("LOC", "Paris", 0, 5)
    assert paris.score == pytest.approx(1.0, abs=1e-6)


def test_a_batch_gives_the_same_entities_as_one_text_at_a_time(predictor: NerPredictor) -> None:
    texts = [*CORPUS, "", "Paris " * 40, "John"]  # mixed lengths share batches after sorting by length
    batched = predictor.predict(texts)
    assert batched == [predictor.predict([text])[0] for text in texts]
    assert len(batched[5]) == 40


def test_a_100k_character_text_is_tagged_in_windows_quickly(predictor: NerPredictor) -> None:
    unit = "Müller met John Smith in New York and then flew to Paris . "
    text = (unit * 1700)[:100_000]  # the last repetition stops at "Par", after three of its four entities
    started = time.perf_counter()
    [entities] = predictor.predict([text])
    assert time.perf_counter() - started < 20
    assert len(entities) == 4 * (100_000 // len(unit)) + 3
    assert all(text[entity.start : entity.end] == entity.text for entity in entities)


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (["ok", None], "text 1 is NoneType None, not a string"),
        ([3.5], "text 0 is float 3.5, not a string"),
        (["Paris \udcff"], "text 0 is not valid Unicode (a lone surrogate at character 6)"),
    ],
)
def test_what_is_not_text_is_refused_by_position(predictor: NerPredictor, texts: list, message: str) -> None:
    with pytest.raises(ElectraError, match=message.replace("(", r"\(").replace(")", r"\)")):
        predictor.predict(texts)


def test_every_word_of_a_long_text_gets_a_prediction(predictor: NerPredictor) -> None:
    text = " ".join(["John Smith visited Paris ."] * 400)  # 2,000 words, over 100 windows of MAX_LEN
    [entities] = predictor.predict([text])
    assert len(split_words(text)) == 2000 and predictor.max_len == MAX_LEN
    assert [entity.text for entity in entities] == ["John Smith", "Paris"] * 400
    last = entities[-1]
    assert (last.start, last.end) == (len(text) - len("Paris ."), len(text) - len(" ."))
    words = text.split()
    assert predictor.tag_words([words]) == [expected_tags(words)]


def test_a_word_longer_than_a_window_still_gets_its_tag(predictor: NerPredictor) -> None:
    words = ["John", "," * (3 * MAX_LEN), "Smith", "Paris"]  # the pre-tokenizer splits the commas into many tokens
    assert predictor.tag_words([words]) == [["B-PER", "O", "O", "B-LOC"]]  # an I-PER after O is no entity


def test_predict_words_offsets_index_the_space_joined_words(predictor: NerPredictor) -> None:
    [entities] = predictor.predict_words([["Yesterday", "John", "Smith", "left", "New", "York"]])
    assert found(entities) == [("PER", "John Smith", 10, 20), ("LOC", "New York", 26, 34)]


def test_entities_follow_conlleval_chunking() -> None:
    tags = ["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-LOC", "B-LOC", "I-PER", "I-LOC"]
    assert entity_spans(tags) == [
        ("PER", 0, 2), ("LOC", 3, 5), ("LOC", 5, 6), ("LOC", 6, 7), ("PER", 7, 8), ("LOC", 8, 9)
    ]


def test_a_local_directory_loads_and_a_missing_one_is_a_user_error(pattern_onnx_dir: Path, tmp_path: Path) -> None:
    assert found(NerPredictor.from_uri(str(pattern_onnx_dir)).predict(["Paris"])[0]) == [("LOC", "Paris", 0, 5)]
    with pytest.raises(ElectraError, match="no such model directory"):
        NerPredictor.from_uri(tmp_path / "missing")
    with pytest.raises(ElectraError, match="not an exported model"):
        NerPredictor.from_uri(tmp_path)


def test_a_registry_uri_without_a_store_is_a_user_error_and_creates_nothing(tmp_path: Path) -> None:
    store = tmp_path / "mlflow.db"
    with pytest.raises(ElectraError, match=f"no MLflow store at {store}"):
        NerPredictor.from_uri("models:/electra-ner@champion", tracking_uri=f"sqlite:///{store}")
    assert not store.exists()


def test_an_unregistered_model_is_a_user_error(mlflow_store: str) -> None:
    with pytest.raises(ElectraError) as error:
        NerPredictor.from_uri("models:/electra-ner@champion", tracking_uri=mlflow_store)
    assert str(error.value) == (
        f"registered model 'electra-ner' does not exist in {mlflow_store}; "
        "run the pipeline (make run) or pass --model PATH|models:/electra-ner/VERSION"
    )
    with pytest.raises(ElectraError, match="not a registered model URI"):
        NerPredictor.from_uri("models:/electra-ner/latest", tracking_uri=mlflow_store)


def test_the_module_imports_neither_torch_nor_transformers_nor_mlflow() -> None:
    heavy = "{'torch', 'transformers', 'mlflow', 'pydantic', 'yaml'}"
    code = f"import sys, electra_model.client.ner; print(sorted({heavy} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_variant_follows_the_device_unless_one_is_asked_for(pattern_onnx_dir: Path) -> None:
    meta = {"variants": {"fp32": {}, "int8": {}, "fp16": {}}, "cpu_variant": "int8", "gpu_variant": "fp16"}
    assert pick_variant(meta, ["CPUExecutionProvider"], None, pattern_onnx_dir) == "int8"
    assert pick_variant(meta, ["CUDAExecutionProvider", "CPUExecutionProvider"], None, pattern_onnx_dir) == "fp16"
    assert pick_variant(meta, ["CUDAExecutionProvider"], "fp32", pattern_onnx_dir) == "fp32"
    with pytest.raises(ElectraError, match="no model variant 'bf16'; it has \\['fp16', 'fp32', 'int8'\\]"):
        pick_variant(meta, ["CPUExecutionProvider"], "bf16", pattern_onnx_dir)
    for variant in ("fp32", "optimized", "int8", "fp16"):
        loaded = NerPredictor.from_dir(pattern_onnx_dir, providers=["CPUExecutionProvider"], variant=variant)
        assert loaded.variant == variant
        assert found(loaded.predict(["To Paris"])[0]) == [("LOC", "Paris", 3, 8)]


def session_graph_ops(model_file: Path, options: ort.SessionOptions, saved: Path) -> set[str]:
    """The operator types of the graph onnxruntime actually runs, after its load-time fusions."""
    options.optimized_model_filepath = str(saved)
    ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
    return {node.op_type for node in onnx.load(str(saved)).graph.node}


def test_cpu_sessions_leave_the_residual_layer_norms_unfused(pattern_onnx_dir: Path, tmp_path: Path) -> None:
    """onnxruntime fuses Add + LayerNormalization of the int8 graph at load unless told not to; that kernel was
    the slower one on CPU (benchmarks/RESULTS.md), so the client's CPU sessions must not get it."""
    int8 = pattern_onnx_dir / "model.int8.onnx"
    assert "SkipLayerNormalization" in session_graph_ops(int8, session_options(1, cpu=False), tmp_path / "gpu.onnx")
    cpu_ops = session_graph_ops(int8, session_options(1, cpu=True), tmp_path / "cpu.onnx")
    assert "SkipLayerNormalization" not in cpu_ops and "LayerNormalization" in cpu_ops


@pytest.fixture
def broken_copy(pattern_onnx_dir: Path, tmp_path: Path) -> Path:
    """A copy of the exported directory for a test to damage."""
    return Path(shutil.copytree(pattern_onnx_dir, tmp_path / "onnx"))


def test_a_tokenizer_that_does_not_match_the_model_is_refused_at_load(broken_copy: Path) -> None:
    other = Tokenizer.from_file(str(broken_copy / "tokenizer.json"))
    other.add_tokens(["Zzyzx"])
    other.save(str(broken_copy / "tokenizer.json"))
    size = other.get_vocab_size()
    with pytest.raises(ElectraError, match=f"vocabulary size is {size - 1} but tokenizer.json has {size} tokens"):
        NerPredictor.from_dir(broken_copy, variant="fp32")


def test_a_model_with_other_inputs_is_refused_at_load(broken_copy: Path) -> None:
    model = onnx.load(str(broken_copy / "model.onnx"))
    model.graph.input[1].name = "input_mask"
    for node in model.graph.node:
        node.input[:] = ["input_mask" if name == "attention_mask" else name for name in node.input]
    onnx.save(model, str(broken_copy / "model.onnx"))
    with pytest.raises(ElectraError, match=r"takes inputs \['input_ids', 'input_mask'\], but the client feeds"):
        NerPredictor.from_dir(broken_copy, variant="fp32")


def test_a_model_without_its_export_stamp_is_refused_at_load(broken_copy: Path) -> None:
    model = onnx.load(str(broken_copy / "model.int8.onnx"))
    del model.metadata_props[:]
    onnx.save(model, str(broken_copy / "model.int8.onnx"))
    with pytest.raises(ElectraError, match="vocabulary size is not recorded"):
        NerPredictor.from_dir(broken_copy, variant="int8")


def test_damaged_metadata_is_a_user_error(broken_copy: Path) -> None:
    meta = json.loads((broken_copy / "model_meta.json").read_text())
    (broken_copy / "model_meta.json").write_text(json.dumps({"labels": meta["labels"]}))
    with pytest.raises(ElectraError, match="lacks \\['cpu_variant', 'gpu_variant', 'max_len', 'predictor', 'task', 'variants'\\]"):
        NerPredictor.from_dir(broken_copy)
    (broken_copy / "model_meta.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(ElectraError, match="not the JSON the export stage writes"):
        NerPredictor.from_dir(broken_copy)


def truncate(path: Path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize(
    ("damage", "variant"),
    [
        (lambda path: truncate(path, 0.5), "fp32"),  # a copy cut off half way
        (lambda path: truncate(path, 0.999), "int8"),  # the last bytes missing
        (lambda path: path.write_bytes(b"\x00" * 4096), "fp32"),  # zeroed by a failing disk
        (lambda path: path.write_bytes(b""), "int8"),
    ],
)
def test_a_corrupt_onnx_file_is_named_with_a_hint_to_re_export(broken_copy: Path, damage, variant: str) -> None:
    meta = json.loads((broken_copy / "model_meta.json").read_text())
    model_file = broken_copy / meta["variants"][variant]["file"]
    damage(model_file)
    with pytest.raises(ElectraError) as error:
        NerPredictor.from_dir(broken_copy, variant=variant)
    message = str(error.value)
    assert message.startswith(f"{model_file}: not a loadable ONNX model (") and "re-run `dvc repro export`" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "damage",
    [
        lambda path: truncate(path, 0.5),
        lambda path: path.write_text("", encoding="utf-8"),
        lambda path: path.write_text('{"version": "1.0"}', encoding="utf-8"),  # JSON, but no tokenizer
        lambda path: path.write_bytes(b"\xff\xfe\x00{"),
    ],
)
def test_a_corrupt_tokenizer_json_is_named_with_a_hint_to_re_export(broken_copy: Path, damage) -> None:
    damage(broken_copy / "tokenizer.json")
    with pytest.raises(ElectraError) as error:
        NerPredictor.from_dir(broken_copy)
    message = str(error.value)
    assert message.startswith(f"{broken_copy / 'tokenizer.json'}: not a readable tokenizer (")
    assert message.endswith("re-run `dvc repro export`") and "\n" not in message
