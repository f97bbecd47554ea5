"""The downstream probe: how good for the task was the discriminator at each step of pretraining, not only at its
own objective? (Stage ``probe``; params ``probe`` and ``pretrain.snapshot_every``.)

Pretraining keeps a snapshot of the discriminator every ``pretrain.snapshot_every`` steps
(:mod:`electra_model.pretraining.snapshots`). Each chosen snapshot is fine-tuned here with the task's own trainer
and the ``finetune`` recipe with ``probe.learning_rate`` for ``probe.epochs`` epochs on a fixed slice of the task's data, the first
``probe.train_examples`` of train and the first ``probe.valid_examples`` of valid, cut once (:func:`write_probe_splits`;
test is never copied). Same slice, recipe and seed for every snapshot, so the curve moves only with the pretrained
weights. A snapshot's score is the fine-tuning's ``best_valid_<metric>``.

The probe runs as its own stage after pretraining rather than inside the pretraining loop: the pretrain stage then
depends on no task code, data or fine-tuning params, so choosing another task does not pretrain again, and the
probes' cost is measured against the finished run's ``train_minutes``. All probes together take at most
``probe.max_share`` of it (:func:`plan_probes`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from electra_model.config import Params
from electra_model.errors import ElectraError
from electra_model.tasks.catalog import task_for

ProbeCallback = Callable[["ProbeResult"], None]


@dataclass(frozen=True)
class ProbeResult:
    """One snapshot's probe: its pretraining step, the validation score of the brief fine-tune, and its time."""

    step: int
    score: float
    seconds: float


def records(path: Path) -> list[str]:
    """A split file's records as text: one per line for JSON lines, one per blank-line-separated block otherwise
    (CoNLL sentences), so that the first N of them are a valid file of the same format."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return [line + "\n" for line in text.splitlines() if line.strip()]
    return [block.strip("\n") + "\n\n" for block in text.split("\n\n") if block.strip()]


def write_probe_splits(params: Params, task_data: Path, out_dir: Path) -> Path:
    """The first ``probe.train_examples`` of train and ``probe.valid_examples`` of valid as a task data folder in
    ``out_dir``; test is not copied, so no probe can read it."""
    task = task_for(params)
    for split, count in (("train", params.probe.train_examples), ("valid", params.probe.valid_examples)):
        source, target = task.split_path(task_data, split), task.split_path(out_dir, split)
        if not source.is_file():
            raise ElectraError(f"{source} not found: the probe reads the download stage's {split} split of the task")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("".join(islice(records(source), count)), encoding="utf-8")
    return out_dir


def evenly_spaced(steps: list[int], count: int) -> list[int]:
    """``count`` of ``steps`` (sorted) spread evenly from the first to the last, the last always among them."""
    if count >= len(steps):
        return list(steps)
    if count <= 1:
        return steps[-1:]
    positions = {round(i * (len(steps) - 1) / (count - 1)) for i in range(count)}
    return [steps[i] for i in sorted(positions)]


def plan_probes(steps: list[int], budget_seconds: float, first_seconds: float) -> list[int]:
    """The snapshots to probe after the last one, which took ``first_seconds``: as many more, evenly spaced, as the
    rest of ``budget_seconds`` holds at that cost each."""
    earlier = steps[:-1]
    if not earlier or first_seconds <= 0:
        return earlier
    affordable = int(max(budget_seconds - first_seconds, 0.0) // first_seconds)
    # pick from all steps so the spacing includes the last, already probed, then leave it out
    return [step for step in evenly_spaced(steps, affordable + 1) if step != steps[-1]]


def probe_snapshots(
    params: Params,
    snapshots: list[tuple[int, Path]],
    task_data: Path,
    work_dir: Path,
    budget_seconds: float,
    on_result: ProbeCallback,
) -> list[ProbeResult]:
    """Probe the last snapshot, then as many earlier ones as ``budget_seconds`` holds (:func:`plan_probes`); each
    result goes to ``on_result`` as it comes. The results are returned by step."""
    if not snapshots:
        return []
    # Imported here, not at the top: the trainers bring torch and transformers (10-20 s of imports on 2 busy cores),
    # which the probe stage of a run without snapshots (the demo default) would pay for nothing.
    from electra_model.tasks.trainers import trainer_for

    data_dir = write_probe_splits(params, task_data, work_dir / "data")
    probe = params.probe
    recipe = params.finetune.model_copy(
        update={"init": "pretrained", "epochs": probe.epochs, "learning_rate": probe.learning_rate}
    )
    probe_params = params.model_copy(update={"finetune": recipe})
    trainer, by_step = trainer_for(params), dict(snapshots)

    def probe(step: int) -> ProbeResult:
        started = time.perf_counter()
        summary = trainer.finetune(probe_params, by_step[step], data_dir, lambda _step, _metrics: None).summary
        (score,) = (value for key, value in summary.items() if key.startswith("best_valid_"))
        result = ProbeResult(step, float(score), time.perf_counter() - started)
        on_result(result)
        return result

    steps = sorted(by_step)
    last = probe(steps[-1])
    results = [last, *(probe(step) for step in plan_probes(steps, budget_seconds, last.seconds))]
    return sorted(results, key=lambda result: result.step)


def skipped(steps: Iterable[int], results: Iterable[ProbeResult]) -> list[int]:
    """The snapshots the budget left out."""
    probed = {result.step for result in results}
    return [step for step in steps if step not in probed]
