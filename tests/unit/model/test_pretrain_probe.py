"""The downstream probe: pretraining keeps snapshots every pretrain.snapshot_every steps without changing its
trajectory; the probe fine-tunes them on fixed slices of train and valid (never test), the last one first, then as
many evenly spaced earlier ones as its share of pretraining time holds."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from electra_model.io import write_json

from electra_model.data.blocks import pack_blocks
from electra_model.data.tokenizer import as_transformers_tokenizer, train_wordpiece
from electra_model.pretraining.loop import pretrain, save_pretrained
from electra_model.pretraining.snapshots import list_snapshots, snapshot_path
from electra_model.tasks.ner.conll import write_conll
from electra_model.tasks.ner.data import demo_ner
from electra_model.tasks.probe import evenly_spaced, plan_probes, probe_snapshots, records, skipped, write_probe_splits
from tests.dvc_map import stage_argv
from tests.params import params as project_params

REPO = Path(__file__).resolve().parents[3]

NAMES, CITIES, OTHERS = ["Anna", "Boris", "Chen", "Dara"] * 6, ["Paris", "Oslo", "Lima", "Kyiv"] * 6, ["Rome"] * 24
LINES = [f"{name} flew from {city} to {other} in {year} ." for name, city, other in zip(NAMES, CITIES, OTHERS)
         for year in (1990, 2001, 2015)]


@pytest.fixture(scope="module")
def tokenizer():
    return train_wordpiece(LINES, vocab_size=150, min_frequency=1, lowercase=False)


def tiny(snapshot_every: int | None, **probe):
    base = project_params()
    pretrain_section = base.pretrain.model_copy(update={
        "max_steps": 20, "batch_size": 8, "max_seq_len": 32, "warmup_steps": 2, "log_every": 5, "eval_every": 10,
        "eval_blocks": 2, "checkpoint_every": 10, "snapshot_every": snapshot_every,
    })
    return base.model_copy(update={
        "task": "ner",
        "pretrain": pretrain_section,
        "probe": base.probe.model_copy(update=probe),
        "finetune": base.finetune.model_copy(update={"max_seq_len": 32, "batch_size": 8}),
    })


def test_snapshots_are_kept_every_snapshot_every_steps_and_change_nothing_in_the_trajectory(tokenizer):
    blocks = pack_blocks(tokenizer, LINES, max_seq_len=32)
    kept: list[int] = []
    with_snapshots: list[dict] = []
    pretrain(tiny(10).pretrain, 3, tokenizer, blocks, lambda step, m: with_snapshots.append(m),
             on_snapshot=lambda step, model: kept.append(step))
    without: list[dict] = []
    pretrain(tiny(None).pretrain, 3, tokenizer, blocks, lambda step, m: without.append(m),
             on_snapshot=lambda step, model: kept.append(-step))
    assert kept == [10, 20]  # none at all when snapshot_every is null
    compared = ("loss", "mlm_loss", "rtd_loss", "heldout_mlm_loss")
    assert [[m.get(k) for k in compared] for m in with_snapshots] == [[m.get(k) for k in compared] for m in without]


def test_a_snapshot_every_that_splits_a_logging_window_is_refused():
    with pytest.raises(Exception, match="snapshot_every 7 must be a multiple of log_every 5"):
        project_params({"pretrain.log_every": 5, "pretrain.snapshot_every": 7})


def test_snapshots_are_listed_by_step_and_staging_folders_are_not_snapshots(tmp_path):
    for step in (300, 20, 1000):
        snapshot_path(tmp_path, step).mkdir()
    (tmp_path / ".step-0000400.tmp-abc").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    assert [(step, path.name) for step, path in list_snapshots(tmp_path)] == [
        (20, "step-0000020"), (300, "step-0000300"), (1000, "step-0001000")]
    assert list_snapshots(tmp_path / "absent") == []


def test_the_budget_chooses_evenly_spaced_snapshots_with_the_last_probed_first():
    steps = [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]
    assert evenly_spaced(steps, 3) == [100, 500, 1000] and evenly_spaced(steps, 1) == [1000]
    assert evenly_spaced(steps, 20) == steps
    assert plan_probes(steps, budget_seconds=30.0, first_seconds=10.0) == [100, 500]  # 2 more at 10 s each
    assert plan_probes(steps, budget_seconds=8.0, first_seconds=10.0) == []  # the last alone already overshot
    assert plan_probes(steps, budget_seconds=1e9, first_seconds=10.0) == steps[:-1]
    assert plan_probes([1000], budget_seconds=1e9, first_seconds=10.0) == []


def test_the_probe_data_is_a_fixed_slice_of_train_and_valid_and_never_test(tmp_path):
    task_data = tmp_path / "task"
    task_data.mkdir()
    for split, count in (("train", 30), ("valid", 12), ("test", 12)):
        write_conll(task_data / f"{split}.txt", demo_ner(count, seed=len(split)))
    out = write_probe_splits(tiny(None, train_examples=10, valid_examples=4), task_data, tmp_path / "probe")
    assert sorted(p.name for p in out.iterdir()) == ["train.txt", "valid.txt"]
    train = (out / "train.txt").read_text(encoding="utf-8")
    assert train.count("\n\n") == 10 and (task_data / "train.txt").read_text(encoding="utf-8").startswith(train)
    assert (out / "valid.txt").read_text(encoding="utf-8").count("\n\n") == 4

    jsonl = tmp_path / "lines.jsonl"
    jsonl.write_text("".join(json.dumps({"text": f"t{i}", "label": "a"}) + "\n" for i in range(5)), encoding="utf-8")
    assert records(jsonl)[:2] == ['{"text": "t0", "label": "a"}\n', '{"text": "t1", "label": "a"}\n']


def test_missing_task_data_names_the_file_and_the_stage_that_writes_it(tmp_path):
    with pytest.raises(Exception, match=r"train.txt not found: the probe reads the download stage's train split"):
        write_probe_splits(tiny(None), tmp_path, tmp_path / "probe")


@pytest.fixture(scope="module")
def snapshotted(tmp_path_factory, tokenizer) -> tuple[Path, Path]:
    """A 20-step pretraining run's snapshots (steps 10 and 20) and a small NER data folder."""
    root = tmp_path_factory.mktemp("snapshotted")
    task_data = root / "task"
    for split, count in (("train", 40), ("valid", 12), ("test", 12)):
        write_conll(task_data / f"{split}.txt", demo_ner(count, seed=len(split)))
    tokenizer_dir = root / "tokenizer"
    as_transformers_tokenizer(tokenizer, 32).save_pretrained(tokenizer_dir)
    folder = root / "snapshots"

    def keep(step: int, model) -> None:
        save_pretrained(model, tokenizer_dir, snapshot_path(folder, step), with_generator=False)

    blocks = pack_blocks(tokenizer, LINES, max_seq_len=32)
    pretrain(tiny(10).pretrain, 3, tokenizer, blocks, lambda step, m: None, on_snapshot=keep)
    return folder, task_data


