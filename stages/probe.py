"""DVC stage `probe`: the downstream curve of pretraining. Each discriminator snapshot the pretrain stage kept
(``pretrain.snapshot_every``) is fine-tuned briefly on a fixed slice of the task's train split and scored on a
fixed slice of valid (never test), within ``probe.max_share`` of pretraining's time
(:mod:`electra_model.tasks.probe`).

Outputs, at the paths dvc.yaml's ``cmd`` gives: the metrics (probes run and skipped, their time and its share of
pretraining, the last snapshot's score) and the curve CSV of ``probe_valid_score`` by pretraining step, with a PNG
beside it. With ``pretrain.snapshot_every`` null (the demo default) there are no snapshots: the curve is empty and
the stage says so. Run with ``dvc repro probe``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import mlflow

from electra_model.config import load_params, stage_params
from electra_model.errors import ElectraError, exit_on_user_error
from electra_model.io import read_json, write_json
from electra_model.plots import CurveRecorder
from electra_model.pretraining.snapshots import list_snapshots
from electra_model.progress import log_line
from electra_model.tasks.probe import ProbeResult, probe_snapshots, skipped
from electra_model.tracking.runs import stage_run

CURVE_COLUMNS = ["probe_valid_score", "probe_seconds"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--snapshots", type=Path, required=True, help="input: the pretrain stage's snapshots folder")
    parser.add_argument("--data", type=Path, required=True, help="input: the task's data folder (train and valid)")
    parser.add_argument("--pretrain-metrics", type=Path, required=True, help="input: pretraining's train_minutes")
    parser.add_argument("--cache", type=Path, required=True, help="scratch folder for the data slices (not an output)")
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--curves", type=Path, required=True, help="output: CSV plot (a PNG is written beside it)")
    return parser.parse_args(argv)


def pretraining_seconds(metrics_path: Path) -> float:
    """How long pretraining trained, the measure of the probes' allowance."""
    minutes = read_json(metrics_path).get("train_minutes") if metrics_path.is_file() else None
    if not isinstance(minutes, (int, float)):
        raise ElectraError(f"{metrics_path} has no train_minutes; run `dvc repro pretrain` first")
    return 60.0 * minutes


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_params()
    snapshots = list_snapshots(args.snapshots)
    budget = params.probe.max_share * pretraining_seconds(args.pretrain_metrics)
    if not snapshots:
        log_line("probe: no snapshots (pretrain.snapshot_every is null), so no downstream curve")
    with stage_run("probe", params.tracking, stage_params(params, "probe")):
        curves = CurveRecorder()

        def on_result(result: ProbeResult) -> None:
            log_line(f"probe: step {result.step} valid score {result.score:.4f} in {result.seconds:.1f} s")
            metrics = {"probe_valid_score": result.score, "probe_seconds": result.seconds}
            mlflow.log_metrics(metrics, step=result.step)

        args.cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=args.cache) as work:
            results = probe_snapshots(params, snapshots, args.data, Path(work), budget, on_result)
        for result in results:  # by step, as the curve is drawn
            curves(result.step, {"probe_valid_score": result.score, "probe_seconds": result.seconds})
        spent = sum(result.seconds for result in results)
        left_out = skipped([step for step, _ in snapshots], results)
        summary = {
            "snapshots": len(snapshots),
            "probes": len(results),
            "skipped": len(left_out),
            "probe_minutes": spent / 60,
            "share_of_pretraining": spent / (budget / params.probe.max_share) if budget else 0.0,
            **({"last_step": results[-1].step, "last_valid_score": results[-1].score} if results else {}),
        }
        if left_out:
            log_line(f"probe: {len(left_out)} snapshots skipped to stay within probe.max_share: steps {left_out}")
        write_json(args.metrics, summary)
        curves.write_csv(args.curves, CURVE_COLUMNS)
        curves.save_png(args.curves.with_suffix(".png"), CURVE_COLUMNS[:1], "Downstream probe during pretraining")
        mlflow.log_metrics({key: value for key, value in summary.items() if key != "last_step"})
        for path in (args.curves, args.curves.with_suffix(".png")):
            mlflow.log_artifact(str(path), artifact_path="plots")


if __name__ == "__main__":
    main()
