"""Hugging Face datasets for the ``hf`` source, shared by the corpus and every task: one split loaded by
``datasets.load_dataset`` (a hub name or a local folder of data files), its columns checked against the params keys
that name them::

    from electra_model.data.hf import load_hf_split, require_column
    dataset = load_hf_split("conll2003", None, "train", "ner.hf")
    require_column(dataset, "tokens", "ner.hf.tokens_column")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from electra_model.errors import ElectraError

if TYPE_CHECKING:
    from datasets import Dataset


def load_hf_split(path: str, name: str | None, split: str, key: str) -> Dataset:
    """One split via ``load_dataset``; an error names the params ``key`` that chose it.

    ``datasets`` is imported here because it is slow to import and only this source needs it.
    """
    import datasets

    try:
        return datasets.load_dataset(path, name, split=split)
    except (OSError, ValueError) as error:
        raise ElectraError(
            f"{key}: cannot load {path!r} (name {name!r}, split {split!r}): {error}; check the dataset name or "
            "folder, the split and, for the hub, the network"
        ) from None


def require_column(dataset: Dataset, column: str, key: str) -> None:
    """A column the params ``key`` names must exist; the message lists the ones that do."""
    if column not in dataset.column_names:
        raise ElectraError(
            f"{key}: no column {column!r}; the dataset has {dataset.column_names}; set {key} to one of them"
        )
