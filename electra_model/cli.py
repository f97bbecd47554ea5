"""The ``electra`` command: the served model (NER or classifier) from a terminal.

    electra predict "Angela Merkel visited Paris."
    electra predict --file notes.txt --json             # one text per non-empty line of notes.txt ('-': stdin)
    electra predict --model models:/electra-ner/3 "..."  # or models:/NAME@ALIAS, or an exported dir (models/onnx)
    electra score predictions.txt                      # conlleval's report of a 'word ... gold guess' file
    electra score guesses.txt --gold test.txt          # or of a guesses file against the gold CoNLL file
    electra select --pool unlabelled.txt --k 100 --out batch.jsonl   # the texts the model is least sure of
    electra annotate push --texts notes.txt            # Label Studio: texts with the champion's pre-annotations
    electra annotate pull                              # ... and the finished annotations back as task data

``--file`` takes one text per non-empty line, the natural unit of notes and logs (offsets index that line); join a
document onto one line to have it tagged as one text. The registry is read at ``--tracking-uri``, by default
``MLFLOW_TRACKING_URI``, else ``tracking.uri`` of ./params.yaml, else sqlite:///mlflow.db.

Human output is one line per entity, ``TYPE  start-end  "text"  score`` (``(no entities)`` when there is none,
and a ``[N] text`` header per text when there are several); ``--json`` prints ``[{"text", "entities": [...]}]``.

``electra predict`` does what the model it loads does (``model_meta.json`` names its task): a sequence classifier
(``--model models:/electra-classifier@champion`` or its exported directory) prints ``LABEL  score`` per text, and
``--json`` prints ``[{"text", "label", "score", "scores": {label: probability}}]`` (with ``"pair"`` for pairs).
Text pairs: ``--pair SECOND`` once per TEXT (``electra predict "A man plays." --pair "Someone plays."``), or,
with ``--file``, a tab between the two texts of a line (every line then needs one).
``electra select`` ranks a pool of unlabelled texts (one per line, or JSONL with ``"text"``) by the exported
model's uncertainty, torch-free (:mod:`electra_model.client.selection`), and writes the ``k`` least certain as JSONL
``{"rank", "line", "text", "score"}`` (``line``: where the text is in the pool; ``score``: higher is less sure).
A user error prints one line on stderr and exits with status 2.

A subcommand is an ``add_<name>(subcommands)`` function listed in ``SUBCOMMANDS``: it adds its parser and sets
``handler``, a function of the parsed arguments that returns the exit status.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeAlias

from electra_model.tasks.ner.conlleval import aligned_rows, count_chunks, file_rows, report
from electra_model.annotate.command import add_annotate, push_selected
from electra_model.command_inputs import project_tracking_uri, read_texts, split_pairs
from electra_model.errors import ElectraError, exit_on_user_error
from electra_model.io import atomic_file
from electra_model.client.loader import load_served
from electra_model.client.ner import DEFAULT_MODEL
from electra_model.client.selection import DIVERSITY, SCORERS, check_k, read_pool, select
from electra_model.client.spec import ClientSpec
from electra_model.search.command import add_tune

Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"  # what add_subparsers returns


def quiet_downloads_off_terminal() -> None:
    """MLflow draws its download progress bar even into logs and pipes; keep it for people at a terminal."""
    if not sys.stderr.isatty():
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def format_json(texts: Sequence[str], pairs: Sequence[str] | None, results: Sequence[Any], spec: ClientSpec) -> str:
    """``[{"text", ("pair",) ...}]``: each prediction under the task's ``json_key`` (NER's ``entities``) or, for a
    mapping (a classifier's label and scores), merged into the row."""
    rows = []
    for index, (text, result) in enumerate(zip(texts, results)):
        value = spec.to_json(result)
        rows.append({
            "text": text,
            **({"pair": pairs[index]} if pairs is not None else {}),
            **({spec.json_key: value} if spec.json_key else value),
        })
    return json.dumps(rows, ensure_ascii=False, indent=2)


def format_human(texts: Sequence[str], pairs: Sequence[str] | None, results: Sequence[Any], spec: ClientSpec) -> str:
    """The task's lines per prediction (NER: one per entity; a classifier: ``LABEL  score``), each group headed
    ``[N] text`` when there are several texts."""
    lines = []
    for number, (text, result) in enumerate(zip(texts, results), start=1):
        if len(texts) > 1:
            lines.append(f"[{number}] {text}" + (f"\t{pairs[number - 1]}" if pairs is not None else ""))
        lines += spec.human(result)
    return "\n".join(lines)


def run_predict(args: argparse.Namespace) -> int:
    if bool(args.texts) == bool(args.file):
        raise ElectraError("electra predict takes TEXT arguments or --file PATH (one of the two)")
    if args.pair and (args.file or len(args.pair) != len(args.texts)):
        raise ElectraError(
            f"--pair gives the second text of a pair, once per TEXT: got {len(args.pair)} for {len(args.texts)} "
            "TEXT arguments (with --file, put a tab between the two texts of a line instead)"
        )
    texts = args.texts or read_texts(args.file)
    quiet_downloads_off_terminal()
    from_registry = str(args.model).startswith("models:/")  # an exported directory needs no tracking store
    tracking_uri = project_tracking_uri(args.tracking_uri) if from_registry else None
    spec, predictor = load_served(args.model, tracking_uri)
    if not spec.takes_pairs and args.pair:
        raise ElectraError(f"{args.model} is a {spec.kind} model, which takes single texts; drop --pair")
    texts, pairs = split_pairs(texts, args.file) if args.file and spec.takes_pairs else (texts, args.pair)
    results = predictor.predict(texts, pairs) if spec.takes_pairs else predictor.predict(texts)
    print((format_json if args.json else format_human)(texts, pairs, results, spec))
    return 0


def add_predict(subcommands: Subcommands) -> None:
    parser = subcommands.add_parser(
        "predict",
        help="tag named entities in text, or classify it",
        description="Tag named entities (offsets are character offsets), or label texts and text pairs, with the "
        "registered (or a local) ONNX model; the model's own task decides which.",
    )
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="text to tag (several are tagged separately)")
    parser.add_argument(
        "--pair", action="append", metavar="SECOND", help="a classifier's second text, once per TEXT, in order"
    )
    parser.add_argument("--file", type=Path, help="tag each non-empty line of this UTF-8 file ('-' for stdin)")
    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"models:/NAME@ALIAS, models:/NAME/VERSION or an exported directory (default: {DEFAULT_MODEL})",
    )
    parser.add_argument(
        "--tracking-uri",
        help="MLflow store holding the registry (default: MLFLOW_TRACKING_URI, else tracking.uri of ./params.yaml, "
        "else sqlite:///mlflow.db)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print JSON: [{text, entities: [{type, text, start, end, score}]}], for a classifier "
        "[{text, label, score, scores}]",
    )
    parser.set_defaults(handler=run_predict)


