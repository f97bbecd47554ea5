"""Every data source end to end into temporary directories: real files, a real HTTP server, real parquet datasets."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from electra_model.config import Params
from electra_model.data import sources
from electra_model.data.remote import DOWNLOAD_CACHE
from electra_model.data.sources import write_corpus
from electra_model.errors import ElectraError
from electra_model.tasks.ner.conll import Sentence, read_conll
from electra_model.tasks.ner.data import load_ner
from tests.params import params as yaml_params

TRAIN = (
    "-DOCSTART- -X- O O\n\n"
    "EU NNP I-NP I-ORG\nrejects VBZ I-VP O\nGerman JJ I-NP I-MISC\ncall NN I-NP O\n\n"
    "Peter NNP I-NP I-PER\nBlackburn NNP I-NP I-PER\n\n"
    "BRUSSELS NNP I-NP I-LOC\n"
)
VALID = "Paris I-LOC\nand O\nBerlin I-LOC\n\nUN I-ORG\n"
TEST = "John\tI-PER\r\nSmith\tI-PER\r\nDutch\tI-MISC\r\n"
CORPUS_A = "  First   paragraph of doc one.\r\nSecond paragraph.\r\n\r\n\r\nDoc two only paragraph.\r\n"
CORPUS_B = "\nA gzip document.\n"


def materialize(
    params: Params, seed: int, corpus_dir: Path, ner_dir: Path, cache_dir: Path = DOWNLOAD_CACHE
) -> dict[str, Any]:
    """The download stage's two steps for NER: read and check the splits, then write them beside the corpus."""
    ner = load_ner(params.ner, params.data, seed, cache_dir)
    return sources.materialize(params.data, seed, corpus_dir, ner_dir, ner, cache_dir)


def small_demo() -> Params:
    sizes = {"corpus_documents": 20, "train_sentences": 60, "valid_sentences": 20, "test_sentences": 20}
    return yaml_params({f"data.demo.{key}": value for key, value in sizes.items()})


def read_corpus(corpus_dir: Path) -> str:
    return "".join(path.read_text(encoding="utf-8") for path in sorted(corpus_dir.glob("shard-*.txt")))


