"""How the stages find a task that lives outside this package: a plug-in is a
:class:`~electra_model.tasks.spec.TaskSpec` named by ``module:ATTRIBUTE``, either installed under the
``electra_model.tasks`` entry-point group (``[project.entry-points."electra_model.tasks"]`` in its pyproject) or
listed under ``plugins`` in params.yaml; nothing in this package has to be edited to add one::

    specs = find_plugins(params.plugins)            # by task name; the export stage registers them
    trainer = plugin_part(params, "trainer", TRAINERS)    # the chosen plug-in's trainer (built-ins: TRAINERS)
    section = task_section(params)                  # its own params section, validated by its params model

The built-in tasks are not found here: the stages' tables (:mod:`electra_model.tasks.catalog`, ``trainers``,
``evaluators``) and :mod:`electra_model.tasks.registry` import them, so that each stage's static import closure
(its DVC deps) keeps holding their code. This module imports neither, so the download stage's deps do not grow
by the registry and the client.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pydantic import BaseModel

from electra_model.config import Params, validate_section
from electra_model.errors import ElectraError
from electra_model.tasks.spec import TaskSpec

ENTRY_POINT_GROUP = "electra_model.tasks"


def find_plugins(references: Sequence[str]) -> dict[str, TaskSpec]:
    """Every installed plug-in and every ``module:ATTRIBUTE`` in ``references`` (params.yaml's ``plugins``), by
    task name; one that cannot be imported or is no :class:`TaskSpec` is named with what to do."""
    found = [(f"entry point {entry.name!r} ({ENTRY_POINT_GROUP})", entry)
             for entry in entry_points(group=ENTRY_POINT_GROUP)]
    found += [(f"params.yaml plugins[{index}]", EntryPoint(name=reference, value=reference, group=ENTRY_POINT_GROUP))
              for index, reference in enumerate(references)]
    specs: dict[str, TaskSpec] = {}
    for where, entry in found:
        try:
            spec = entry.load()
        except (ImportError, AttributeError) as error:
            raise ElectraError(
                f"{where}: cannot load {entry.value!r} ({error}); make the module importable (installed, or on "
                "PYTHONPATH) and name a TaskSpec in it as module:ATTRIBUTE"
            ) from None
        if not isinstance(spec, TaskSpec):
            raise ElectraError(
                f"{where}: {entry.value!r} is a {type(spec).__name__}, not a TaskSpec; name the plug-in's TaskSpec"
            )
        specs[spec.name] = spec
    return specs


def plugin_spec(params: Params, builtin: Collection[str]) -> TaskSpec:
    """The plug-in ``params.task`` names; a name that is neither a ``builtin`` task nor a plug-in is refused,
    listing every task there is."""
    specs = find_plugins(params.plugins)
    if params.task not in specs:
        known = ", ".join(sorted({*builtin, *specs}))
        raise ElectraError(
            f"params.yaml: task {params.task!r} is not a registered task (registered: {known}); name one of them, "
            f"or add the plug-in that defines it to plugins (module:ATTRIBUTE) or install it under the "
            f"{ENTRY_POINT_GROUP} entry points"
        )
    return specs[params.task]


def plugin_part(params: Params, part: str, builtin: Collection[str]) -> Any:
    """The chosen plug-in's ``data``, ``trainer`` or ``evaluator`` (see :class:`TaskSpec`), made by its factory."""
    spec = plugin_spec(params, builtin)
    factory = getattr(spec, part)
    if factory is None:
        raise ElectraError(
            f"task {spec.name!r} gives no {part}, so this stage cannot run it; add {part}= to its TaskSpec"
        )
    return factory()


def task_section(params: Params) -> BaseModel:
    """A plug-in task's own params section (the top-level key named after it), validated by its ``params_model``:
    what its trainer or evaluator reads instead of a built-in section."""
    spec = plugin_spec(params, ())
    if spec.params_model is None:
        raise ElectraError(f"task {spec.name!r} declares no params section (its TaskSpec has no params_model)")
    raw = (params.model_extra or {}).get(spec.name)
    if raw is None:
        raise ElectraError(f"params.yaml: task {spec.name!r} needs its own section `{spec.name}:`; add it")
    return validate_section(spec.params_model, raw, f"params.yaml ({spec.name})")
