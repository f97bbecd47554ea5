"""User errors at the stage level: one clear message, exit code 2, no traceback, nothing good overwritten.

Also: the stages log to a real MLflow tracking server given by MLFLOW_TRACKING_URI, not only to sqlite.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request

import pytest
from mlflow.tracking import MlflowClient

from electra_model.serving.model_server import free_port
from tests.dvc_map import stage_command
from tests.integration.project import Project, copy_project

pytestmark = pytest.mark.e2e

CONLL_OK = "EU B-ORG\nrejects O\nGerman B-MISC\ncall O\n\nPeter B-PER\nBlackburn I-PER\n"
SMALL_DEMO = {"data": {"demo": {"corpus_documents": 10, "train_sentences": 20, "valid_sentences": 5, "test_sentences": 5}}}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    project = copy_project(tmp_path_factory.mktemp("errors"), {})
    (project.root / "user").mkdir()
    (project.root / "user/corpus.txt").write_text("Some text about Europe .\n", encoding="utf-8")
    (project.root / "user/train.txt").write_text(CONLL_OK, encoding="utf-8")
    (project.root / "user/valid.txt").write_text(CONLL_OK, encoding="utf-8")
    (project.root / "user/test.txt").write_text(CONLL_OK, encoding="utf-8")
    good = project.root / "data/task/train.txt"
    good.parent.mkdir(parents=True)
    good.write_text("previous good output\n", encoding="utf-8")
    return project


def use_local_source(project: Project) -> None:
    params = project.params()
    params["data"]["source"] = "local"
    params["data"]["local"] = {"corpus": ["user/corpus.txt"]}
    params["ner"]["local"] = {split: f"user/{split}.txt" for split in ("train", "valid", "test")}
    project.write_params(params)


def assert_clean_failure(result: subprocess.CompletedProcess, *expected: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    for text in expected:
        assert text in result.stderr


def test_malformed_conll_line_names_file_and_line(project):
    use_local_source(project)
    (project.root / "user/valid.txt").write_text("EU B-ORG\nrejects\tO\textra\n", encoding="utf-8")
    result = project.run(*stage_command("download"), check=False)
    assert_clean_failure(result, "user/valid.txt:2")
    assert (project.root / "data/task/train.txt").read_text(encoding="utf-8") == "previous good output\n"
    (project.root / "user/valid.txt").write_text(CONLL_OK, encoding="utf-8")


def test_empty_corpus_is_refused(project):
    use_local_source(project)
    (project.root / "user/corpus.txt").write_text("\n\n   \n", encoding="utf-8")
    result = project.run(*stage_command("download"), check=False)
    assert_clean_failure(result, "user/corpus.txt")
    assert (project.root / "data/task/train.txt").read_text(encoding="utf-8") == "previous good output\n"


def test_stages_log_to_a_tracking_server(project, tmp_path):
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}", "--artifacts-destination", str(tmp_path / "artifacts")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    uri = f"http://127.0.0.1:{port}"
    local_store = project.env["MLFLOW_TRACKING_URI"]
    try:
        deadline = time.monotonic() + 300  # a loaded 2-core machine can take minutes to import mlflow's server
        while True:
            try:
                urllib.request.urlopen(f"{uri}/health", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline, "mlflow server did not start"
                time.sleep(1)
        params = project.params()
        params["data"]["source"] = "demo"
        params["data"]["demo"] = SMALL_DEMO["data"]["demo"]
        project.write_params(params)
        project.env["MLFLOW_TRACKING_URI"] = uri
        project.run(*stage_command("download"))
        client = MlflowClient(uri)
        experiment = client.get_experiment_by_name("electra-pipeline")
        (run,) = client.search_runs([experiment.experiment_id], filter_string="attributes.run_name = 'download'")
        assert run.inputs.dataset_inputs and run.data.metrics
    finally:
        project.env["MLFLOW_TRACKING_URI"] = local_store  # the later tests log locally, not to a stopped server
        server.terminate()
        server.wait(timeout=30)


def test_a_diverging_learning_rate_stops_pretrain_and_finetune_with_one_line(project):
    """learning_rate 1e30 is a valid number but sends the weights to inf: each training stage exits 2 at once with
    the step and the params to change, instead of training a NaN model that fails later in export."""
    params = project.params()
    params["data"]["source"] = "demo"
    params["data"]["demo"] = SMALL_DEMO["data"]["demo"]
    params["pretrain"].update(max_steps=4, warmup_steps=1, batch_size=8, max_seq_len=32, log_every=2,
                              checkpoint_every=2, learning_rate=1e30)
    params["finetune"].update(epochs=1, max_seq_len=32, batch_size=8, learning_rate=1e30)
    project.write_params(params)
    project.run(*stage_command("download"))
    project.run(*stage_command("tokenizer"))
    result = project.run(*stage_command("pretrain"), check=False)
    assert_clean_failure(result, "error: pretraining diverged: the training loss is nan at step ",
                         "pretrain.learning_rate = 1e+30", "pretrain.batch_size = 8")
    assert not (project.root / "models/pretrained").exists()

    params["pretrain"]["learning_rate"] = 1e-3
    project.write_params(params)
    project.run(*stage_command("pretrain"))
    result = project.run(*stage_command("finetune"), check=False)
    assert_clean_failure(result, "error: fine-tuning diverged: the training loss is nan at step ",
                         "finetune.learning_rate = 1e+30", "finetune.batch_size = 8")
    assert not (project.root / "models/finetuned").exists()
