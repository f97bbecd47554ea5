"""Training curves as a CSV for ``dvc plots`` and a PNG for MLflow, from the rows a loop logged."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

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
        """One panel per metric: losses of very different scales stay readable."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(1, len(columns), figsize=(4 * len(columns), 3), squeeze=False)
        for axis, column in zip(axes[0], columns):
            points = [(row["step"], row[column]) for row in self.rows if column in row]
            axis.plot([p[0] for p in points], [p[1] for p in points])
            axis.set_title(column)
            axis.set_xlabel("step")
        figure.suptitle(title)
        figure.tight_layout()
        with atomic_file(path, "wb") as handle:
            figure.savefig(handle, format="png", dpi=100)
        plt.close(figure)
