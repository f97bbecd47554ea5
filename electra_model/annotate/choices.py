"""Text classification in Label Studio: the labels as single ``<Choices>`` over the text (and its second text),
and a chosen label back to one record of the table the task's ``local`` source reads.

The pulled file is JSONL keyed by the ``classification`` section's own columns (``text_column``,
``text_pair_column``, ``label_column``), so ``classification.local.train`` can name it without other changes.
A task with no choice, several, or a label the project does not list is a listed skip.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import quoteattr

from electra_model.annotate.convert import FROM_NAME, TO_NAME, Skipped, result_labels
from electra_model.errors import ElectraError
from electra_model.io import atomic_file
from electra_model.tasks.classification.data import TextExample, read_file

if TYPE_CHECKING:
    from electra_model.config import Params

PAIR = "pair"  # the task data's key for the second text of a pair


def choice_item(label: str, score: float | None = None) -> dict[str, Any]:
    """One chosen label as a Label Studio result item."""
    return {"from_name": FROM_NAME, "to_name": TO_NAME, "type": "choices", "value": {"choices": [label]},
            **({"score": score} if score is not None else {})}


class ChoiceConverter:
    """Text classification's converter (:class:`electra_model.annotate.convert.Converter`)."""

    kind = "text_classification"
    data_file = "annotations.jsonl"

    def label_names(self, labels: Sequence[str]) -> list[str]:
        return list(labels)

    def label_config(self, names: Sequence[str], pairs: bool) -> str:
        choices = "".join(f"<Choice value={quoteattr(name)}/>" for name in names)
        second = f'<Text name="{PAIR}" value="${PAIR}"/>' if pairs else ""
        return (f'<View><Text name="{TO_NAME}" value="${TO_NAME}"/>{second}'
                f'<Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="single">{choices}</Choices></View>')

    def task_data(self, text: str, pair: str | None) -> dict[str, Any]:
        return {TO_NAME: text, **({PAIR: pair} if pair is not None else {})}

    def prediction(self, predicted: Mapping[str, Any], model_version: str) -> dict[str, Any]:
        """The predicted label with its probability (the task's score: low is doubtful)."""
        score = float(predicted["score"])
        return {"model_version": model_version, "score": score, "result": [choice_item(predicted["label"], score)]}

    def read_gold(self, path: Path, params: Params) -> tuple[list[str], list[dict[str, Any]]]:
        examples = read_file(path, params.classification)
        labels = list(params.classification.labels or sorted({str(example.label) for example in examples}))
        tasks = [{"data": self.task_data(example.text, example.pair),
                  "annotations": [{"result": [choice_item(str(example.label))]}]} for example in examples]
        return labels, tasks

    def record(self, data: Mapping[str, Any], result: Sequence[Mapping[str, Any]], known: Sequence[str]) -> TextExample:
        text, pair = data.get(TO_NAME), data.get(PAIR)
        if not isinstance(text, str) or not text.strip():
            raise Skipped(f"its text is empty or missing (data keys: {sorted(data)})")
        chosen = [label for item in result if item.get("type") == "choices" for label in result_labels(item, "choices")]
        if len(chosen) != 1:
            raise Skipped(f"it has {len(chosen)} chosen labels {chosen}; choose exactly one")
        if chosen[0] not in known:
            raise Skipped(f"its label {chosen[0]!r} is not one the project lists ({', '.join(known)}); relabel it")
        return TextExample(text, pair if isinstance(pair, str) else None, chosen[0], "")

    def write(self, records: Sequence[TextExample], path: Path, params: Params) -> None:
        columns = params.classification
        with atomic_file(path) as handle:
            for example in records:
                if (example.pair is not None) != (columns.text_pair_column is not None):
                    raise ElectraError(
                        f"the annotated texts {'have' if example.pair is not None else 'lack'} second texts but "
                        f"classification.text_pair_column is {columns.text_pair_column!r}; set it to match the project"
                    )
                row = {columns.text_column: example.text,
                       **({columns.text_pair_column: example.pair} if columns.text_pair_column else {}),
                       columns.label_column: example.label}
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")

