"""DVC stage `card`: the model card of the exported, registered model, generated from what the pipeline recorded.

It reads the stages' metrics files, the data hashes in ``dvc.lock`` (beside dvc.yaml, in the project root), the
exported ``model_meta.json``, the evaluate stage's reports and the MLflow runs of the stages, and writes the card
(Markdown with the metadata block the Hugging Face hub reads; ``card.language`` and ``card.license`` in params.yaml
are the two facts no stage records) three ways: as ``README.md`` of a hub-ready copy of the fine-tuned checkpoint
(the ``--out`` folder), as the registered model version's description, and as ``README.md`` among that version's
artifacts. The version is the one registered from the very bytes of ``--onnx`` (its ``onnx_digest`` tag); when the
registry lacks it (a lost store), the Prefect flow's registry sync registers it and publishes this card then.
Run with ``dvc repro card``.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import mlflow

from electra_model.config import load_params, stage_params
from electra_model.errors import exit_on_user_error
from electra_model.tasks.registry import register_plugins, registered_name, spec_for
from electra_model.tracking.card_publish import README, publish_card, write_hub_folder
from electra_model.tracking.card_record import LOCK_FILE, read_record
from electra_model.tracking.card_render import render_card
from electra_model.tracking.card_task import task_card
from electra_model.tracking.registry import directory_digest, version_of
from electra_model.tracking.runs import client as tracking_client
from electra_model.tracking.runs import stage_run


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", type=Path, required=True, help="input: the fine-tuned model folder")
    parser.add_argument("--onnx", type=Path, required=True, help="input: the exported (registered) ONNX folder")
    parser.add_argument("--metrics", type=Path, action="append", required=True,
                        help="input: a stage's metrics file, <stage>.json (download, pretrain, finetune, evaluate, export)")
    parser.add_argument("--reports", type=Path, required=True, help="input: the evaluate stage's reports folder")
    parser.add_argument("--out", type=Path, required=True, help="output: the checkpoint with the card as README.md")
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_params()
    register_plugins(params.plugins)
    with stage_run("card", params.tracking, stage_params(params, "card")) as run:
        client = tracking_client()
        record = read_record(
            metrics_files=args.metrics, lock_file=LOCK_FILE, onnx_dir=args.onnx, client=client,
            experiment_id=run.info.experiment_id, model_name="", alias=params.export.alias,
            language=params.card.language, license=params.card.license,
        )
        name = registered_name(params.export, record.task)
        record = replace(record, model_name=name)
        card = render_card(record, task_card(spec_for(record.task), record.metrics["evaluate"], args.reports))
        write_hub_folder(args.checkpoint, card, args.out)
        mlflow.log_artifact(str(args.out / README))
        version = version_of(client, name, directory_digest(args.onnx))
        if version is None:
            print(f"card: the registry holds no version of {name} registered from {args.onnx}; the flow's registry "
                  "sync registers it with this card (python -m flows.pipeline), or run `dvc repro -f export card`")
            mlflow.set_tag("card.published", "false")
            return
        publish_card(client, version, card)
        mlflow.set_tags({"card.published": "true", "registered_model": name, "registered_version": version.version})
        print(f"card: {args.out / README} and the description and {README} of {name} version {version.version}")


if __name__ == "__main__":
    main()
