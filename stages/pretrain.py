"""DVC stage `pretrain`: ELECTRA generator + discriminator pretraining on the corpus.

With ``pretrain.budget_minutes`` set, the run trains for that much wall time (the step count is fitted to a
measured step time, see :func:`electra_model.pretraining.loop.budget_params`); the metrics record the budget, the steps
and the tokens seen either way.

Output: the pretrained folder (the discriminator, ``ElectraForPreTraining.from_pretrained`` loads it; the generator
in ``generator/``), metrics and loss curves, at the paths dvc.yaml's ``cmd`` gives. The held-out curve has the
masked-LM loss on the corpus's held-out tail beside the token stream's unigram and bigram entropies (computed once
per corpus and tokenizer, cached beside the token stream, see :mod:`electra_model.data.entropy`): a loss that stays
above the bigram line has not learned word order yet. With ``pretrain.snapshot_every`` set, the snapshots folder
holds the discriminator every that many steps (and at the last) for the probe stage's downstream curve; it is empty
otherwise. Run with ``dvc repro pretrain``, or on N processes with
``torchrun --nproc_per_node N stages/pretrain.py`` and the same arguments.

The tokenized corpus and the checkpoints live in the ``--cache`` folder, outside DVC's outputs (DVC deletes those
before a re-run): a stage killed mid-training resumes from its last checkpoint when run again with the same
params, data and code.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
from pathlib import Path

import mlflow

from electra_model.pretraining.checkpoint import content_digest
from electra_model.config import PretrainParams, load_params, stage_params
from electra_model.plots import CurveRecorder
from electra_model.data.blocks import PackedBlocks, cached_token_stream
from electra_model.data.entropy import cached_token_entropies
from electra_model.errors import exit_on_user_error
from electra_model.io import atomic_dir, write_json
from electra_model.pretraining.loop import is_snapshot_step, pretrain, run_key, save_pretrained
from electra_model.pretraining.modeling import UNMASKABLE, PretrainingModel
from electra_model.pretraining.snapshots import list_snapshots, snapshot_path
from electra_model.data.tokenizer import corpus_lines, load_backend_tokenizer, special_token_ids
from electra_model.tracking.runs import DEVICE_TAG, log_dataset, stage_run
from electra_model.training import close_distributed, device_description, init_distributed, local_main_first, rank_device

CURVE_COLUMNS = [
    "loss", "mlm_loss", "rtd_loss", "mlm_accuracy", "mlm_accuracy_masked", "mlm_accuracy_kept", "rtd_accuracy",
    "rtd_recall", "rtd_auc", "learning_rate", "tokens_per_s",
]
ENTROPY_KEYS = ["unigram_entropy", "bigram_entropy"]
HELDOUT_COLUMNS = ["heldout_mlm_loss", "heldout_mlm_accuracy", *ENTROPY_KEYS]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, required=True, help="input: corpus folder")
    parser.add_argument("--tokenizer", type=Path, required=True, help="input: tokenizer folder")
    parser.add_argument("--cache", type=Path, required=True, help="token stream and checkpoints (not a DVC output)")
    parser.add_argument("--out", type=Path, required=True, help="output: pretrained model folder")
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--curves", type=Path, required=True, help="output: CSV plot (a PNG is written beside it)")
    parser.add_argument("--heldout-curves", type=Path, required=True,
                        help="output: CSV plot of the held-out MLM loss and the entropies (a PNG beside it)")
    parser.add_argument("--snapshots", type=Path, required=True,
                        help="output: the discriminator every pretrain.snapshot_every steps (empty when null)")
    return parser.parse_args(argv)


def publish_snapshots(kept: Path, out: Path, params: PretrainParams) -> None:
    """Replace ``out`` with the snapshots in ``kept`` that this run's ``snapshot_every`` asks for: a resumed run may
    have kept others under another value (an operational key, so it shares the run folder)."""
    with atomic_dir(out) as staging:
        for step, path in list_snapshots(kept):
            if is_snapshot_step(step, params):
                shutil.copytree(path, staging / path.name)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_params()
    context = init_distributed(params.pretrain.device)
    tokenizer = load_backend_tokenizer(args.tokenizer)
    shards = sorted(args.corpus.glob("*.txt"))
    data_key = content_digest([args.tokenizer / "tokenizer.json", *shards])
    stream_stem = args.cache / f"tokens-{data_key}"
    with local_main_first(context):
        stream = cached_token_stream(
            tokenizer, lambda: corpus_lines(args.corpus, document_breaks=True), stream_stem, sum(s.stat().st_size for s in shards)
        )
        special = special_token_ids(tokenizer)
        entropies = cached_token_entropies(
            stream, tokenizer.get_vocab_size(), [special[t] for t in UNMASKABLE], stream_stem
        )
    blocks = PackedBlocks.for_tokenizer(stream, tokenizer, params.pretrain.max_seq_len)
    run_dir = args.cache / f"run-{run_key(params.pretrain, params.seed, data_key)}"
    logged = stage_params(params, "pretrain")
    with stage_run("pretrain", params.tracking, logged) if context.is_main else contextlib.nullcontext():
        if context.is_main:  # what the model card says it ran on
            device = rank_device(params.pretrain.device, context)
            mlflow.set_tag(DEVICE_TAG, device_description(device, context.world_size))
        curves = CurveRecorder()

        def on_log(step: int, metrics: dict[str, float]) -> None:
            if "heldout_mlm_loss" in metrics:  # the reference lines, beside each held-out evaluation
                metrics = {**metrics, **{key: entropies[key] for key in ENTROPY_KEYS}}
            curves(step, metrics)
            mlflow.log_metrics(metrics, step=step)

        def on_warning(message: str) -> None:
            mlflow.set_tag("pretrain.warning", message)

        def on_snapshot(step: int, model: PretrainingModel) -> None:  # in the run folder, so a resumed run keeps it
            with atomic_dir(snapshot_path(run_dir / "snapshots", step)) as staging:
                save_pretrained(model, args.tokenizer, staging, with_generator=False)

        model, final = pretrain(
            params.pretrain, params.seed, tokenizer, blocks, on_log,
            checkpoint_dir=run_dir, on_warning=on_warning, on_snapshot=on_snapshot,
        )
        if context.is_main:
            log_dataset(args.corpus, name="corpus", context="pretraining")
            with atomic_dir(args.out) as staging:
                save_pretrained(model, args.tokenizer, staging)
            parameters = sum(p.numel() for p in model.parameters())
            budget = {"budget_minutes": params.pretrain.budget_minutes}  # null: the run trained for max_steps
            write_json(args.metrics, {**final, **budget, **entropies, "blocks": len(blocks), "parameters": parameters})
            mlflow.log_metrics({key: final[key] for key in ("steps", "tokens_seen", "train_minutes")})
            curves.write_csv(args.curves, CURVE_COLUMNS)
            curves.save_png(args.curves.with_suffix(".png"), ["mlm_loss", "rtd_loss", "rtd_accuracy", "rtd_recall", "rtd_auc"], "ELECTRA pretraining")
            curves.write_csv(args.heldout_curves, HELDOUT_COLUMNS)
            curves.save_overlay_png(
                args.heldout_curves.with_suffix(".png"), HELDOUT_COLUMNS[:1] + ENTROPY_KEYS,
                "Held-out masked-LM loss against the corpus's entropies (nats)",
            )
            for path in (args.curves, args.heldout_curves):
                mlflow.log_artifact(str(path), artifact_path="plots")
                mlflow.log_artifact(str(path.with_suffix(".png")), artifact_path="plots")
            mlflow.log_artifact(str(args.out / "config.json"), artifact_path="discriminator")
            publish_snapshots(run_dir / "snapshots", args.snapshots, params.pretrain)
    close_distributed()


if __name__ == "__main__":
    main()
