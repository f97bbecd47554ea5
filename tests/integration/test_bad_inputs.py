"""The hardening walk: bad params, stores, data, CLI calls and served inputs against a copy of the finished demo run.

Every case must end the way a user error is promised to (README, electra_model/errors.py): exit status 2 and
exactly one ``error:`` line on stderr naming the cause (the file and line, the key, or the URI with its credentials
masked), no traceback, and every output the project already had byte-identical afterwards. The stage cases call the
download stage's ``main`` in-process in the copy, as `dvc repro download` would run it: it reads params, opens the
MLflow store, then the data, so each case stops at the check it is about, and a case that wrongly got through
would rewrite ``data/`` and be caught by the hashes. Nothing here runs the pipeline again.

Run with ``-s`` to see the closing counts (cases, clear errors, raw tracebacks, silent wrong results, data lost).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import re
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

from electra_model import cli
from electra_model.errors import ElectraError
from electra_model.serving.pyfunc import as_texts
from tests.dvc_map import stage_argv
from tests.integration.project import REPO, DemoRun, Project, clone_project

pytestmark = pytest.mark.e2e

SECRET = "s3cr3t-pw"
OUTCOMES: Counter[str] = Counter()
SKIPPED_FROM_HASH = ("mlflow.db", ".git/", ".dvc/tmp/", "mlruns/")  # the store records failed runs: not an output
NER_OK = "EU B-ORG\nrejects O\nGerman B-MISC\ncall O\n\nPeter B-PER\nBlackburn I-PER\n"
TSV_OK = "sentence\tlabel\n" + "".join(f"good film {i}\tpositive\nbad film {i}\tnegative\n" for i in range(12))


def load_stage(name: str):
    """A stage script as a module, so its ``main`` (with the same ``exit_on_user_error``) runs in this process."""
    spec = importlib.util.spec_from_file_location(f"stage_{name}", REPO / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def digests(root: Path) -> dict[str, str]:
    """sha256 of every file of the project but git's, DVC's scratch folder and the MLflow database."""
    found = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and not relative.startswith(SKIPPED_FROM_HASH) and "__pycache__" not in relative:
            found[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@dataclass
class Walk:
    """The copied project, its untouched params, the hashes of its files before any case, and a folder for inputs."""

    project: Project
    params_text: str
    before: dict[str, str]
    inputs: Path


@pytest.fixture(scope="module")
def walk(demo_run: DemoRun, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walk]:
    project = clone_project(demo_run.project, tmp_path_factory.mktemp("bad-inputs") / "project")
    inputs = tmp_path_factory.mktemp("bad-input-files")
    (inputs / "corpus.txt").write_text("Some text about Europe .\n", encoding="utf-8")
    yield Walk(project, (project.root / "params.yaml").read_text(encoding="utf-8"), digests(project.root), inputs)
    print(f"\nbad inputs: {sum(OUTCOMES.values())} cases, {OUTCOMES['clear']} clear errors, "
          f"{OUTCOMES['traceback']} raw tracebacks, {OUTCOMES['silent']} silent wrong results, "
          f"{OUTCOMES['lost']} with data lost")


@pytest.fixture
def in_project(walk: Walk, monkeypatch: pytest.MonkeyPatch) -> Iterator[Walk]:
    """Run the case in the copy with its own store; put params.yaml back afterwards."""
    monkeypatch.chdir(walk.project.root)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", walk.project.env["MLFLOW_TRACKING_URI"])
    monkeypatch.delenv("ELECTRA_PARENT_RUN_ID", raising=False)
    yield walk
    (walk.project.root / "params.yaml").write_text(walk.params_text, encoding="utf-8")


def expect_user_error(walk: Walk, act: Callable[[], object], capsys: pytest.CaptureFixture[str], cause: str) -> None:
    """``act`` must exit 2 with one ``error:`` line matching ``cause``, leave no secret in it and change no file."""
    try:
        act()
        code: object = 0
    except SystemExit as stop:
        code = stop.code
    except Exception:
        OUTCOMES["traceback"] += 1
        raise
    err = capsys.readouterr().err
    (walk.project.root / "params.yaml").write_text(walk.params_text, encoding="utf-8")
    after = digests(walk.project.root)
    changed = sorted(path for path, digest in walk.before.items() if after.get(path) != digest)
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    if changed:
        OUTCOMES["lost"] += 1
    if code == 0:
        OUTCOMES["silent"] += 1
    elif code == 2 and len(errors) == 1 and "Traceback" not in err and re.search(cause, errors[0]):
        OUTCOMES["clear"] += 1
    elif "Traceback" in err:
        OUTCOMES["traceback"] += 1
    assert changed == [], f"files changed by a failed run: {changed}"
    assert code == 2, f"exit status {code}, stderr:\n{err}"
    assert "Traceback" not in err, err
    assert len(errors) == 1 and err.rstrip("\n").splitlines()[-1] == errors[0], f"not one last error line:\n{err}"
    assert re.search(cause, errors[0]), f"{cause!r} not in {errors[0]!r}"
    assert SECRET not in err


def run_download() -> None:
    load_stage("download").main(stage_argv("download"))


# ---------------------------------------------------------------------------------------------------- params
def edited(text: str, key_path: str, value: object) -> str:
    """params.yaml text with one dotted key set (comments are lost, which no case depends on)."""
    raw = yaml.safe_load(text)
    *parents, leaf = key_path.split(".")
    section = raw
    for part in parents:
        section = section[part]
    section[leaf] = value
    return yaml.safe_dump(raw, sort_keys=False)


def line_replaced(text: str, number: int, change: Callable[[str], str]) -> str:
    lines = text.splitlines(keepends=True)
    lines[number - 1] = change(lines[number - 1])
    return "".join(lines)


PARAMS_CASES: dict[str, tuple[Callable[[str], str], str]] = {
    "seed-above-32-bits": (lambda t: edited(t, "seed", 2**32), r"params\.yaml: invalid param seed = 4294967296"),
    "seed-negative": (lambda t: edited(t, "seed", -1), r"invalid param seed = -1"),
    "tune-seed-above-32-bits": (lambda t: edited(t, "tune.seed", 2**40), r"invalid param tune\.seed"),
    "empty-file": (lambda t: "", r"params\.yaml: the file is empty"),
    "only-comments": (lambda t: "# nothing here\n", r"params\.yaml: the file is empty"),
    "not-a-mapping": (lambda t: "- a\n- b\n", r"params\.yaml: expected a mapping of sections"),
    "no-break-space-indent": (lambda t: edited(t, "seed", 7).replace("\n  source:", "\n\u00a0 source:", 1),
                              r"params\.yaml:\d+:1: a no-break space \(U\+00A0\)"),
    "no-break-space-line-3": (lambda t: "task: ner\nseed: 1\nevaluate:\u00a0{}\n", r"params\.yaml:3:10: a no-break space"),
    "zero-width-space": (lambda t: t.replace("seed: 1234", "seed: 1234\u200b"), r"params\.yaml:\d+:\d+: a zero width space"),
    "bom-mid-file": (lambda t: t.replace("\nseed:", "\n\ufeffseed:"), r"params\.yaml:\d+:1: a zero width no-break"),
    "yaml-tab": (lambda t: t.replace("\n  source: demo", "\n\tsource: demo"), r"params\.yaml:\d+: not valid YAML"),
    "http-uri-with-credentials": (lambda t: edited(t, "tracking.uri", f"http://bob:{SECRET}@mlflow.example.com"),
                                  r"tracking\.uri: http://\*\*\*@mlflow\.example\.com carries credentials"),
    "postgres-uri-with-credentials": (lambda t: edited(t, "tracking.uri", f"postgresql://bob:{SECRET}@db/mlflow"),
                                      r"tracking\.uri: postgresql://\*\*\*@db/mlflow carries credentials"),
    "unknown-key": (lambda t: edited(t, "finetune.learnin_rate", 1e-4), r"finetune\.learnin_rate: unknown key"),
    "string-for-int": (lambda t: edited(t, "finetune.epochs", "three"), r"finetune\.epochs = 'three'"),
    "bool-for-int": (lambda t: edited(t, "finetune.epochs", True), r"finetune\.epochs = True.*not a number"),
    "infinite-rate": (lambda t: edited(t, "finetune.learning_rate", float("inf")), r"finetune\.learning_rate = inf"),
    "unknown-task": (lambda t: edited(t, "task", "ner2"), r"task 'ner2' is not a registered task \(registered: classification, ner\)"),
    "unknown-preset": (lambda t: edited(t, "pretrain.preset", "huge"), r"preset 'huge' is not one of"),
    "local-source-unset": (lambda t: edited(t, "data.source", "local"), r"data\.source is 'local' but data\.local\.corpus"),
    "one-label": (lambda t: edited(t, "classification.labels", ["a"]), r"classification\.labels.*at least two"),
    "warmup-over-steps": (lambda t: edited(t, "pretrain.warmup_steps", 10**9), r"warmup_steps 1000000000 exceeds"),
}


@pytest.mark.parametrize("case", sorted(PARAMS_CASES))
def test_bad_params(case: str, in_project: Walk, capsys: pytest.CaptureFixture[str]) -> None:
    change, cause = PARAMS_CASES[case]
    (in_project.project.root / "params.yaml").write_text(change(in_project.params_text), encoding="utf-8")
    expect_user_error(in_project, run_download, capsys, cause)


def test_missing_params_file(in_project: Walk, capsys: pytest.CaptureFixture[str]) -> None:
    (in_project.project.root / "params.yaml").unlink()
    expect_user_error(in_project, run_download, capsys, r"params\.yaml: params file not found")


# ------------------------------------------------------------------------------------------- tracking stores
def corrupt_sqlite(inputs: Path) -> str:
    (inputs / "corrupt.db").write_bytes(b"this is not a database " * 200)
    return f"sqlite:///{inputs / 'corrupt.db'}"


def directory_sqlite(inputs: Path) -> str:
    (inputs / "a-folder.db").mkdir(exist_ok=True)
    return f"sqlite:///{inputs / 'a-folder.db'}"


STORE_CASES: dict[str, tuple[Callable[[Path], str], str]] = {
    "corrupt-sqlite": (corrupt_sqlite, r"MLflow store sqlite:///\S+corrupt\.db cannot be opened \(.*file is not a "
                                       r"database\); move the file aside"),
    "sqlite-is-a-folder": (directory_sqlite, r"a-folder\.db cannot be opened \(.*is not a file\)"),
    "postgres-down": (lambda _: "postgresql://127.0.0.1:9/mlflow",
                      r"MLflow store postgresql://127\.0\.0\.1:9/mlflow cannot be opened \(.*refused.*\); start"),
    "postgres-down-with-credentials": (lambda _: f"postgresql://bob:{SECRET}@127.0.0.1:9/mlflow",
                                       r"postgresql://127\.0\.0\.1:9/mlflow cannot be opened"),
    "mysql-without-driver": (lambda _: "mysql://127.0.0.1:9/mlflow", r"mysql://127\.0\.0\.1:9/mlflow cannot be opened"),
    "http-with-credentials": (lambda _: f"http://bob:{SECRET}@127.0.0.1:9",
                              r"tracking URI http://\*\*\*@127\.0\.0\.1:9 carries credentials"),
    "http-down": (lambda _: "http://127.0.0.1:9", r"MLflow tracking server http://127\.0\.0\.1:9 is unreachable"),
}


@pytest.mark.parametrize("case", sorted(STORE_CASES))
def test_bad_tracking_store(case: str, in_project: Walk, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    uri, cause = STORE_CASES[case]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri(in_project.inputs))
    expect_user_error(in_project, run_download, capsys, cause)


# ------------------------------------------------------------------------------------------------------ data
def ner_files(inputs: Path, name: str, train: bytes, valid: bytes | None = None) -> dict[str, object]:
    """Params pointing the NER task's three splits at files written for the case (valid and test alike)."""
    folder = inputs / name
    folder.mkdir()
    suffix = ".txt.gz" if name.endswith("gz") else ".txt"
    (folder / f"train{suffix}").write_bytes(train)
    for split in ("valid", "test"):
        (folder / f"{split}{suffix}").write_bytes(NER_OK.encode() if valid is None else valid)
    files = {split: str(folder / f"{split}{suffix}") for split in ("train", "valid", "test")}
    return {"data.source": "local", "data.local.corpus": [str(inputs / "corpus.txt")], "ner.local": files}


