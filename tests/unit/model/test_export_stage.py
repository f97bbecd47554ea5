"""The export stage chooses on validation only: the test file cannot change the served variant or the alias."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from electra_model.config import ExportParams
from electra_model.tasks.ner.conll import Sentence, write_conll
from electra_model.export.choose import choose_cpu_variant
from tests.dvc_map import stage_argv
from tests.fixtures_models import MAX_LEN, expected_tags

REPO = Path(__file__).resolve().parents[3]
TEXTS = ["John Smith visited Paris yesterday .", "Müller lives in Zürich , not in New York !", "The café in Paris ."]


def run_export(project: Path, pattern_model_dir: Path, test_tags: str, monkeypatch: pytest.MonkeyPatch) -> dict:
    """The export stage in a fresh project with its own tracking store; ``test_tags`` is ``gold`` or ``wrong``."""
    project.mkdir()
    monkeypatch.chdir(project)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project / 'mlflow.db'}")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["export"].update(min_f1=0.5, latency_runs=4)
    params["finetune"]["max_seq_len"] = MAX_LEN
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    shutil.copy(REPO / "dvc.yaml", project / "dvc.yaml")
    shutil.copytree(pattern_model_dir, project / "models" / "finetuned")
    gold = [Sentence(tuple(text.split()), tuple(expected_tags(text.split()))) for text in TEXTS]
    wrong = [Sentence(s.tokens, tuple("B-ORG" if tag == "O" else "O" for tag in s.tags)) for s in gold]
    write_conll(project / "data" / "task" / "valid.txt", gold)
    write_conll(project / "data" / "task" / "test.txt", gold if test_tags == "gold" else wrong)
    from stages.export import main

    main(stage_argv("export"))
    return json.loads((project / "metrics" / "export.json").read_text())


def test_the_test_file_cannot_change_the_choice_or_the_gate(
    tmp_path: Path, pattern_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    honest = run_export(tmp_path / "gold-test", pattern_model_dir, "gold", monkeypatch)
    scrambled = run_export(tmp_path / "wrong-test", pattern_model_dir, "wrong", monkeypatch)
    assert honest["selection_split"] == scrambled["selection_split"] == "valid"
    assert honest["report"]["fp32"]["f1"] == 1.0 and scrambled["report"]["fp32"]["f1"] == 0.0  # test did change
    for key in ("f1", "alias_moved", "parity_passed"):
        assert honest[key] == scrambled[key], key
    assert scrambled["alias_moved"] is True  # a test F1 of 0 < min_f1 0.5 did not stop the alias: the gate reads valid
    assert {n: v["f1"] for n, v in honest["variants"].items()} == {n: v["f1"] for n, v in scrambled["variants"].items()}
    # the served variant is a function of the validation F1 and the latencies alone (which vary from run to run)
    export = ExportParams.model_validate(yaml.safe_load((REPO / "params.yaml").read_text())["export"])
    for run, project in ((honest, "gold-test"), (scrambled, "wrong-test")):
        assert run["serve_variant"] == choose_cpu_variant(run["variants"], export)[0]
        assert json.loads((tmp_path / project / "models/onnx/model_meta.json").read_text())["cpu_variant"] == run[
            "serve_variant"
        ]
