"""``electra annotate``: label your own texts in Label Studio (``make label-studio`` serves it), from the project root.

    electra annotate push --texts notes.txt [--project NAME] [--model models:/electra-ner@champion]
    electra annotate push --gold data/task/valid.txt      # labelled examples as finished annotations
    electra annotate pull [--project NAME] [--out DIR]    # annotations -> DIR/annotations.txt (or .jsonl), dvc add

The server, project and output folder default to ``annotate:`` in params.yaml; the task (``task:``) decides the
converter through its predictor kind. ``pull`` prints one line per task it left out (also in ``DIR/skipped.txt``)
and tracks the folder with ``dvc add`` when run in a DVC project (``--no-dvc`` to leave that to you).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from electra_model.annotate.converters import converter_for
from electra_model.annotate.pull import SKIP_REPORT, pull
from electra_model.annotate.push import open_model, push_gold, push_texts
from electra_model.annotate.studio import LabelStudio, find_token
from electra_model.command_inputs import project_tracking_uri, read_texts, split_pairs
from electra_model.errors import ElectraError

PARAMS_FILE = Path("params.yaml")


def _context(project: str | None) -> tuple[Any, LabelStudio, str]:
    """The project's params, its Label Studio and the project title (``--project``, ``annotate.project``, else the
    task's registered model name)."""
    from electra_model.config import load_params
    from electra_model.tasks.registry import register_plugins, registered_name

    params = load_params(PARAMS_FILE)
    register_plugins(params.plugins)
    annotate = params.annotate
    studio = LabelStudio(annotate.url, find_token(Path(annotate.data_dir)), annotate.timeout_s)
    title = project or annotate.project or registered_name(params.export, params.task)
    return params, studio, title


def run_push(args: argparse.Namespace) -> int:
    if bool(args.texts) == bool(args.gold):
        raise ElectraError("electra annotate push takes --texts FILE or --gold FILE (one of the two)")
    params, studio, title = _context(args.project)
    if args.gold:
        from electra_model.tasks.registry import spec_for

        added = push_gold(studio, title, args.gold, params, converter_for(spec_for(params.task).client.kind))
    else:

        from electra_model.tasks.registry import registered_name

        texts = read_texts(args.texts)
        uri = args.model or f"models:/{registered_name(params.export, params.task)}@{params.export.alias}"
        tracking_uri = project_tracking_uri(args.tracking_uri) if str(uri).startswith("models:/") else None
        with open_model(uri, tracking_uri) as model:
            texts, pairs = split_pairs(texts, args.texts) if model.client.takes_pairs else (texts, None)
            added = push_texts(studio, title, texts, model, pairs)
    print(f"pushed {added} tasks to Label Studio project {title!r} at {studio.url}")
    return 0


def push_selected(texts: Sequence[str], model_uri: str, tracking_uri: str | None, project: str | None) -> str:
    """``electra select --push``: the chosen texts into the Label Studio project (``--project``, else as for
    ``push``), pre-annotated by the model that chose them; the line that says where they went."""
    _params, studio, title = _context(project)
    with open_model(model_uri, tracking_uri) as model:
        added = push_texts(studio, title, texts, model)
    return f"pushed {added} tasks to Label Studio project {title!r} at {studio.url}"


def run_pull(args: argparse.Namespace) -> int:
    params, studio, title = _context(args.project)
    from electra_model.tasks.registry import spec_for

    converter = converter_for(spec_for(params.task).client.kind)
    out = args.out or Path(params.annotate.out)
    pulled = pull(studio, title, out, params, converter)
    for task, reason in pulled.skipped:
        print(f"skipped task {task}: {reason}", file=sys.stderr)
    print(f"pulled {len(pulled.records)} annotated tasks of {title!r} into {out / converter.data_file}; "
          f"{len(pulled.skipped)} left out (listed in {out / SKIP_REPORT})")
    if not args.no_dvc and Path(".dvc").is_dir():
        print(f"tracked by DVC: {dvc_add(out)} (commit it with git)")
    return 0


def dvc_add(out: Path) -> Path:
    """Track the pulled folder with DVC (``dvc add``), so the data a model was trained on has a hash and a cache
    copy; the ``.dvc`` file written."""
    done = subprocess.run(["dvc", "add", "--quiet", str(out)], capture_output=True, text=True)
    if done.returncode != 0:
        raise ElectraError(f"`dvc add {out}` failed: {done.stderr.strip()}; fix that and run it again")
    return out.with_name(out.name + ".dvc")


def add_annotate(subcommands: Any) -> None:
    parser = subcommands.add_parser(
        "annotate",
        help="label texts in Label Studio: push texts with the model's predictions, pull annotations as data",
        description="Push texts to Label Studio (annotate.url in params.yaml; `make label-studio` starts it) with the "
        "model's predictions as pre-annotations, and pull the finished annotations as the task's data files.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    push = actions.add_parser("push", help="create or update the project and add texts to it")
    push.add_argument("--texts", type=Path, help="one text per non-empty line ('first<TAB>second' for pairs)")
    push.add_argument("--gold", type=Path, help="a labelled file of the task's format, pushed as finished annotations")
    push.add_argument("--project", help="Label Studio project title (default: annotate.project, else the model name)")
    push.add_argument("--model", help="the model that pre-annotates: models:/NAME@ALIAS, models:/NAME/VERSION or an "
                      "exported directory (default: the task's registered model at export.alias, e.g. "
                      "models:/electra-ner@champion)")
    push.add_argument("--tracking-uri", help="MLflow store of the registry (as for electra predict)")
    push.set_defaults(handler=run_push)
    pull_parser = actions.add_parser("pull", help="write the finished annotations as the task's data (DVC-tracked)")
    pull_parser.add_argument("--project", help="Label Studio project title (default as for push)")
    pull_parser.add_argument("--out", type=Path, help="folder to write (default annotate.out)")
    pull_parser.add_argument("--no-dvc", action="store_true", help="do not run `dvc add` on the folder")
    pull_parser.set_defaults(handler=run_pull)