def tsv_files(inputs: Path, name: str, train: str, valid: str = TSV_OK, suffix: str = ".tsv") -> dict[str, object]:
    folder = inputs / name
    folder.mkdir()
    (folder / f"train{suffix}").write_text(train, encoding="utf-8")
    for split in ("valid", "test"):
        (folder / f"{split}{suffix}").write_text(valid, encoding="utf-8")
    files = {split: str(folder / f"{split}{suffix}") for split in ("train", "valid", "test")}
    return {"task": "classification", "data.source": "local", "data.local.corpus": [str(inputs / "corpus.txt")],
            "classification.local": files}


NER = "ner/train.txt"  # how a cause names the train file of a NER case
DATA_CASES: dict[str, tuple[Callable[[Path, str], dict[str, object]], str]] = {
    "iob2-mistake-o-then-i": (lambda d, n: ner_files(d, n, (NER_OK + "\nmet O\nAnna I-PER\n").encode()),
                              r"train\.txt:10: tag 'I-PER' opens an entity \(IOB1\), but \S+train\.txt:1 opens one "
                              r"with 'B-ORG' \(IOB2\).*neither scheme"),
    "iob2-mistake-type-switch": (lambda d, n: ner_files(d, n, (NER_OK + "\nAnna B-PER\nBerlin I-LOC\n").encode()),
                                 r"train\.txt:10: tag 'I-LOC' opens an entity \(IOB1\).*neither scheme"),
    "bom-mid-file": (lambda d, n: ner_files(d, n, ("-DOCSTART- O\n\n" + NER_OK + "\n\ufeff-DOCSTART- O\n\n" + NER_OK)
                                            .encode()), r"train\.txt:11: a byte-order mark \(U\+FEFF\) inside"),
    "not-utf8": (lambda d, n: ner_files(d, n, NER_OK.encode() + b"Z\xfcrich B-LOC\n"),
                 r"train\.txt:8: not valid UTF-8"),
    "one-column": (lambda d, n: ner_files(d, n, (NER_OK + "\nlonely\n").encode()), r"train\.txt:9: only one column"),
    "iobes-tag": (lambda d, n: ner_files(d, n, (NER_OK + "\nParis S-LOC\n").encode()), r"train\.txt:9: tag 'S-LOC'"),
    "column-count-changes": (lambda d, n: ner_files(d, n, (NER_OK + "\nParis NNP B-LOC\n").encode()),
                             r"train\.txt:9: 3 columns, but line 1 has 2"),
    "empty-file": (lambda d, n: ner_files(d, n, b""), r"train\.txt: no sentences found"),
    "forced-iob2-on-iob1": (lambda d, n: {**ner_files(d, n, b"Paris I-LOC\n"), "ner.scheme": "iob2"},
                            r"train\.txt:1: tag 'I-LOC' opens an entity, which IOB2 does not allow"),
    "valid-type-unseen-in-train": (lambda d, n: ner_files(d, n, NER_OK.encode(), b"Paris B-LOC\n"),
                                   r"valid\.txt:1: sentence 1 \(token 'Paris'\) has entity type 'LOC'"),
    "gz-not-gzip": (lambda d, n: ner_files(d, n, NER_OK.encode()), r"train\.txt\.gz: not a readable gzip file"),
    "missing-file": (lambda d, n: {**ner_files(d, n, NER_OK.encode()), "ner.local.train": str(d / "nowhere.txt")},
                     r"ner\.local\.train: '\S+nowhere\.txt' is not a file"),
    "classification-typo-label": (lambda d, n: tsv_files(d, n, TSV_OK + "fine film\tpostive\n"),
                                  r"train\.tsv:26: label 'postive' occurs only here in the train split"),
    "classification-valid-label-unknown": (lambda d, n: tsv_files(d, n, TSV_OK, TSV_OK + "odd film\tneutral\n"),
                                           r"valid\.tsv:26: label 'neutral' is not among the labels"),
    "classification-listed-labels": (lambda d, n: {**tsv_files(d, n, TSV_OK + "fine film\tpostive\n"),
                                                   "classification.labels": ["negative", "positive"]},
                                     r"train\.tsv:26: label 'postive' is not among the labels.*classification\.labels"),
    "classification-no-label-column": (lambda d, n: tsv_files(d, n, TSV_OK.replace("\tlabel\n", "\tlabels\n", 1)),
                                       r"train\.tsv:2: no column 'label'"),
    "classification-empty-text": (lambda d, n: tsv_files(d, n, TSV_OK + "\tpositive\n"),
                                  r"train\.tsv:26: the text in column 'sentence' is empty"),
    "classification-bad-jsonl": (lambda d, n: tsv_files(d, n, '{"sentence": "a", "label": "x"}\n{"sentence": \n',
                                                        suffix=".jsonl"), r"train\.jsonl:2: not valid JSON"),
    "classification-bom-mid-file": (lambda d, n: tsv_files(d, n, TSV_OK + "\ufeffgreat film\tpositive\n"),
                                    r"train\.tsv:26: a byte-order mark"),
}