def snapshot(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


@pytest.fixture
def local_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """CoNLL files in three dialects and two corpus files, addressed by relative paths from tmp_path."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "a.txt").write_bytes(CORPUS_A.encode())
    with gzip.open(tmp_path / "corpus" / "b.txt.gz", "wt", encoding="utf-8") as handle:
        handle.write(CORPUS_B)
    (tmp_path / "ner").mkdir()
    (tmp_path / "ner" / "train.txt").write_text(TRAIN, encoding="utf-8")
    with gzip.open(tmp_path / "ner" / "valid.txt.gz", "wt", encoding="utf-8") as handle:
        handle.write(VALID)
    (tmp_path / "ner" / "test.txt").write_bytes(TEST.encode())
    return tmp_path


def local_params(
    corpus: list[str] | None = None, ner: dict[str, str] | None = None
) -> Params:
    return yaml_params({
        "data.source": "local",
        "data.local.corpus": corpus or ["corpus/*.txt", "corpus/*.txt.gz"],
        "ner.local": ner or {"train": "ner/train.txt", "valid": "ner/valid.txt.gz", "test": "ner/test.txt"},
    })


def test_demo_source_end_to_end(tmp_path: Path) -> None:
    params = small_demo()
    summary = materialize(params, 1234, tmp_path / "corpus", tmp_path / "ner")
    assert summary["source"] == "demo"
    assert summary["corpus"]["documents"] == 20 and summary["corpus"]["shards"] == 1
    text = read_corpus(tmp_path / "corpus")
    assert len(text.split("\n\n")) == 20
    assert summary["corpus"]["characters"] == len(text.replace("\n", ""))
    splits = {
        split: read_conll(tmp_path / "ner" / f"{split}.txt", scheme="iob2") for split in ("train", "valid", "test")
    }
    assert [len(splits[split]) for split in ("train", "valid", "test")] == [60, 20, 20]
    assert splits["valid"] != splits["test"]
    assert summary["ner"]["train"]["sentences"] == 60 and set(summary["ner"]["train"]["entities"]) == {
        "PER",
        "LOC",
        "ORG",
        "MISC",
    }
    before = snapshot(tmp_path / "ner")
    materialize(params, 1234, tmp_path / "corpus", tmp_path / "ner")
    assert snapshot(tmp_path / "ner") == before


def test_local_source_reads_globs_gzip_and_conll_dialects(local_files: Path) -> None:
    summary = materialize(local_params(), 0, Path("out/corpus"), Path("out/ner"))
    assert read_corpus(local_files / "out" / "corpus") == (
        "First paragraph of doc one.\nSecond paragraph.\n\nDoc two only paragraph.\n\nA gzip document.\n"
    )
    assert {key: summary["corpus"][key] for key in ("shards", "documents", "lines")} == {
        "shards": 1,
        "documents": 3,
        "lines": 4,
    }
    assert (local_files / "out" / "ner" / "train.txt").read_text() == (
        "EU B-ORG\nrejects O\nGerman B-MISC\ncall O\n\nPeter B-PER\nBlackburn I-PER\n\nBRUSSELS B-LOC\n\n"
    )
    assert read_conll(local_files / "out" / "ner" / "test.txt") == [
        Sentence(("John", "Smith", "Dutch"), ("B-PER", "I-PER", "B-MISC"))
    ]
    assert summary["ner"]["valid"]["entities"] == {"LOC": 2, "ORG": 1}


def test_corpus_is_split_into_shards_below_the_size_limit(tmp_path: Path) -> None:
    lines = [f"paragraph {index} " + "x" * 30 for index in range(40)] + [""] + ["last document"]
    counts = write_corpus(lines, tmp_path, shard_bytes=200)
    shards = sorted(tmp_path.glob("shard-*.txt"))
    assert counts["shards"] == len(shards) > 5
    assert all(0 < path.stat().st_size <= 200 for path in shards)
    assert all(not path.read_text().startswith("\n") for path in shards)
    assert [line for line in read_corpus(tmp_path).split("\n") if line] == [line for line in lines if line]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"corpus": ["corpus/*.txt", "corpus/*.bz2"]}, r"data.local.corpus\[1\]: 'corpus/\*.bz2' matches no file"),
        ({"corpus": ["nowhere.txt"]}, r"data.local.corpus\[0\]: 'nowhere.txt' matches no file"),
        (
            {"ner": {"train": "ner/train.txt", "valid": "ner/missing.txt", "test": "ner/test.txt"}},
            r"ner.local.valid: 'ner/missing.txt' is not a file",
        ),
    ],
)
def test_missing_local_paths_name_the_param_key(local_files: Path, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ElectraError, match=message):
        materialize(local_params(**changes), 0, Path("out/corpus"), Path("out/ner"))
    assert not (local_files / "out").exists() or not any((local_files / "out").iterdir())


def test_empty_corpus_is_an_error_naming_the_paths(local_files: Path) -> None:
    (local_files / "corpus" / "blank.txt").write_text("\n  \n\n")
    with pytest.raises(ElectraError, match=r"data.local.corpus \(corpus/blank.txt\) produced no text"):
        materialize(local_params(corpus=["corpus/blank.txt"]), 0, Path("out/corpus"), Path("out/ner"))


def test_failed_materialize_leaves_previous_outputs_untouched(local_files: Path) -> None:
    out = local_files / "out"
    materialize(small_demo(), 1234, out / "corpus", out / "ner")
    corpus_before, ner_before = snapshot(out / "corpus"), snapshot(out / "ner")
    complete = gzip.compress("".join(f"paragraph {index}\n" for index in range(5000)).encode())
    (local_files / "corpus" / "truncated.txt.gz").write_bytes(complete[: len(complete) // 2])
    with pytest.raises(ElectraError, match=r"truncated\.txt\.gz: not a readable gzip file"):
        materialize(local_params(corpus=["corpus/*"]), 0, out / "corpus", out / "ner")
    assert snapshot(out / "corpus") == corpus_before
    assert snapshot(out / "ner") == ner_before
    assert sorted(entry.name for entry in out.iterdir()) == ["corpus", "ner"]


def test_entity_type_missing_from_train_is_an_error(local_files: Path) -> None:
    (local_files / "ner" / "test.txt").write_text("Expo B-EVENT\n")
    with pytest.raises(ElectraError, match=r"ner/test.txt:1: sentence 1 \(token 'Expo'\) has entity type 'EVENT'"):
        materialize(local_params(), 0, Path("out/corpus"), Path("out/ner"))


# ------------------------------------------------------------------------------------------------ hf source
@pytest.fixture
def hf_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No network and a private cache, so the test neither downloads nor leaves files in the user's cache."""
    import datasets

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")


@pytest.fixture
def hf_folders(tmp_path: Path, hf_offline: None) -> Path:
    """A token-classification DatasetDict (IOB1 ClassLabel names) and a text dataset, as folders of parquet files."""
    from datasets import ClassLabel, Dataset, Features, List, Value

    features = Features(
        {"tokens": List(Value("string")), "ner_tags": List(ClassLabel(names=["O", "I-PER", "I-LOC", "B-LOC"]))}
    )
    rows = {
        "train": {
            "tokens": [["-DOCSTART-"], ["Ann", "Lee", "met", "Bob"], [], ["Rome", "Paris"]],
            "ner_tags": [[0], [1, 1, 0, 1], [], [2, 3]],
        },
        "validation": {"tokens": [["Oslo", "!"]], "ner_tags": [[2, 0]]},
        "test": {"tokens": [["Kim", "Oslo"]], "ner_tags": [[1, 2]]},
    }
    for split, columns in rows.items():
        Dataset.from_dict(columns, features=features).to_parquet(tmp_path / "ner" / f"{split}.parquet")
    text = ["", " = Title = ", " First paragraph . ", "", " Second article . "]
    Dataset.from_dict({"text": text}).to_parquet(tmp_path / "text" / "train.parquet")
    return tmp_path


def hf_params(root: Path, max_corpus_lines: int | None = None, **ner: Any) -> Params:
    return yaml_params({
        "data.source": "hf",
        "data.hf.corpus": {"path": str(root / "text"), "name": None, "split": "train", "text_column": "text"},
        "data.hf.max_corpus_lines": max_corpus_lines,
        "ner.hf.path": str(root / "ner"),
        "ner.hf.name": None,
        **{f"ner.hf.{key}": value for key, value in ner.items()},
    })


def test_hf_source_reads_parquet_folders_with_class_labels(hf_folders: Path) -> None:
    out = hf_folders / "out"
    summary = materialize(hf_params(hf_folders), 0, out / "corpus", out / "ner")
    assert read_corpus(out / "corpus") == "= Title =\nFirst paragraph .\n\nSecond article .\n"
    assert (
        out / "ner" / "train.txt"
    ).read_text() == "Ann B-PER\nLee I-PER\nmet O\nBob B-PER\n\nRome B-LOC\nParis B-LOC\n\n"
    assert summary["ner"]["test"]["entities"] == {"LOC": 1, "PER": 1}
    assert summary["ner"]["valid"]["origin"].endswith("split 'validation'")


def test_hf_max_corpus_lines_limits_the_corpus(hf_folders: Path) -> None:
    summary = materialize(
        hf_params(hf_folders, max_corpus_lines=3), 0, hf_folders / "out" / "corpus", hf_folders / "out" / "ner"
    )
    assert summary["corpus"]["lines"] == 2


def test_hf_missing_column_names_the_key_and_the_columns(hf_folders: Path) -> None:
    with pytest.raises(
        ElectraError, match=r"ner.hf.tags_column: no column 'labels'; the dataset has \['tokens', 'ner_tags'\]"
    ):
        materialize(hf_params(hf_folders, tags_column="labels"), 0, hf_folders / "c", hf_folders / "n")


def test_hf_unknown_split_names_the_key(hf_folders: Path) -> None:
    with pytest.raises(ElectraError, match=r"ner.hf: cannot load .* split 'dev'"):
        materialize(
            hf_params(hf_folders, splits={"train": "train", "valid": "dev", "test": "test"}),
            0,
            hf_folders / "c",
            hf_folders / "n",
        )


# ----------------------------------------------------------------------------------------------- url source
class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output clean."""


@pytest.fixture
def server_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    """A real HTTP server on loopback serving a temporary folder."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def serve(root: Path, name: str, payload: bytes) -> str:
    (root / name).write_bytes(payload)
    return hashlib.sha256(payload).hexdigest()


def url_params(root: Path, base: str) -> Params:
    files = {
        "corpus.txt.gz": gzip.compress(CORPUS_B.encode()),
        "train.txt": TRAIN.encode(),
        "valid.txt.gz": gzip.compress(VALID.encode()),
        "test.txt": TEST.encode(),
    }
    remote = {name: {"url": f"{base}/{name}", "sha256": serve(root, name, payload)} for name, payload in files.items()}
    return yaml_params({
        "data.source": "url",
        "data.url.corpus": [remote["corpus.txt.gz"]],
        "ner.url": {"train": remote["train.txt"], "valid": remote["valid.txt.gz"], "test": remote["test.txt"]},
    })


def test_url_source_downloads_verifies_and_caches(tmp_path: Path, server_root: tuple[Path, str]) -> None:
    root, base = server_root
    params, cache = url_params(root, base), tmp_path / "cache"
    summary = materialize(params, 0, tmp_path / "corpus", tmp_path / "ner", cache_dir=cache)
    assert read_corpus(tmp_path / "corpus") == "A gzip document.\n"
    assert summary["ner"]["train"]["entities"] == {"LOC": 1, "MISC": 1, "ORG": 1, "PER": 1}
    assert (cache / params.ner.url.train.sha256 / "train.txt").read_bytes() == TRAIN.encode()
    for served in root.iterdir():
        served.unlink()
    materialize(params, 0, tmp_path / "corpus2", tmp_path / "ner2", cache_dir=cache)
    assert snapshot(tmp_path / "ner2") == snapshot(tmp_path / "ner")


def test_url_checksum_mismatch_is_refused_and_not_cached(tmp_path: Path, server_root: tuple[Path, str]) -> None:
    root, base = server_root
    params = url_params(root, base)
    actual = serve(root, "train.txt", b"tampered O\n")
    cache = tmp_path / "cache"
    with pytest.raises(ElectraError) as error:
        materialize(params, 0, tmp_path / "corpus", tmp_path / "ner", cache_dir=cache)
    message = str(error.value)
    assert f"{base}/train.txt" in message and actual in message and params.ner.url.train.sha256 in message
    assert "update ner.url.train.sha256" in message
    assert not list(cache.rglob("train.txt*"))


def test_url_not_found_names_the_key(tmp_path: Path, server_root: tuple[Path, str]) -> None:
    root, base = server_root
    params = url_params(root, base)
    (root / "test.txt").unlink()
    with pytest.raises(ElectraError, match=rf"ner.url.test.url: {base}/test.txt answered HTTP 404"):
        materialize(params, 0, tmp_path / "corpus", tmp_path / "ner", cache_dir=tmp_path / "cache")
