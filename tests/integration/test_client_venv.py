"""The light client installed as a user would: its wheel built from client/, installed with its [cpu] extra into
a fresh virtual environment that has no torch, then text -> entities on an exported model. Slow (a pip install of
onnxruntime, tokenizers and numpy), hence e2e."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
LONG = "Müller met John in New York . " * 30  # 180 words: several windows of the fixture's 16 sub-tokens
CLIENT_SCRIPT = r"""
import json, sys
try:
    import torch
except ImportError:
    pass
else:
    sys.exit("torch is importable in the client venv")
from electra_model.errors import ElectraError
from electra_model.client.ner import NerPredictor

predictor = NerPredictor.from_uri(sys.argv[1], batch_size=4)
texts = ["John Smith left Paris.", "", "   ", sys.argv[2]]
try:
    NerPredictor.from_uri("models:/electra-ner@champion")
except ElectraError as error:
    registry_error = str(error)
print(json.dumps({
    "variant": predictor.variant,
    "texts": [[e.to_dict() for e in entities] for entities in predictor.predict(texts)],
    "words": [[e.to_dict() for e in entities] for entities in predictor.predict_words([["To", "Zürich", "!"]])],
    "registry_error": registry_error,
    "modules": sorted({"torch", "transformers", "mlflow", "pydantic", "electra_model.export"} & set(sys.modules)),
}))
"""


def pip(*args: str) -> None:
    """This interpreter's pip (the fresh venv gets none, which saves creating one there)."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stderr


CRF_SCRIPT = r"""
import json, sys
from electra_model.client.ner import NerPredictor

predictor = NerPredictor.from_dir(sys.argv[1], providers=["CPUExecutionProvider"])
print(json.dumps({"chain": predictor.chain is not None,
                  "texts": [[e.to_dict() for e in entities] for entities in predictor.predict(sys.argv[2:])]}))
"""


def test_the_client_installs_and_runs_without_torch(
    tmp_path: Path, pattern_onnx_dir: Path, crf_pattern_onnx_dir: Path
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    pip("wheel", "--quiet", "--no-deps", "--no-build-isolation", str(REPO / "client"), "--wheel-dir", str(tmp_path))
    [wheel] = tmp_path.glob("electra_ner_client-*.whl")
    pip("--python", str(python), "install", "--quiet", f"{wheel}[cpu]")
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    listing = (
        "import electra_model, json, pathlib; root = pathlib.Path(electra_model.__path__[0]); "
        "print(json.dumps(sorted(path.relative_to(root).as_posix() for path in root.rglob('*.py'))))"
    )
    files = subprocess.run(
        [str(python), "-c", listing], capture_output=True, text=True, env=env, cwd=tmp_path, check=True
    ).stdout
    client = sorted(f"client/{path.name}" for path in (REPO / "electra_model" / "client").glob("*.py"))
    assert json.loads(files) == ["__init__.py", *client, "errors.py"]
    result = subprocess.run(
        [str(python), "-c", CLIENT_SCRIPT, str(pattern_onnx_dir), LONG],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert output["modules"] == []
    assert output["variant"] == "fp32"
    found = [[(e["type"], e["text"], e["start"], e["end"]) for e in entities] for entities in output["texts"]]
    assert found[:3] == [[("PER", "John Smith", 0, 10), ("LOC", "Paris", 16, 21)], [], []]
    last = LONG.rindex("New York")
    assert len(found[3]) == 90 and found[3][-1] == ("LOC", "New York", last, last + len("New York"))
    assert [(e["type"], e["text"], e["start"]) for e in output["words"][0]] == [("LOC", "Zürich", 3)]
    assert "pip install 'electra-ner-client[registry]'" in output["registry_error"]

    # a CRF-head model: the torch-free client reads crf_chain.json and decodes exactly as the project does
    texts = ["John Smith left Paris.", LONG]
    result = subprocess.run(
        [str(python), "-c", CRF_SCRIPT, str(crf_pattern_onnx_dir), *texts],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    crf = json.loads(result.stdout)
    from electra_model.client.ner import NerPredictor

    def spans(rows: list) -> list:  # scores left out: the venv's onnxruntime may round differently
        return [[(e["type"], e["start"], e["end"]) for e in row] for row in rows]

    here = NerPredictor.from_dir(crf_pattern_onnx_dir, providers=["CPUExecutionProvider"]).predict(texts)
    assert crf["chain"] is True and spans(crf["texts"]) == spans([[e.to_dict() for e in row] for row in here])
    assert spans(crf["texts"])[0] != spans(output["texts"])[0], "the chain changes the first sentence's entities"