def run_score(args: argparse.Namespace) -> int:
    rows = aligned_rows(args.gold, args.file) if args.gold else file_rows(args.file)
    counts = count_chunks(rows)
    if counts.tokens == 0:  # conlleval.pl prints a zero report; a score of nothing is a mistake worth naming
        raise ElectraError(f"{args.file}: has no sentences (no token lines), so there is nothing to score")
    print(report(counts), end="")
    return 0


def add_score(subcommands: Subcommands) -> None:
    parser = subcommands.add_parser(
        "score",
        help="score NER predictions as conlleval does",
        description="Print conlleval's report (the CoNLL shared tasks' Perl scorer, reproduced exactly) for FILE: "
        "one 'word ... gold guess' line per token, a blank line between sentences. With --gold, FILE holds the "
        "guesses (tag in the last column) and GOLD the gold CoNLL file; their tokens must line up line by line.",
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="predictions (plain or .gz)")
    parser.add_argument("--gold", type=Path, help="gold CoNLL file to score FILE's last column against")
    parser.set_defaults(handler=run_score)


def run_select(args: argparse.Namespace) -> int:
    check_k(args.k, None, args.pool)
    pool = read_pool(args.pool)
    check_k(args.k, len(pool), args.pool)
    quiet_downloads_off_terminal()
    tracking_uri = project_tracking_uri(args.tracking_uri) if str(args.model).startswith("models:/") else None
    spec, predictor = load_served(args.model, tracking_uri)
    chosen = select(spec.kind, predictor, [item.text for item in pool], args.k, args.measure, args.diversity)
    with atomic_file(args.out) as handle:
        for rank, (index, score) in enumerate(chosen, start=1):
            row = {"rank": rank, "line": pool[index].line, "text": pool[index].text, "score": round(score, 6)}
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{args.out}: the {len(chosen)} of {len(pool)} texts {args.model} is least sure of")
    if args.push:
        print(push_selected([pool[index].text for index, _ in chosen], args.model, tracking_uri, args.project))
    return 0


def add_select(subcommands: Subcommands) -> None:
    measures = sorted({measure for _, names in SCORERS.values() for measure in names})
    parser = subcommands.add_parser(
        "select",
        help="choose the unlabelled texts worth labelling next",
        description="Rank a pool of unlabelled texts by the exported model's uncertainty (a token tagger: from its "
        "CRF's marginals, or the sequence probability without a CRF; a classifier: margin or entropy) and write the "
        "K least certain, optionally spread out over their sub-tokens (k-center greedy).",
    )
    parser.add_argument("--pool", type=Path, required=True, help="one text per line, or JSONL with a \"text\" field")
    parser.add_argument("--k", type=int, required=True, help="how many texts to choose")
    parser.add_argument("--out", type=Path, required=True, help="JSONL of the chosen texts with their scores")
    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"models:/NAME@ALIAS, models:/NAME/VERSION or an exported directory (default: {DEFAULT_MODEL})",
    )
    parser.add_argument(
        "--measure",
        choices=measures,
        help="marginal | sequence for a token tagger (default: marginal with a CRF head, else sequence); "
        "margin | entropy for a classifier (default: margin)",
    )
    parser.add_argument(
        "--diversity", choices=DIVERSITY, help="spread the batch: k-center greedy among the 4K most uncertain"
    )
    parser.add_argument("--tracking-uri", help="MLflow store holding the registry (as for predict)")
    parser.add_argument("--push", action="store_true", help="also add the chosen texts to Label Studio, "
                        "pre-annotated by the model (annotate.url in params.yaml, as `electra annotate push`)")
    parser.add_argument("--project", help="Label Studio project title for --push (default as for annotate push)")
    parser.set_defaults(handler=run_select)


SUBCOMMANDS: list[Callable[[Subcommands], None]] = [add_predict, add_score, add_select, add_tune, add_annotate]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="electra", description="ELECTRA pipeline: use the served model.")
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(subcommands)
    return parser


@exit_on_user_error
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)
