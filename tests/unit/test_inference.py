"""Text to entities on onnxruntime: offsets into the original text, windows for long text, and model loading."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from electra_model.errors import ElectraError
from electra_model.inference import Entity, NerPredictor, entity_spans, split_words
from tests.fixtures_models import MAX_LEN, expected_tags


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


def test_words_split_like_the_bert_pre_tokenizer() -> None:
    text = " Dr.  O'Neil\tmet\u00a0Zoë!"
    words = ["Dr", ".", "O", "'", "Neil", "met", "Zoë", "!"]
    assert split_words(text) == [(word, text.index(word), text.index(word) + len(word)) for word in words]


def test_a_word_without_sub_tokens_is_tagged_o(predictor: NerPredictor) -> None:
    text = "John \u200b Paris"  # the zero-width space is a word the normalizer deletes entirely
    assert found(predictor.predict([text])[0]) == [("PER", "John", 0, 4), ("LOC", "Paris", 7, 12)]


def test_blank_texts_give_no_entities(predictor: NerPredictor) -> None:
    results = predictor.predict(["", "   ", "\n\t", "Paris", " "])
    assert [found(entities) for entities in results] == [[], [], [], [("LOC", "Paris", 0, 5)], []]
    assert predictor.predict([]) == []


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
    assert predictor.tag_words([words]) == [["B-PER", "O", "I-PER", "B-LOC"]]


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
    with pytest.raises(ElectraError, match="not an exported NER model"):
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
    code = "import sys, electra_model.inference; print(sorted({'torch', 'transformers', 'mlflow'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
