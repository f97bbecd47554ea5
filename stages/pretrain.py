"""DVC stage `pretrain`: ELECTRA generator + discriminator pretraining on the corpus.

Output: ``models/pretrained`` (the discriminator, ``ElectraForPreTraining.from_pretrained`` loads it; the generator
in ``generator/``), metrics and loss curves. Run with ``dvc repro pretrain``, or on N processes with
``torchrun --nproc_per_node N stages/pretrain.py``.

The tokenized corpus and the checkpoints live in ``cache/pretrain/``, outside DVC's outputs (DVC deletes those
before a re-run): a stage killed mid-training resumes from its last checkpoint when run again with the same
params, data and code.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import mlflow

from electra_model.checkpoint import content_digest
from electra_model.config import load_params
from electra_model.curves import CurveRecorder
from electra_model.data.blocks import PackedBlocks, cached_token_stream
from electra_model.errors import exit_on_user_error
from electra_model.io import atomic_dir, write_json
from electra_model.pretrain import pretrain, run_key, save_pretrained
from electra_model.tokenizer import corpus_lines, load_backend_tokenizer
from electra_model.tracking import log_dataset, stage_run
from electra_model.training import close_distributed, init_distributed, local_main_first

CORPUS_DIR = Path("data/corpus")
TOKENIZER_DIR = Path("models/tokenizer")
CACHE_DIR = Path("cache/pretrain")
MODEL_DIR = Path("models/pretrained")
METRICS = Path("metrics/pretrain.json")
CURVES = Path("plots/pretrain.csv")
CURVE_COLUMNS = ["loss", "mlm_loss", "rtd_loss", "mlm_accuracy", "rtd_accuracy", "learning_rate", "tokens_per_s"]


@exit_on_user_error
def main() -> None:
    params = load_params()
    context = init_distributed(params.pretrain.device)
    tokenizer = load_backend_tokenizer(TOKENIZER_DIR)
    shards = sorted(CORPUS_DIR.glob("*.txt"))
    data_key = content_digest([TOKENIZER_DIR / "tokenizer.json", *shards])
    with local_main_first(context):
        stream = cached_token_stream(
            tokenizer, lambda: corpus_lines(CORPUS_DIR), CACHE_DIR / f"tokens-{data_key}", sum(s.stat().st_size for s in shards)
        )
    blocks = PackedBlocks.for_tokenizer(stream, tokenizer, params.pretrain.max_seq_len)
    run_dir = CACHE_DIR / f"run-{run_key(params.pretrain, params.seed, data_key)}"
    stage_params = {"seed": params.seed, "pretrain": params.pretrain.model_dump()}
    with stage_run("pretrain", params.tracking, stage_params) if context.is_main else contextlib.nullcontext():
        curves = CurveRecorder()

        def on_log(step: int, metrics: dict[str, float]) -> None:
            curves(step, metrics)
            mlflow.log_metrics(metrics, step=step)

        model, final = pretrain(params.pretrain, params.seed, tokenizer, blocks, on_log, checkpoint_dir=run_dir)
        if context.is_main:
            log_dataset(CORPUS_DIR, name="corpus", context="pretraining")
            with atomic_dir(MODEL_DIR) as staging:
                save_pretrained(model, TOKENIZER_DIR, staging)
            parameters = sum(p.numel() for p in model.parameters())
            write_json(METRICS, {**final, "blocks": len(blocks), "parameters": parameters})
            curves.write_csv(CURVES, CURVE_COLUMNS)
            curves.save_png(CURVES.with_suffix(".png"), ["mlm_loss", "rtd_loss", "rtd_accuracy"], "ELECTRA pretraining")
            mlflow.log_artifact(str(CURVES), artifact_path="plots")
            mlflow.log_artifact(str(CURVES.with_suffix(".png")), artifact_path="plots")
            mlflow.log_artifact(str(MODEL_DIR / "config.json"), artifact_path="discriminator")
    close_distributed()


if __name__ == "__main__":
    main()
