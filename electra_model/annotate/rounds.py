"""The parts of one labelling round (``flows/labelling.py``) that need no scheduler: whether the pipeline trains on
what ``pull`` writes, whether the pulled data is new since the last trained round, and the next batch, chosen by
the champion from the texts of the pool that Label Studio does not hold yet and pushed pre-annotated::

    check_trains_on(params, Path("labelled/annotations.txt"))
    pushed = push_next_batch(studio, "electra-ner", read_pool(Path("unlabelled.txt")), 50,
                             "models:/electra-ner@champion", tracking_uri)

The pool is never filtered by what was *labelled*: a text pushed in an earlier round and not annotated yet is still
waiting in Label Studio, and choosing it again would only push it twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from electra_model.annotate.push import open_model, push_texts
from electra_model.annotate.studio import LabelStudio
from electra_model.client.selection import PoolText, select
from electra_model.errors import ElectraError

if TYPE_CHECKING:
    from electra_model.config import Params


def task_train_file(params: Params) -> str | None:
    """The task section's ``local.train`` (``ner.local.train``, ``classification.local.train``, or a plug-in
    task's), or None when the task reads no local train file."""
    section: Any = getattr(params, params.task, None) or (params.model_extra or {}).get(params.task)
    local = section.get("local") if isinstance(section, Mapping) else getattr(section, "local", None)
    return local.get("train") if isinstance(local, Mapping) else getattr(local, "train", None)


def check_trains_on(params: Params, data_file: Path) -> None:
    """A round trains on what it pulls: ``data.source`` must be ``local`` and the task's train file ``data_file``,
    or the experiment would retrain on the old data and the round would record a score that has nothing to do
    with the new labels."""
    train = task_train_file(params)
    if params.data.source != "local" or train is None or Path(train).resolve() != data_file.resolve():
        raise ElectraError(
            f"params.yaml: the pipeline does not train on the pulled annotations ({data_file}): data.source is "
            f"{params.data.source!r} and {params.task}.local.train is {train!r}; set data.source: local and "
            f"{params.task}.local.train: {data_file} (with your own {params.task}.local.valid and test files)"
        )


def file_md5(path: Path) -> str:
    """The file's MD5, as ``dvc add`` records it: the round's record of exactly which labels it trained on."""
    return hashlib.md5(path.read_bytes()).hexdigest()  # noqa: S324 (an identity, not a secret)


def task_texts(tasks: Iterable[Mapping[str, Any]]) -> set[str]:
    """The texts a Label Studio project holds, annotated or not (its exported tasks' ``data.text``)."""
    return {str((task.get("data") or {}).get("text", "")) for task in tasks}


def fresh_texts(pool: Sequence[PoolText], known: set[str]) -> list[PoolText]:
    """The pool's texts that the project does not hold yet, each once (the first line it is on)."""
    seen = set(known)
    fresh = []
    for item in pool:
        if item.text not in seen:
            seen.add(item.text)
            fresh.append(item)
    return fresh


def push_next_batch(
    studio: LabelStudio,
    project: str,
    pool: Sequence[PoolText],
    k: int,
    model_uri: str,
    tracking_uri: str | None,
    diversity: str | None = None,
) -> list[PoolText]:
    """Choose up to ``k`` of the pool's new texts that ``model_uri`` is least sure of (``electra select``'s ranking)
    and push them to ``project`` pre-annotated by that model; the texts pushed (none when the pool is used up)."""
    project_id = studio.find_project(project)
    known = task_texts(studio.export(project_id)) if project_id is not None else set()
    candidates = fresh_texts(pool, known)
    if not candidates:
        return []
    with open_model(model_uri, tracking_uri) as model:
        texts = [item.text for item in candidates]
        chosen = select(model.client.kind, model.predictor, texts, min(k, len(texts)), diversity=diversity)
        batch = [candidates[index] for index, _score in chosen]
        added = push_texts(studio, project, [item.text for item in batch], model)
    if added != len(batch):
        raise ElectraError(f"Label Studio project {project!r} at {studio.url} took {added} of the {len(batch)} texts "
                           "pushed; see its server log")
    return batch
