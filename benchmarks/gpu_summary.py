"""The GPU checks' one table: every figure benchmarks/gpu_checks.sh measures, against its goal.

    python benchmarks/gpu_summary.py OUT_DIR      # writes OUT_DIR/summary.md and prints it

It reads what the phases left in OUT_DIR (``throughput_*.json``, ``quality_summary.json``, ``ner_*.txt``,
``sst2_*.txt``, ``phases.txt``) and writes one row per goal: the figure, its target, what was measured, whether it
is met, and how the phase that measures it ended. gpu_checks.sh runs it after every phase, so a call cut short
still leaves the table of what it had; a figure a phase did not reach reads "not measured" and says why. A compiled
throughput phase that ran out of time while compiling still has its eager figure, and the row says so.
Standard library only: it must run in a second, anywhere.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PRETRAINING_MINUTES_GOAL = 10


@dataclass(frozen=True)
class Measurement:
    """A figure as read from a phase's output: the value, how to print it, and what to say beside it."""

    value: float
    shown: str
    note: str = ""
    condition_met: bool = True  # a goal's side condition (e.g. "after at most 10 minutes of pretraining")


@dataclass(frozen=True)
class Goal:
    name: str
    target: float
    shown_target: str
    phase: str
    read: Callable[[Path], Measurement | None]


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def last_match(path: Path, pattern: str) -> float | None:
    """The last number a phase's log printed after ``pattern`` (e.g. "test entity F1: 88.12 ± 0.00")."""
    try:
        found = re.findall(pattern + r"\s*([0-9.]+)", path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None
    return float(found[-1]) if found else None


def best_throughput(results: dict[str, Any]) -> tuple[str, dict[str, float]]:
    """The faster of our eager and compiled figures, by name; eager alone when the compiled round did not finish."""
    rounds = {name: results[name] for name in ("eager", "compiled") if name in results}
    name = max(rounds, key=lambda key: rounds[key]["tokens_per_s"])
    return name, rounds[name]


def throughput_note(results: dict[str, Any]) -> str:
    figures = ", ".join(f"{name} {results[name]['tokens_per_s']:,.0f} tok/s"
                        for name in ("eager", "compiled") if name in results)
    unfinished = results["compile"] and "compiled" not in results
    missing = "; compiled: not finished, the eager figure stands" if unfinished else ""
    return f"{figures}{missing}; {results['device']}"


def small_tokens_per_s(out: Path) -> Measurement | None:
    results = read_json(out / "throughput_small.json")
    if results is None:
        return None
    name, best = best_throughput(results)
    return Measurement(best["tokens_per_s"], f"{best['tokens_per_s']:,.0f} ({name})", throughput_note(results))


def small_speedup(out: Path) -> Measurement | None:
    results = read_json(out / "throughput_small.json")
    if results is None:
        return None
    name, best = best_throughput(results)
    ratio = best["tokens_per_s"] / results["baseline"]["tokens_per_s"]
    note = f"against {results['baseline']['name']} ({results['baseline']['tokens_per_s']:,.0f} tok/s)"
    return Measurement(ratio, f"{ratio:.2f}x ({name})", note)


def base_mfu(out: Path) -> Measurement | None:
    results = read_json(out / "throughput_base.json")
    if results is None or "mfu" not in results["eager"]:
        return None
    name, best = best_throughput(results)
    return Measurement(100 * best["mfu"], f"{100 * best['mfu']:.1f}% ({name})", throughput_note(results))


def pretraining_minutes(out: Path) -> float | None:
    quality = read_json(out / "quality_summary.json")
    return None if quality is None else quality["training_wall_s"] / 60


def pretrained_score(log: str, pattern: str, unit: str) -> Callable[[Path], Measurement | None]:
    """The pretrained arm's score from its log, with the random arm's beside it and the pretraining time."""

    def read(out: Path) -> Measurement | None:
        score = last_match(out / f"{log}_pretrained.txt", pattern)
        if score is None:
            return None
        random = last_match(out / f"{log}_random.txt", pattern)
        minutes = pretraining_minutes(out)
        trained = f"after {minutes:.1f} min of pretraining" if minutes is not None else "pretraining time unknown"
        versus = f"random init {random:.2f}{unit}" if random is not None else "random init not measured"
        within = minutes is not None and minutes <= PRETRAINING_MINUTES_GOAL
        return Measurement(score, f"{score:.2f}{unit}", f"{trained}; {versus}", within)

    return read


GOALS = (
    Goal("small: our pretraining tokens/s", 1_500_000, ">= 1,500,000", "throughput_small", small_tokens_per_s),
    Goal("small: speedup over the naive bf16 baseline", 3.0, ">= 3.00x", "throughput_small", small_speedup),
    Goal("base: MFU", 35.0, ">= 35%", "throughput_base", base_mfu),
    Goal(f"CoNLL-2003 test entity F1, pretrained <= {PRETRAINING_MINUTES_GOAL} min", 85.0, ">= 85", "ner_pair",
         pretrained_score("ner", r"test entity F1:", "")),
    Goal("SST-2 dev accuracy, pretrained", 85.0, ">= 85%", "sst2_pair",
         pretrained_score("sst2", r"dev accuracy:", "%")),
)


def phase_endings(out: Path) -> dict[str, str]:
    """How each phase ended, from phases.txt ("name: exit 0 after 41 s (limit 90 s)" or "name: skipped, ...")."""
    try:
        lines = (out / "phases.txt").read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    return dict(line.split(": ", 1) for line in lines if ": " in line)


def row(goal: Goal, out: Path, endings: dict[str, str]) -> str:
    ending = endings.get(goal.phase, "not run")
    if goal.phase == "ner_pair" and "quality" in endings:
        ending = f"{ending}; quality: {endings['quality']}"
    measured = goal.read(out)
    if measured is None:
        return f"| {goal.name} | {goal.shown_target} | not measured | - | {goal.phase}: {ending} |"
    met = "yes" if measured.value >= goal.target and measured.condition_met else "**no**"
    note = f"{measured.note}; " if measured.note else ""
    return f"| {goal.name} | {goal.shown_target} | {measured.shown} | {met} | {note}{goal.phase}: {ending} |"


def summary(out: Path) -> str:
    endings = phase_endings(out)
    lines = ["| goal | target | measured | met | how it was measured |", "| --- | --- | --- | --- | --- |"]
    lines += [row(goal, out, endings) for goal in GOALS]
    return "\n".join(lines) + "\n"


def main() -> None:
    out = Path(sys.argv[1])
    text = summary(out)
    staging = out / ".summary.md.tmp"
    staging.write_text(text, encoding="utf-8")
    os.replace(staging, out / "summary.md")  # atomic: a call cut short never leaves half a table
    print(text, end="")


if __name__ == "__main__":
    main()
