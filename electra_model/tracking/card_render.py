"""A model card as Markdown with the metadata block the Hugging Face hub reads, rendered from a
:class:`~electra_model.tracking.card_record.CardRecord` and the task's :class:`~electra_model.tasks.spec.TaskCard`.

Every figure is a recorded value printed one way (scores to 4 decimals, minutes and milliseconds to 2, counts and
bytes whole) or a difference or ratio of two recorded values, so ``tests`` can read each back and compare it. The
metadata block (``language``, ``license``, ``tags``, ``datasets``, ``metrics``, ``pipeline_tag``, ``model-index``)
is written by ``huggingface_hub``'s own :class:`~huggingface_hub.ModelCardData`, the hub's schema.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from electra_model.tasks.spec import Cell, TaskCard
from electra_model.tracking.card_record import CardRecord, StageRun
from electra_model.tracking.runs import DEVICE_TAG

NOT_RECORDED = "not recorded"
PRETRAIN_PARAMS = ("pretrain.objective", "pretrain.preset", "pretrain.max_seq_len", "pretrain.mask_prob")
FINETUNE_PARAMS = ("finetune.init", "finetune.preset", "finetune.learning_rate", "finetune.batch_size",
                   "finetune.epochs", "finetune.max_seq_len")
EXPORT_PARAMS = ("export.latency_runs", "export.max_f1_drop", "export.serve_variant")
VARIANT_ORDER = ("fp32", "optimized", "int8", "fp16")


def cell(value: Cell) -> str:
    """The one way a figure is printed: floats to 4 decimals, integers whole, text as it is."""
    if isinstance(value, bool) or isinstance(value, str):
        return str(value)
    return str(value) if isinstance(value, int) else f"{value:.4f}"


def table(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def quoted(value: str) -> str:
    """A recorded string shown verbatim (the figures inside it are the record's own wording)."""
    return f'"{value}"'


def run_params(run: StageRun, keys: Sequence[str]) -> str:
    if run.run_id is None:
        return f"the stage's MLflow run was {NOT_RECORDED} in this store"
    return ", ".join(f"`{key}` = `{run.params[key]}`" for key in keys if key in run.params)


def intended_use(record: CardRecord, task: TaskCard) -> str:
    source = record.metrics["download"]["source"]
    return "\n".join([
        "## Intended use",
        "",
        f"{task.purpose} Language: `{record.language}`. It was trained and tested on data from the "
        f"`{source}` source described below; expect lower scores on text unlike it, and check on your own "
        "labelled sample before relying on it.",
    ])


def split_rows(section: Mapping[str, Any]) -> tuple[list[str], list[list[Cell]]]:
    """The task's splits as the download stage summarised them: origin, the counts, and the label counts."""
    splits = [name for name in ("train", "valid", "test") if name in section]
    counts = sorted({key for name in splits for key, value in section[name].items()
                     if isinstance(value, int) and not isinstance(value, bool)})
    header = ["split", "origin", *counts, "label counts"]
    rows = []
    for name in splits:
        split = section[name]
        labels = next((value for value in split.values() if isinstance(value, Mapping)), {})
        rows.append([name, split.get("origin", ""), *(split.get(key, "") for key in counts),
                     ", ".join(f"{label} {count}" for label, count in sorted(labels.items()))])
    return header, rows


def data(record: CardRecord) -> str:
    download = record.metrics["download"]
    corpus = download["corpus"]
    header, rows = split_rows(download[record.task])
    hashes = [(path, out.get("md5", ""), out.get("size", ""), out.get("nfiles", ""))
              for path, out in sorted(record.data_outs.items())]
    return "\n".join([
        "## Data",
        "",
        f"Pretraining corpus: {corpus.get('origin', '')}; {corpus.get('documents', '')} documents, "
        f"{corpus.get('characters', '')} characters.",
        "",
        f"Task data ({record.task}):",
        "",
        table(header, rows),
        "",
        "As DVC recorded them (`dvc.lock`, stage `download`):",
        "",
        table(("path", "md5", "bytes", "files"), hashes),
    ])


def recipe(record: CardRecord) -> str:
    pretrain, finetune = record.metrics["pretrain"], record.metrics["finetune"]
    runs = record.runs
    device = {stage: quoted(runs[stage].tags.get(DEVICE_TAG, NOT_RECORDED)) for stage in ("pretrain", "finetune")}
    return "\n".join([
        "## Recipe and compute",
        "",
        f"- Pretraining (ELECTRA, from scratch): {pretrain['steps']} steps, {pretrain['tokens_seen']} tokens, "
        f"{pretrain['train_minutes']:.2f} minutes on {device['pretrain']}, {pretrain['parameters']} parameters; "
        f"{run_params(runs['pretrain'], PRETRAIN_PARAMS)}.",
        f"- Fine-tuning: {finetune['epochs_run']} epochs, {finetune['steps']} steps on {device['finetune']}; "
        f"{run_params(runs['finetune'], FINETUNE_PARAMS)}.",
        f"- Code: git commit `{runs['export'].tags.get('git.commit', NOT_RECORDED)}`.",
    ])


def chosen_on_validation(record: CardRecord) -> str:
    finetune, export = record.metrics["finetune"], record.metrics["export"]
    best = next((key for key in finetune if key.startswith("best_valid_")), None)
    epoch = (f"- Epoch {finetune['best_epoch']} of {finetune['epochs_run']} kept, by `{best}` = "
             f"{cell(float(finetune[best]))}." if best else "- The fine-tuning stage recorded no epoch choice.")
    return "\n".join([
        "## Settings chosen on validation",
        "",
        "Early stopping, the served variant and the registry's gate read the validation split only; test is "
        "scored for this report.",
        "",
        epoch,
        f"- Served on CPU: `{export['serve_variant']}`, validation {export['metric']} "
        f"{cell(float(export['score']))}: {quoted(export['serve_reason'])}.",
        f"- Export checks: {run_params(record.runs['export'], EXPORT_PARAMS)}.",
    ])


def test_results(record: CardRecord, task: TaskCard) -> str:
    evaluation = record.metrics["evaluate"]
    headline = ", ".join(f"{name} {cell(float(value))}" for _, name, value in task.headline)
    return "\n".join([
        f"## Test results (split `{evaluation.get('split', NOT_RECORDED)}`)",
        "",
        headline + ".",
        "",
        table(task.results_header, task.results),
    ])


def variants(record: CardRecord) -> str:
    """Every exported variant's size, latency and scores, and what int8 costs against fp32."""
    export, meta = record.metrics["export"], record.model_meta
    metric, report = export["metric"], export.get("report", {})
    names = [name for name in VARIANT_ORDER if name in meta["variants"]]
    rows = [(name, record.onnx_bytes[name], f"{meta['variants'][name]['latency_ms_b1']:.2f}",
             f"{meta['variants'][name]['latency_ms_b1_p95']:.2f}", float(meta["variants"][name][metric]),
             float(report[name][metric]) if name in report else NOT_RECORDED) for name in names]
    lines = [
        "## Exported variants (ONNX): size, latency, cost",
        "",
        f"Served on CPU: `{meta['cpu_variant']}`; on a GPU: `{meta['gpu_variant']}`. Latency is of one text at a "
        "time, on the machine that ran the export stage.",
        "",
        table(("variant", "bytes", "latency ms (mean)", "latency ms (p95)", f"valid {metric}",
               f"{export.get('report_split', 'test')} {metric}"), rows),
    ]
    if "int8" in names and "fp32" in names:
        int8, fp32 = meta["variants"]["int8"], meta["variants"]["fp32"]
        ratio = record.onnx_bytes["fp32"] / record.onnx_bytes["int8"]
        speedup = fp32["latency_ms_b1"] / int8["latency_ms_b1"]
        delta = (f"{report['int8'][metric] - report['fp32'][metric]:+.4f} {metric} on "
                 f"{export.get('report_split', 'test')}" if "int8" in report and "fp32" in report else "")
        lines += ["", f"int8 against fp32: {ratio:.2f} times smaller, {speedup:.2f} times faster on one text, "
                      f"{int8[metric] - fp32[metric]:+.4f} {metric} on valid" + (f", {delta}" if delta else "") + "."]
    return "\n".join(lines)


def failure_modes(record: CardRecord, task: TaskCard) -> str:
    lines = ["## Known failure modes", "", "From the evaluate stage's error report on the test split:", ""]
    lines += [f"- {line}" for line in task.failure_modes]
    warning = record.runs["pretrain"].tags.get("pretrain.warning")
    if warning:
        lines.append(f"- Pretraining warned: {quoted(warning)}")
    return "\n".join(lines)


def how_to_load(record: CardRecord, task: TaskCard) -> str:
    uri = f"models:/{record.model_name}@{record.alias}"
    return "\n".join([
        "## How to load it",
        "",
        "Torch-free, with onnxruntime (`pip install ./client[cpu,registry]`):",
        "",
        "```python",
        "from electra_model.client.loader import load_predictor",
        f'predictor = load_predictor("{uri}")  # or a local ONNX folder',
        'print(predictor.predict(["Your text here."]))',
        "```",
        "",
        "As an MLflow pyfunc, or from the command line:",
        "",
        "```python",
        "import mlflow",
        f'model = mlflow.pyfunc.load_model("{uri}")',
        'print(model.predict({"text": ["Your text here."]}))',
        "```",
        "",
        f'`electra predict --model {uri} "Your text here."`',
        "",
        "With `transformers`, on the saved checkpoint (this folder, FOLDER below): " + task.checkpoint_loading,
    ])


def body(record: CardRecord, task: TaskCard) -> str:
    """The card's Markdown: the registered version's description and, under the metadata, its README."""
    title = [
        f"# {record.model_name}",
        "",
        "An ELECTRA model pretrained from scratch and fine-tuned by this project's pipeline. This card is generated "
        "by the `card` stage from what the pipeline recorded (its metrics files, `dvc.lock`, `model_meta.json`, "
        "the evaluate stage's reports and the MLflow runs of its stages); do not edit it by hand.",
    ]
    sections = ["\n".join(title), intended_use(record, task), data(record), recipe(record),
                chosen_on_validation(record), test_results(record, task), variants(record),
                failure_modes(record, task), how_to_load(record, task)]
    return "\n\n".join(sections) + "\n"


def metadata(record: CardRecord, task: TaskCard) -> ModelCardData:
    """The hub's metadata block, with the test results as its ``model-index``."""
    section, evaluation = record.metrics["download"][record.task], record.metrics["evaluate"]
    origins = sorted({str(split["origin"]) for split in section.values() if isinstance(split, Mapping)
                      and "origin" in split})
    test_origin = str(section.get(evaluation.get("split", "test"), {}).get("origin", record.task))
    results = [
        EvalResult(task_type=task.pipeline_tag or record.task, dataset_type=record.metrics["download"]["source"],
                   dataset_name=test_origin, dataset_split=evaluation.get("split"), metric_type=kind,
                   metric_name=name, metric_value=float(value))
        for kind, name, value in task.headline
    ]
    return ModelCardData(
        language=record.language, license=record.license, library_name="transformers",
        tags=["electra", record.task, "onnx"], datasets=origins,
        metrics=sorted({kind for kind, _, _ in task.headline}), pipeline_tag=task.pipeline_tag,
        model_name=record.model_name, eval_results=results or None,
    )


def render_card(record: CardRecord, task: TaskCard) -> str:
    """The README: the hub's metadata block, then :func:`body`."""
    return str(ModelCard(f"---\n{metadata(record, task).to_yaml()}\n---\n\n{body(record, task)}"))


def card_body(card: str) -> str:
    """The Markdown of a rendered card without its metadata block (the registry's description)."""
    return ModelCard(card).text.lstrip("\n")
