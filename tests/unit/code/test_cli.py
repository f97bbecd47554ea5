"""The ``electra`` command: the installed console script against a real registry, output formats, user errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import yaml

from electra_model.cli import main
from electra_model.command_inputs import project_tracking_uri
from electra_model.tracking.registry import register
from tests.fixtures_models import quality
from tests.params import section

PROJECT_PARAMS = Path(__file__).resolve().parents[3] / "params.yaml"
PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


@pytest.fixture(autouse=True)
def _keep_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process runs of ``main`` set the progress-bar switch in os.environ; undo that after each test."""
    monkeypatch.setenv(PROGRESS_BAR, "false")


def electra(*args: str, store: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the installed ``electra`` script (``pip install -e .``) as a user would, against ``store``."""
    script = shutil.which("electra", path=str(Path(sys.executable).parent))
    assert script, "the electra console script is not installed; run `pip install -e . --no-deps`"
    env = {**os.environ, "MLFLOW_TRACKING_URI": store}
    env.pop(PROGRESS_BAR)
    return subprocess.run([script, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


def test_predict_json_from_the_champion(mlflow_store: str, pattern_onnx_dir: Path, tmp_path: Path) -> None:
    with mlflow.start_run():
        register(pattern_onnx_dir, section("export"), quality(0.9))
    result = electra("predict", "--json", "Müller met John Smith in New York.", store=mlflow_store, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [payload] = json.loads(result.stdout)
    assert payload["text"] == "Müller met John Smith in New York."
    assert [(e["type"], e["text"], e["start"], e["end"]) for e in payload["entities"]] == [
        ("PER", "Müller", 0, 6), ("PER", "John Smith", 11, 21), ("LOC", "New York", 25, 33)
    ]
    assert all(0.99 < entity["score"] <= 1.0 for entity in payload["entities"])
    assert "Downloading artifacts" not in result.stderr, "no progress bar into a pipe"


def test_predict_without_a_champion_exits_2_with_one_line(mlflow_store: str, tmp_path: Path) -> None:
    result = electra("predict", "John Smith", store=mlflow_store, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: registered model 'electra-ner' does not exist in {mlflow_store}; "
        "run the pipeline (make run) or pass --model PATH|models:/electra-ner/VERSION"
    ]


def test_human_output_is_one_line_per_entity(pattern_onnx_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "--model", str(pattern_onnx_dir), 'John Smith said "Paris".']) == 0
    assert capsys.readouterr().out.splitlines() == ['PER  0-10  "John Smith"  1.000', 'LOC  17-22  "Paris"  1.000']


def test_several_texts_get_a_header_each(pattern_onnx_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "--model", str(pattern_onnx_dir), "To Paris", "Nobody"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "[1] To Paris", 'LOC  3-8  "Paris"  1.000', "[2] Nobody", "(no entities)"
    ]


def test_a_file_is_one_text_per_non_empty_line(
    pattern_onnx_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("  Paris is far.\n\n   \nNothing here.\n", encoding="utf-8")
    assert main(["predict", "--model", str(pattern_onnx_dir), "--file", str(notes), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert [item["text"] for item in payload] == ["  Paris is far.", "Nothing here."]
    assert [[(e["text"], e["start"]) for e in item["entities"]] for item in payload] == [[("Paris", 2)], []]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["predict"], "takes TEXT arguments or --file PATH"),
        (["predict", "--file", "missing.txt"], "missing.txt: cannot read it (No such file or directory)"),
        (["predict", "--model", "no/such/dir", "text"], "no/such/dir: no such model directory"),
    ],
)
def test_user_errors_print_one_line_and_exit_2(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: ") and message in line


def test_a_file_that_is_not_utf8_names_its_line(
    pattern_onnx_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "latin1.txt"
    notes.write_bytes("Paris\nZürich\n".encode("latin-1"))
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--model", str(pattern_onnx_dir), "--file", str(notes)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == f"error: {notes}, line 2: not UTF-8 text (byte 7 is 0xfc); convert it to UTF-8\n"


def test_a_blank_text_argument_has_no_entities(pattern_onnx_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "--model", str(pattern_onnx_dir), "   ", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"text": "   ", "entities": []}]


def test_the_store_defaults_to_the_environment_then_params_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    here = tmp_path.resolve()  # relative sqlite paths are anchored at the project root: here, the working directory
    assert project_tracking_uri(None) == f"sqlite:///{here / 'mlflow.db'}"
    params = yaml.safe_load(PROJECT_PARAMS.read_text(encoding="utf-8"))
    params["tracking"]["uri"] = "sqlite:///elsewhere.db"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    assert project_tracking_uri(None) == f"sqlite:///{here / 'elsewhere.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    assert project_tracking_uri(None) == "http://tracking.example:5000"
    assert project_tracking_uri("sqlite:///explicit.db") == f"sqlite:///{here / 'explicit.db'}"


# ------------------------------------------------------------------------------------------ small user errors
def user_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one stderr line of a command that must exit 2."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: ")
    return line


def test_score_a_directory_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expected = f"error: {tmp_path}: is a directory, not a file; pass the file inside it"
    assert user_error(["score", str(tmp_path)], capsys) == expected
    gold = tmp_path / "gold.txt"
    gold.write_text("Paris B-LOC\n", encoding="utf-8")
    assert f"{tmp_path}: is a directory" in user_error(["score", str(tmp_path), "--gold", str(gold)], capsys)


@pytest.mark.parametrize("content", ["", "\n\n  \n", "-X- -X- O O\n\n"])
def test_score_a_file_without_sentences_is_an_error_not_a_zero_report(
    content: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "predictions.txt"
    empty.write_text(content, encoding="utf-8")
    assert user_error(["score", str(empty)], capsys) == (
        f"error: {empty}: has no sentences (no token lines), so there is nothing to score"
    )
    assert capsys.readouterr().out == ""


def test_predict_from_a_directory_ignores_a_broken_params_yaml(
    pattern_onnx_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A user editing params.yaml for the next experiment can still tag text with the exported model."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "params.yaml").write_text("finetune:\n  epochs: [unclosed\n", encoding="utf-8")
    assert main(["predict", "--model", str(pattern_onnx_dir), "To Paris"]) == 0
    assert capsys.readouterr().out.splitlines() == ['LOC  3-8  "Paris"  1.000']


def test_the_registry_store_is_read_from_the_tracking_section_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only tracking.* matters to a models:/ URI: errors elsewhere are ignored, errors there are named."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    params = yaml.safe_load(PROJECT_PARAMS.read_text(encoding="utf-8"))
    params["tracking"]["uri"] = "sqlite:///elsewhere.db"
    params["finetune"]["learnin_rate"] = 1e-4  # a typo elsewhere: not the registry client's business
    params["pretrain"]["max_steps"] = float("inf")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    assert project_tracking_uri(None) == f"sqlite:///{tmp_path / 'elsewhere.db'}"
    params["tracking"]["connect_timeout_s"] = True
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    with pytest.raises(SystemExit):
        main(["predict", "John"])
    error = capsys.readouterr().err
    assert error.splitlines() == [
        "error: params.yaml: invalid param tracking.connect_timeout_s = True: Value error, true/false is not a "
        "number here; give a number",
    ]


def test_a_byte_order_mark_on_stdin_stays_out_of_the_entities(pattern_onnx_dir: Path, tmp_path: Path) -> None:
    script = shutil.which("electra", path=str(Path(sys.executable).parent))
    assert script, "the electra console script is not installed; run `pip install -e . --no-deps`"
    result = subprocess.run([script, "predict", "--model", str(pattern_onnx_dir), "--file", "-", "--json"],
                            input="\ufeffParis is far.\nJohn Smith\n".encode("utf-8"), capture_output=True,
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert [item["text"] for item in payload] == ["Paris is far.", "John Smith"]
    entities = [[(e["text"], e["start"]) for e in item["entities"]] for item in payload]
    assert entities == [[("Paris", 0)], [("John Smith", 0)]]
