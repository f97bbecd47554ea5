"""DVC stage `pretrain`: ELECTRA generator + discriminator pretraining on the corpus.

Output: ``models/pretrained`` (the discriminator, ``ElectraForPreTraining.from_pretrained`` loads it; the generator
in ``generator/``), metrics and loss curves. Run with ``dvc repro pretrain``.
"""

from __future__ import annotations

from pathlib import Path

import mlflow

from electra_model.config import load_params
from electra_model.curves import CurveRecorder
from electra_model.data.blocks import pack_blocks
from electra_model.errors import exit_on_user_error
from electra_model.io import atomic_dir, write_json
from electra_model.pretrain import pretrain, save_pretrained
from electra_model.tokenizer import corpus_lines, load_backend_tokenizer
from electra_model.tracking import log_dataset, stage_run

CORPUS_DIR = Path("data/corpus")
TOKENIZER_DIR = Path("models/tokenizer")
MODEL_DIR = Path("models/pretrained")
METRICS = Path("metrics/pretrain.json")
CURVES = Path("plots/pretrain.csv")
CURVE_COLUMNS = ["loss", "mlm_loss", "rtd_loss", "mlm_accuracy", "rtd_accuracy", "learning_rate"]


@exit_on_user_error
def main() -> None:
    params = load_params()
    with stage_run("pretrain", params.tracking, {"seed": params.seed, "pretrain": params.pretrain.model_dump()}):
        log_dataset(CORPUS_DIR, name="corpus", context="pretraining")
        tokenizer = load_backend_tokenizer(TOKENIZER_DIR)
        blocks = pack_blocks(tokenizer, corpus_lines(CORPUS_DIR), params.pretrain.max_seq_len)
        curves = CurveRecorder()

        def on_log(step: int, metrics: dict[str, float]) -> None:
            curves(step, metrics)
            mlflow.log_metrics(metrics, step=step)

        model, final = pretrain(params.pretrain, params.seed, tokenizer, blocks, on_log)
        with atomic_dir(MODEL_DIR) as staging:
            save_pretrained(model, TOKENIZER_DIR, staging)
        metrics = {**final, "blocks": len(blocks), "parameters": sum(p.numel() for p in model.parameters())}
        write_json(METRICS, metrics)
        curves.write_csv(CURVES, CURVE_COLUMNS)
        curves.save_png(CURVES.with_suffix(".png"), ["mlm_loss", "rtd_loss", "rtd_accuracy"], "ELECTRA pretraining")
        mlflow.log_artifact(str(CURVES), artifact_path="plots")
        mlflow.log_artifact(str(CURVES.with_suffix(".png")), artifact_path="plots")
        mlflow.log_artifact(str(MODEL_DIR / "config.json"), artifact_path="discriminator")


if __name__ == "__main__":
    main()