@pytest.mark.parametrize("case", sorted(DATA_CASES))
def test_bad_data(case: str, in_project: Walk, capsys: pytest.CaptureFixture[str]) -> None:
    make, cause = DATA_CASES[case]
    name = case if case != "gz-not-gzip" else "plain-named-gz"
    overrides = make(in_project.inputs, name)
    text = in_project.params_text
    for key, value in overrides.items():
        text = edited(text, key, value)
    (in_project.project.root / "params.yaml").write_text(text, encoding="utf-8")
    expect_user_error(in_project, run_download, capsys, cause)


# ------------------------------------------------------------------------------------------------------- CLI
def written(inputs: Path, name: str, content: bytes) -> str:
    (inputs / name).write_bytes(content)
    return str(inputs / name)


CLI_CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "score-without-gold": (lambda d: ["score", written(d, "guesses.txt", b"John B-PER\nSmith I-PER\n")],
                           r"guesses\.txt:1: 2 field\(s\) \('John B-PER'\), so no gold tag.*--gold"),
    "score-missing-file": (lambda d: ["score", str(d / "absent.txt")], r"absent\.txt: file not found"),
    "score-empty-file": (lambda d: ["score", written(d, "empty.txt", b"\n\n")], r"empty\.txt: has no sentences"),
    "score-misaligned-gold": (lambda d: ["score", written(d, "g1.txt", b"John B-PER\n"), "--gold",
                                         written(d, "gold1.txt", b"Jane B-PER\n")], r"gold1\.txt.*g1\.txt|g1\.txt.*gold1"),
    "score-mid-file-bom": (lambda d: ["score", written(d, "b.txt", "a O O\n\n\ufeffb O O\n".encode())],
                           r"b\.txt:3: a byte-order mark"),
    "predict-nothing": (lambda d: ["predict"], r"electra predict takes TEXT arguments or --file"),
    "predict-not-utf8": (lambda d: ["predict", "--model", "models/onnx", "--file", written(d, "latin1.txt", b"Z\xfcrich\n")],
                         r"latin1\.txt, line 1: not UTF-8"),
    "predict-empty-file": (lambda d: ["predict", "--model", "models/onnx", "--file", written(d, "blank.txt", b" \n")],
                           r"blank\.txt: no non-empty lines"),
    "predict-uri-credentials": (lambda d: ["predict", "Paris", "--tracking-uri", f"http://bob:{SECRET}@127.0.0.1:9"],
                                r"tracking URI http://\*\*\*@127\.0\.0\.1:9 carries credentials"),
    "predict-pair-count": (lambda d: ["predict", "a", "b", "--pair", "c"], r"--pair gives the second text"),
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_bad_cli_call(case: str, in_project: Walk, capsys: pytest.CaptureFixture[str]) -> None:
    argv, cause = CLI_CASES[case]
    expect_user_error(in_project, lambda: cli.main(argv(in_project.inputs)), capsys, cause)


# ------------------------------------------------------------------------------------------------ served input
@pytest.mark.parametrize("columns", [["sentence"], ["id", "label"], ["Text"]])
def test_a_dataframe_without_a_text_column_is_refused_naming_its_columns(columns: list[str]) -> None:
    frame = pd.DataFrame([["Paris"] * len(columns)], columns=columns)
    with pytest.raises(ElectraError, match=re.escape(f"input DataFrame needs a 'text' column; it has {columns}")):
        as_texts(frame)
    OUTCOMES["clear"] += 1
