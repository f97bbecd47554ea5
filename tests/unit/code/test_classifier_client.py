"""The torch-free classifier client, `electra predict` and the registered pyfunc on a classifier: labels with
probabilities per text and per text pair, equal to the torch model's, and the client chosen by the model itself."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from electra_model.cli import main
from electra_model.errors import ElectraError
from electra_model.export.build import load_torch_model
from electra_model.client.classifier import ClassifierPredictor
from electra_model.client.loader import load_predictor
from electra_model.client.ner import NerPredictor
from electra_model.tasks.classification.train import predict_probabilities
from tests.fixtures_classifier import CLASSIFIER_LABELS, CLASSIFIER_MAX_LEN, classifier_quality, cue_split
from tests.params import section
from tokenizers import Tokenizer


def test_single_texts_get_the_torch_models_labels_and_probabilities(
    classifier_model_dir: Path, classifier_onnx_dir: Path
) -> None:
    examples = cue_split(20, 11, pairs=False)
    predictor = ClassifierPredictor.from_dir(classifier_onnx_dir, variant="fp32", batch_size=4)
    served = predictor.predict([example.text for example in examples])
    tokenizer = Tokenizer.from_file(str(classifier_model_dir / "tokenizer.json"))
    expected = predict_probabilities(load_torch_model(classifier_model_dir), tokenizer, examples, CLASSIFIER_MAX_LEN, 3)
    got = np.array([[item["scores"][label] for label in CLASSIFIER_LABELS] for item in served])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    for item, example in zip(served, examples, strict=True):
        assert set(item) == {"label", "score", "scores"} and item["score"] == item["scores"][item["label"]]
    assert sum(item["label"] == example.label for item, example in zip(served, examples)) >= 18


def test_pairs_are_read_as_pairs(pair_classifier_onnx_dir: Path) -> None:
    """The cue is in the second text only: a client that dropped the pair or its segment ids would be at chance."""
    predictor = load_predictor(pair_classifier_onnx_dir)
    assert isinstance(predictor, ClassifierPredictor)
    examples = cue_split(30, 12, pairs=True)
    served = predictor.predict([e.text for e in examples], pairs=[str(e.pair) for e in examples])
    assert sum(item["label"] == e.label for item, e in zip(served, examples)) >= 27
    with pytest.raises(ElectraError, match="2 texts but 1 second texts"):
        predictor.predict(["a", "b"], pairs=["c"])
    with pytest.raises(ElectraError, match="text 0 is NoneType"):
        predictor.predict(["a"], pairs=[None])  # type: ignore[list-item]


def test_the_model_picks_its_client(pattern_onnx_dir: Path, classifier_onnx_dir: Path) -> None:
    assert isinstance(load_predictor(pattern_onnx_dir), NerPredictor)
    assert isinstance(load_predictor(classifier_onnx_dir), ClassifierPredictor)
    with pytest.raises(ElectraError, match="is served by a token_tagging predictor, not text_classification"):
        ClassifierPredictor.from_dir(pattern_onnx_dir)
    with pytest.raises(ElectraError, match="is served by a text_classification predictor, not token_tagging"):
        NerPredictor.from_dir(classifier_onnx_dir)


def test_electra_predict_json_on_a_classifier_dir(
    pair_classifier_onnx_dir: Path, pattern_onnx_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = str(pair_classifier_onnx_dir)
    assert main(["predict", "--model", model, "--json", "the film", "a story", "--pair", "a great plot",
                 "--pair", "was dull"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(row["text"], row["pair"], row["label"]) for row in rows] == [
        ("the film", "a great plot", "pos"), ("a story", "was dull", "neg")
    ]
    assert all(set(row["scores"]) == set(CLASSIFIER_LABELS) and row["score"] > 0.5 for row in rows)
    lines = tmp_path / "pairs.tsv"
    lines.write_text("the film\ta great plot\nthe plot\tquite boring\n", encoding="utf-8")
    assert main(["predict", "--model", model, "--file", str(lines)]) == 0
    human = capsys.readouterr().out.splitlines()
    assert human[0] == "[1] the film\ta great plot" and human[1].startswith("pos  ")
    assert human[3].startswith("neg  ")
    lines.write_text("the film\ta great plot\nno tab here\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--model", model, "--file", str(lines)])
    assert exit_info.value.code == 2 and "non-empty line 2 has no tab" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["predict", "--model", str(pattern_onnx_dir), "John", "--pair", "Smith"])
    assert "is a token_tagging model, which takes single texts; drop --pair" in capsys.readouterr().err


def test_the_registered_classifier_answers_text_with_labels(mlflow_store: str, pair_classifier_onnx_dir: Path) -> None:
    from electra_model.tracking.registry import register

    with mlflow.start_run():
        registration = register(pair_classifier_onnx_dir, section("export", min_f1=0.5), classifier_quality(0.95))
    assert registration["name"] == "electra-classifier" and registration["alias_moved"] is True
    model = mlflow.pyfunc.load_model("models:/electra-classifier@champion")
    rows = model.predict({"text": ["the film", "a story"], "pair": ["a great plot", "was dull"]})
    assert [row["label"] for row in rows] == ["pos", "neg"]
    frame = pd.DataFrame({"text": ["the film"], "pair": ["quite awful acting"]})
    assert model.predict(frame)[0]["label"] == "neg"
    assert set(model.predict(["good"])[0]) == {"label", "score", "scores"}  # a single text through a pair model
    with mlflow.start_run():
        rejected = register(pair_classifier_onnx_dir, section("export", min_f1=0.5), classifier_quality(0.9))
    assert rejected["reason"].startswith("accuracy 0.9000 < champion v1 accuracy 0.9500")
