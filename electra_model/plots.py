"""Every picture the pipeline draws, in one place: training curves (a CSV for ``dvc plots`` and a PNG for MLflow)
and the confusion matrix. The numbers come from elsewhere (the loops' logged rows,
:func:`electra_model.tasks.ner.metrics.type_confusion`); this module only draws them, and is the only one that
imports matplotlib."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from electra_model.io import atomic_file


class CurveRecorder:
    """Collects ``(step, metrics)`` rows as a training loop reports them."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []

    def __call__(self, step: int, metrics: dict[str, float]) -> None:
        self.rows.append({"step": step, **metrics})

    def write_csv(self, path: Path, columns: Sequence[str]) -> None:
        """Only rows that carry all ``columns`` (a loop may log different metrics at different steps)."""
        with atomic_file(path) as handle:
            writer = csv.DictWriter(handle, fieldnames=["step", *columns], extrasaction="ignore")
            writer.writeheader()
            writer.writerows(row for row in self.rows if all(column in row for column in columns))

    def save_png(self, path: Path, columns: Sequence[str], title: str) -> None:
        save_curves_png(self.rows, path, columns, title)

    def save_overlay_png(self, path: Path, columns: Sequence[str], title: str) -> None:
        save_overlay_png(self.rows, path, columns, title)


def _pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend (stages run without a display); imported on first use,
    since most users of this package never draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure: Any, path: Path) -> None:
    with atomic_file(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=100)
    _pyplot().close(figure)


def save_curves_png(rows: Sequence[Mapping[str, float]], path: Path, columns: Sequence[str], title: str) -> None:
    """One panel per metric against ``step``: losses of very different scales stay readable."""
    figure, axes = _pyplot().subplots(1, len(columns), figsize=(4 * len(columns), 3), squeeze=False)
    for axis, column in zip(axes[0], columns):
        points = [(row["step"], row[column]) for row in rows if column in row]
        axis.plot([p[0] for p in points], [p[1] for p in points])
        axis.set_title(column)
        axis.set_xlabel("step")
    figure.suptitle(title)
    figure.tight_layout()
    _save(figure, path)


def save_overlay_png(rows: Sequence[Mapping[str, float]], path: Path, columns: Sequence[str], title: str) -> None:
    """Several metrics of the same unit on one panel against ``step``, where their crossing is the point (a loss
    against its reference lines)."""
    figure, axis = _pyplot().subplots(figsize=(6, 4))
    for column in columns:
        points = [(row["step"], row[column]) for row in rows if column in row]
        axis.plot([p[0] for p in points], [p[1] for p in points], label=column)
    axis.set_xlabel("step")
    axis.legend()
    axis.set_title(title)
    figure.tight_layout()
    _save(figure, path)


def save_confusion_png(confusion: Mapping[str, list], path: Path, title: str) -> None:
    """The confusion matrix as a heat map with each cell's count, rows normalised so rare types stay visible."""
    import numpy as np

    labels, counts = confusion["labels"], np.asarray(confusion["matrix"])
    shares = counts / np.maximum(1, counts.sum(axis=1, keepdims=True))
    figure, axis = _pyplot().subplots(figsize=(1.2 * len(labels) + 2, 1.1 * len(labels) + 1.5))
    axis.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    for row in range(len(labels)):
        for column in range(len(labels)):
            colour = "white" if shares[row, column] > 0.5 else "black"
            axis.text(column, row, str(counts[row, column]), ha="center", va="center", color=colour, fontsize=8)
    axis.set_xticks(range(len(labels)), labels)
    axis.set_yticks(range(len(labels)), labels)
    axis.set_xlabel("predicted")
    axis.set_ylabel("gold")
    axis.set_title(title)
    figure.tight_layout()
    _save(figure, path)