def test_the_probe_fine_tunes_each_chosen_snapshot_and_reports_its_validation_score(tmp_path, snapshotted):
    folder, task_data = snapshotted
    params = tiny(10, train_examples=40, valid_examples=12)
    snapshots = list_snapshots(folder)
    assert [step for step, _ in snapshots] == [10, 20]
    assert not (snapshots[0][1] / "generator").exists()  # only what fine-tuning starts from

    seen: list[int] = []
    generous = probe_snapshots(params, snapshots, task_data, tmp_path / "work", 1e9, lambda r: seen.append(r.step))
    assert seen == [20, 10]  # the last first: it is the one the pipeline fine-tunes
    assert [r.step for r in generous] == [10, 20]
    assert all(0.0 <= r.score <= 1.0 and r.seconds > 0 for r in generous)
    again = probe_snapshots(params, snapshots[-1:], task_data, tmp_path / "work2", 1e9, lambda r: None)
    assert again[0].score == generous[-1].score  # same weights, slice, recipe and seed: the same score

    tight = probe_snapshots(params, snapshots, task_data, tmp_path / "work3", 1e-3, lambda r: None)
    assert [r.step for r in tight] == [20] and skipped([10, 20], tight) == [10]
    assert sorted(p.name for p in (tmp_path / "work3" / "data").iterdir()) == ["train.txt", "valid.txt"]


@pytest.mark.e2e  # a real MLflow store (its sqlite migrations take most of the time)
def test_the_probe_stage_writes_the_curve_and_its_share_and_logs_each_probe(tmp_path, snapshotted, monkeypatch):
    folder, task_data = snapshotted
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    raw = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    raw.update(task="ner")
    raw["finetune"].update(max_seq_len=32, batch_size=8)
    raw["probe"].update(train_examples=40, valid_examples=12)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    shutil.copy(REPO / "dvc.yaml", tmp_path / "dvc.yaml")
    shutil.copytree(folder, tmp_path / "models" / "pretrain_snapshots")
    shutil.copytree(task_data, tmp_path / "data" / "task")
    write_json(tmp_path / "metrics" / "pretrain.json", {"train_minutes": 600.0})
    from stages.probe import main

    main(stage_argv("probe"))
    summary = json.loads((tmp_path / "metrics" / "probe.json").read_text(encoding="utf-8"))
    assert summary["snapshots"] == summary["probes"] == 2 and summary["skipped"] == 0
    assert 0 < summary["share_of_pretraining"] < 0.1 and summary["last_step"] == 20
    with open(tmp_path / "plots" / "pretrain_probe.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["step"]) for row in rows] == [10, 20]
    assert float(rows[-1]["probe_valid_score"]) == pytest.approx(summary["last_valid_score"])
    (run,) = MlflowClient().search_runs(
        [MlflowClient().get_experiment_by_name(raw["tracking"]["experiment"]).experiment_id],
        filter_string="tags.mlflow.runName = 'probe'",
    )
    history = MlflowClient().get_metric_history(run.info.run_id, "probe_valid_score")
    assert sorted(point.step for point in history) == [10, 20]


def test_the_probe_stage_loads_neither_torch_nor_transformers_until_there_is_a_snapshot():
    """Without snapshots (pretrain.snapshot_every null, the demo default) the stage has nothing to fine-tune, yet it
    runs whenever the task's data or recipe changes: it should not pay for torch's import (10-20 s) each time."""
    blocked = "import runpy, sys; sys.modules['torch'] = sys.modules['transformers'] = None; runpy.run_path(sys.argv[1])"
    result = subprocess.run([sys.executable, "-c", blocked, str(REPO / "stages" / "probe.py")], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
