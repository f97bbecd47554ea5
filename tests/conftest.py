"""Shared fixtures for the export / inference / registry / CLI / serving tests: tiny models and a throwaway MLflow
store (here, at the top of tests/, so that the unit tests and the end-to-end client and serving tests share them).

``random_model_dir`` (random weights, for parity and shape checks, where attention and padding matter),
``pattern_model_dir`` (hand-set weights with known predictions, see tests/fixtures_models.py), both softmax heads,
and ``crf_pattern_model_dir`` (the pattern with a CRF head whose chain changes some predictions) are built and
exported once per session.

``classifier_model_dir`` and ``pair_classifier_model_dir`` are tiny sequence classifiers fine-tuned on cue-word
sentiment (single texts; pairs whose second text holds the cue, see tests/fixtures_classifier.py), exported once
per session as ``classifier_onnx_dir`` and ``pair_classifier_onnx_dir``; these four are built once per test run and
shared by the pytest-xdist workers (tests/shared_once.py), so their users must not write into them.

``mlflow_store`` gives each test its own sqlite store (a copy of a migrated template, which is much faster than
migrating a fresh database per test) with an experiment whose artifacts live in the test's tmp_path.

Under pytest-xdist each worker gets its share of the cores for torch's threads, and so do the stages and servers it
starts (``OMP_NUM_THREADS``): two workers on two cores each running two threads oversubscribe them, and torch's
spinning threads then slow a tiny training run several times over.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
import torch
from mlflow.tracking import MlflowClient
from pytest_timeout import get_env_settings
from tokenizers import Tokenizer
from transformers import ElectraForTokenClassification

from electra_model.export.build import export_onnx
from tests.fixtures_classifier import CLASSIFIER_MAX_LEN, train_classifier
from tests.fixtures_models import LIMITS, MAX_LEN, build_tokenizer, make_crf_pattern, make_pattern, model_config, save_model_dir
from tests.shared_once import build_once, shared_root

if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    THREADS = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def time_bound(item: pytest.Item, default: float) -> float:
    """The seconds pytest-timeout gives ``item``: its own ``timeout`` marker's, else the suite's."""
    marker = item.get_closest_marker("timeout")
    if marker is None:
        return default
    return float(marker.args[0] if marker.args else marker.kwargs.get("timeout", default))


@pytest.hookimpl(trylast=True)  # after tests/integration/conftest.py gives the demo run's users their bound
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Modules whose tests declare the longest time limits run first.

    pytest-xdist hands whole modules (``--dist loadfile``) to whichever worker is free, in collection order
    (``--no-loadscope-reorder``; its default order, most tests first, put the one-test modules last). A long
    module that starts last runs alone on one core while the other worker has nothing left: the power-cut walk
    (9 minutes) did that in the suite's run of 2026-12-08. A test that needs more than the suite's limit says so
    with its ``timeout`` marker, so that bound orders the modules; the order inside a module is kept.
    """
    default = get_env_settings(config).timeout or 0.0
    longest: dict[str, float] = {}
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        longest[module] = max(longest.get(module, 0.0), time_bound(item, default))
    items.sort(key=lambda item: -longest[item.nodeid.split("::", 1)[0]])


@pytest.fixture(scope="session")
def tokenizer() -> Tokenizer:
    return build_tokenizer()


@pytest.fixture(scope="session")
def random_model_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer: Tokenizer) -> Path:
    torch.manual_seed(0)
    model = ElectraForTokenClassification(model_config(tokenizer)).eval()
    return save_model_dir(model, tokenizer, tmp_path_factory.mktemp("random") / "ner")


@pytest.fixture(scope="session")
def pattern_model_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer: Tokenizer) -> Path:
    torch.manual_seed(0)
    model = ElectraForTokenClassification(model_config(tokenizer)).eval()
    make_pattern(model, tokenizer)
    return save_model_dir(model, tokenizer, tmp_path_factory.mktemp("pattern") / "ner")


@pytest.fixture(scope="session")
def crf_pattern_model_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer: Tokenizer) -> Path:
    return save_model_dir(make_crf_pattern(tokenizer), tokenizer, tmp_path_factory.mktemp("crf-pattern") / "ner")


@pytest.fixture(scope="session")
def crf_pattern_onnx_dir(crf_pattern_model_dir: Path) -> Path:
    return export_onnx(crf_pattern_model_dir, crf_pattern_model_dir.parent / "onnx", opset=17, max_len=MAX_LEN, limits=LIMITS)


@pytest.fixture(scope="session")
def random_onnx_dir(random_model_dir: Path) -> Path:
    return export_onnx(random_model_dir, random_model_dir.parent / "onnx", opset=17, max_len=MAX_LEN, limits=LIMITS)


@pytest.fixture(scope="session")
def pattern_onnx_dir(pattern_model_dir: Path) -> Path:
    return export_onnx(pattern_model_dir, pattern_model_dir.parent / "onnx", opset=17, max_len=MAX_LEN, limits=LIMITS)


@pytest.fixture(scope="session")
def classifier_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _, model = build_once(shared_root(tmp_path_factory), "classifier",
                          lambda folder: str(train_classifier(folder, pairs=False)))
    return Path(model)


@pytest.fixture(scope="session")
def pair_classifier_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _, model = build_once(shared_root(tmp_path_factory), "pair-classifier",
                          lambda folder: str(train_classifier(folder, pairs=True)))
    return Path(model)


@pytest.fixture(scope="session")
def classifier_onnx_dir(tmp_path_factory: pytest.TempPathFactory, classifier_model_dir: Path) -> Path:
    _, onnx = build_once(shared_root(tmp_path_factory), "classifier-onnx", lambda folder: str(
        export_onnx(classifier_model_dir, folder / "onnx", 17, CLASSIFIER_MAX_LEN, LIMITS)))
    return Path(onnx)


@pytest.fixture(scope="session")
def pair_classifier_onnx_dir(tmp_path_factory: pytest.TempPathFactory, pair_classifier_model_dir: Path) -> Path:
    _, onnx = build_once(shared_root(tmp_path_factory), "pair-classifier-onnx", lambda folder: str(
        export_onnx(pair_classifier_model_dir, folder / "onnx", 17, CLASSIFIER_MAX_LEN, LIMITS)))
    return Path(onnx)


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, fully migrated MLflow sqlite database to copy from."""
    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def mlflow_store(tmp_path: Path, migrated_store: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """This test's own tracking + registry store, selected through MLFLOW_TRACKING_URI as a user would."""
    database = tmp_path / "mlflow.db"
    shutil.copyfile(migrated_store, database)
    uri = f"sqlite:///{database}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    experiment_id = mlflow.create_experiment("tests", artifact_location=(tmp_path / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=experiment_id)
    yield uri
    mlflow.set_tracking_uri(None)
