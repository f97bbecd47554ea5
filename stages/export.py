"""DVC stage `export`: ONNX export, parity check against torch, registration as ``export.model_name``.

The alias (``export.alias``, default ``champion``) moves to the new version only if parity passes, the entity F1
reaches ``export.min_f1`` and is not below the current champion's. Outputs: ``models/onnx`` and
``metrics/export.json``. Run with ``dvc repro export``.
"""

from __future__ import annotations

from pathlib import Path

import mlflow

from electra_model.config import load_params
from electra_model.data.conll import read_conll
from electra_model.errors import exit_on_user_error
from electra_model.export import check_parity, export_onnx
from electra_model.io import write_json
from electra_model.registry import register
from electra_model.tracking import stage_run

NER_DIR = Path("data/ner")
MODEL_DIR = Path("models/ner")
ONNX_DIR = Path("models/onnx")
METRICS = Path("metrics/export.json")


@exit_on_user_error
def main() -> None:
    params = load_params()
    with stage_run("export", params.tracking, {"export": params.export.model_dump(), "evaluate.split": params.evaluate.split}):
        sentences = read_conll(NER_DIR / f"{params.evaluate.split}.txt", scheme="iob2")
        export_onnx(MODEL_DIR, ONNX_DIR, params.export.opset, params.finetune.max_seq_len)
        parity = check_parity(MODEL_DIR, ONNX_DIR, sentences, params.evaluate.batch_size, params.export.parity_atol)
        mlflow.log_metrics({k: float(v) for k, v in parity.items() if isinstance(v, (int, float, bool))})
        registration = register(ONNX_DIR, params.export, parity)
        write_json(METRICS, {**parity, "registered_version": int(registration["version"]),
                             "alias_moved": registration["alias_moved"]})
        mlflow.set_tags({"registered_model": registration["name"], "registered_version": registration["version"],
                         "champion_reason": registration["reason"]})


if __name__ == "__main__":
    main()
