"""A task is one plug-in: a third task defined in the test tree alone (tests/pair_score_task.py, sentence-pair
regression), chosen in params.yaml only (``task``, ``plugins`` and its own section), is fine-tuned by the finetune
stage itself, evaluated, exported by the export stage itself (ONNX variants, parity with torch, the variant
choice), registered in MLflow behind the gate, and served by the client from its directory and from its
``models:/`` URI, without a library file naming it."""

from __future__ import annotations

import ast
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from electra_model.client import loader
from electra_model.client.loader import load_predictor, load_served
from electra_model.config import load_params
from electra_model.errors import ElectraError
from electra_model.tasks import registry
from electra_model.tasks.catalog import task_for
from electra_model.tasks.evaluators import evaluator_for
from electra_model.tasks.plugins import task_section
from tests import pair_score_task as plugin
from tests.dvc_map import stage_argv

REPO = Path(__file__).resolve().parents[3]
TEXTS, PAIRS = ["the plot", "the film", "a story"], ["really great acting", "quite dull and boring", "lovely"]


@pytest.fixture
def registry_restored() -> Iterator[None]:
    """The task and client tables as they were before the test (the stages register the plug-in in-process)."""
    tasks, clients = dict(registry.TASKS), dict(loader.CLIENTS)
    yield
    for table, saved in ((registry.TASKS, tasks), (loader.CLIENTS, clients)):
        table.clear()
        table.update(saved)


def plugin_params(**changes: object) -> dict:
    """params.yaml as committed, choosing the third task through its plug-in reference and its own section."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params.update(task=plugin.NAME, plugins=[f"{plugin.__name__}:SPEC"], pair_score={"epochs": 12, "learning_rate": 5e-3})
    params["export"].update(min_f1=0.5, latency_runs=2)
    params["finetune"]["max_seq_len"] = plugin.MAX_LEN
    params.update(changes)
    return params


def test_a_task_defined_in_the_tests_goes_from_finetuning_to_the_client(
    tmp_path: Path, registry_restored: None, mlflow_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(plugin_params()))
    shutil.copy(REPO / "dvc.yaml", tmp_path / "dvc.yaml")
    params = load_params()
    assert plugin.NAME not in registry.TASKS  # only params.yaml names the plug-in
    data = tmp_path / "data" / "task"
    data.mkdir(parents=True)
    task_for(params).load_data(params, tmp_path / "cache").write(data)
    plugin.save_pretrained_base(tmp_path / "models" / "pretrained")

    # finetune: the stage script itself, on task: pair_score from params.yaml
    from stages.finetune import main as finetune_stage

    finetune_stage(stage_argv("finetune"))
    assert json.loads((tmp_path / "metrics" / "finetune.json").read_text())["best_valid_pearson"] > 0.9
    assert (tmp_path / "plots" / "finetune_valid.csv").read_text().splitlines()[0] == "step,epoch,valid_pearson"
    model_dir = tmp_path / "models" / "finetuned"
    metrics = evaluator_for(params).evaluate(params, model_dir, data / f"test{plugin.SUFFIX}", "test", tmp_path,
                                             tmp_path / "confusion.csv")
    assert metrics["pearson"] > 0.9

    # export and registration: the export stage itself, which finds the plug-in through params.yaml on its own
    from stages.export import main as export_stage

    registry.TASKS.pop(plugin.NAME, None)
    loader.CLIENTS.pop(plugin.KIND, None)
    export_stage(stage_argv("export"))
    exported = json.loads((tmp_path / "metrics" / "export.json").read_text())
    assert (exported["task"], exported["metric"], exported["selection_split"]) == ("pair_score", "pearson", "valid")
    assert exported["parity_passed"] and exported["alias_moved"] and exported["pearson"] > 0.9
    assert set(exported["report"]["fp32"]) == {"pearson", "mse"}
    onnx_dir = tmp_path / "models" / "onnx"
    meta = json.loads((onnx_dir / "model_meta.json").read_text())
    assert (meta["task"], meta["predictor"]) == ("pair_score", "pair_regression")

    # the client: from the directory and from the registry, as any other task's model
    local = load_predictor(onnx_dir, providers=["CPUExecutionProvider"], variant="fp32")
    spec, served = load_served("models:/electra-pair-score@champion", mlflow_store)
    assert spec is plugin.CLIENT and isinstance(served, plugin.PairScorePredictor)
    scores = served.predict(TEXTS, PAIRS)
    assert scores[0] > 0.5 > scores[1] and scores[2] > 0.5
    assert local.variant == "fp32" and local.predict(TEXTS, PAIRS) == pytest.approx(scores, abs=0.05)


def test_the_library_names_no_task_of_the_test_tree() -> None:
    """The proof above edits no library file: nothing under electra_model/ mentions the third task."""
    mentions = [path for path in (REPO / "electra_model").rglob("*.py") if plugin.NAME in path.read_text()]
    assert mentions == []


def test_no_code_outside_the_tasks_rooms_names_a_built_in_task() -> None:
    """No module of the library outside ``electra_model/tasks/``, no stage and no flow holds a task's name as a
    string (a table key, a constant, a comparison): they read the spec, and the client dispatches on the predictor
    kind ``model_meta.json`` records. Module paths (``electra_model.client.ner``), identifiers (the built-in params
    sections ``ner:`` and ``classification:``), registered model names (``electra-ner``) and prose in docstrings
    and comments are not task names used as data, so they are allowed."""
    names = {"ner", "classification"}
    assert names <= set(registry.TASKS)
    found = []
    for folder in ("electra_model", "stages", "flows"):
        for path in sorted((REPO / folder).rglob("*.py")):
            if path.is_relative_to(REPO / "electra_model" / "tasks"):
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and node.value in names:
                    found.append(f"{path.relative_to(REPO)}:{node.lineno} {node.value!r}")
    assert found == []


def test_params_name_a_registered_task_and_carry_only_its_own_section(
    tmp_path: Path, registry_restored: None
) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(plugin_params(plugins=[])))
    with pytest.raises(ElectraError, match="task 'pair_score' is not a registered task \\(registered: classification, ner\\)"):
        task_for(load_params(path))
    path.write_text(yaml.safe_dump(plugin_params(pair_score={"epochs": 0, "learning_rate": 5e-3})))
    with pytest.raises(ElectraError, match=r"\(pair_score\): invalid param epochs = 0: Input should be greater"):
        task_section(load_params(path))
    path.write_text(yaml.safe_dump(plugin_params(plugins=["tests.no_such_module:SPEC"])))
    with pytest.raises(ElectraError, match=r"plugins\[0\]: cannot load 'tests.no_such_module:SPEC'"):
        task_for(load_params(path))
    path.write_text(yaml.safe_dump(plugin_params(task="ner")))
    with pytest.raises(ElectraError, match="pair_score: unknown key"):
        load_params(path)
