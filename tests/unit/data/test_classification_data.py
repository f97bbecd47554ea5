"""Classification data readers on small hand-made files (every format, pairs, each user error) and on the real
SST-2 files in ../shared/data/sst2 when they are there."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from electra_model.config import ClassificationParams
from electra_model.errors import ElectraError
from electra_model.tasks.classification.data import label_list, load_splits, read_file, read_hf_split
from tests.params import section

SST2 = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "sst2"


def write(path: Path, text: str) -> Path:
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def params(**overrides: object) -> ClassificationParams:
    return section("classification", **overrides)


def test_tsv_keeps_quotes_and_skips_blank_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "train.tsv.gz", 'label\tsentence\n1\t"quoted start but no end\n\n0\tplain text \n')
    examples = read_file(path, params())
    assert [(e.text, e.label, e.where) for e in examples] == [
        ('"quoted start but no end', "1", f"{path}:2"),
        ("plain text ", "0", f"{path}:4"),
    ]
    assert examples[0].pair is None


def test_csv_quoted_field_spanning_lines_is_reported_at_its_first_line(tmp_path: Path) -> None:
    path = write(tmp_path / "valid.csv", 'text,label\n"two\nlines, one text",pos\n"",neg\n')
    with pytest.raises(ElectraError, match=rf"{path}:4: the text in column 'text' is empty"):
        read_file(path, params(text_column="text"))
    write(path, 'text,label\n"two\nlines, one text",pos\nfine,neg\n')
    examples = read_file(path, params(text_column="text"))
    assert [(e.text, e.where) for e in examples] == [("two\nlines, one text", f"{path}:2"), ("fine", f"{path}:4")]


def test_jsonl_pairs_and_non_string_labels(tmp_path: Path) -> None:
    rows = [
        {"premise": "A man sleeps.", "hypothesis": "Nobody sleeps.", "y": 2},
        {"premise": "P", "hypothesis": "H", "y": 0},
    ]
    path = write(tmp_path / "train.jsonl", "\n".join(json.dumps(row) for row in rows) + "\n")
    examples = read_file(path, params(text_column="premise", text_pair_column="hypothesis", label_column="y"))
    assert [(e.text, e.pair, e.label) for e in examples] == [("A man sleeps.", "Nobody sleeps.", "2"), ("P", "H", "0")]


@pytest.mark.parametrize(
    ("name", "content", "overrides", "message"),
    [
        ("a.tsv", "label\ttext\n1\thi\n", {}, r"a.tsv:2: no column 'sentence' .*set classification.text_column"),
        ("b.tsv", "label\tsentence\n1\thi\n", {"text_pair_column": "other"},
         r"b.tsv:2: no column 'other' .*classification.text_pair_column"),
        ("c.jsonl", '{"sentence": "x", "label": 1}\n{"sentence": "y"}\n', {},
         r"c.jsonl:2: no column 'label' .*classification.label_column"),
        ("d.tsv", "label\tsentence\n1\thi\n0\t   \n", {}, r"d.tsv:3: the text in column 'sentence' is empty"),
        ("e.tsv", "label\tsentence\n\thi\n", {}, r"e.tsv:2: the label in column 'label' is empty"),
        ("f.tsv", "label\tsentence\n1\thi\tthere\n", {}, r"f.tsv:2: 3 fields but the header has 2"),
        ("g.jsonl", '{"sentence": "x", "label": 1}\n[1, 2]\n', {}, r"g.jsonl:2: a JSON list"),
        ("h.jsonl", '{"sentence": "x", \n', {}, r"h.jsonl:1: not valid JSON"),
        ("i.txt", "label\tsentence\n", {}, r"i.txt: cannot tell the format"),
        ("j.tsv", "label\tsentence\n", {}, r"j.tsv: no rows after the header"),
        ("k.csv", "", {}, r"k.csv: the file is empty"),
    ],
)
def test_user_errors_name_the_file_and_line(
    tmp_path: Path, name: str, content: str, overrides: dict, message: str
) -> None:
    with pytest.raises(ElectraError, match=message):
        read_file(write(tmp_path / name, content), params(**overrides))


def local_splits(tmp_path: Path, valid: str) -> ClassificationParams:
    write(tmp_path / "train.tsv", "label\tsentence\n10\ta\n2\tb\n10\tc\n")
    write(tmp_path / "valid.tsv", valid)
    write(tmp_path / "test.tsv", "label\tsentence\n2\td\n")
    paths = {split: str(tmp_path / f"{split}.tsv") for split in ("train", "valid", "test")}
    return params(local=paths)


def test_labels_inferred_from_train_sorted_by_value_and_unknown_ones_rejected(tmp_path: Path) -> None:
    config = local_splits(tmp_path, "label\tsentence\n2\tx\n")
    splits = load_splits(config, "local")
    assert label_list(config, splits["train"]) == ["2", "10"]
    assert [len(splits[split]) for split in ("train", "valid", "test")] == [3, 1, 1]

    config = local_splits(tmp_path, "label\tsentence\n2\tx\n7\ty\n")
    with pytest.raises(ElectraError, match=r"valid.tsv:3: label '7' is not among the labels \['2', '10'\] \(from "
                       r"the train split\)"):
        load_splits(config, "local")


def test_params_labels_fix_the_order_and_reject_train_strangers(tmp_path: Path) -> None:
    config = local_splits(tmp_path, "label\tsentence\n2\tx\n").model_copy(update={"labels": ["10", "2", "5"]})
    assert label_list(config, load_splits(config, "local")["train"]) == ["10", "2", "5"]
    config = config.model_copy(update={"labels": ["2", "5"]})
    with pytest.raises(ElectraError, match=r"train.tsv:2: label '10' .*\(from classification.labels\)"):
        load_splits(config, "local")


def test_a_typo_label_seen_once_in_train_is_refused_not_made_a_class(tmp_path: Path) -> None:
    rows = "".join(f"good {i}\tpositive\nbad {i}\tnegative\n" for i in range(10))
    train = write(tmp_path / "train.tsv", f"sentence\tlabel\n{rows}fine\tpostive\n")
    examples = read_file(train, params())
    with pytest.raises(ElectraError, match=rf"^{train}:22: label 'postive' occurs only here .*classification.labels"):
        label_list(params(), examples)
    listed = params().model_copy(update={"labels": ["negative", "positive", "postive"]})
    assert label_list(listed, examples) == ["negative", "positive", "postive"]  # declared: kept


def test_a_missing_split_path_names_its_key(tmp_path: Path) -> None:
    with pytest.raises(ElectraError, match=r"classification.local.train: .*nope.tsv.* is not a file"):
        load_splits(section("classification", **{"local.train": str(tmp_path / "nope.tsv")}), "local")


def test_one_label_in_train_is_not_a_classifier(tmp_path: Path) -> None:
    examples = read_file(write(tmp_path / "t.tsv", "label\tsentence\n1\ta\n1\tb\n"), params())
    with pytest.raises(ElectraError, match="1 distinct label"):
        label_list(params(), examples)


def test_hf_dataset_from_a_local_folder_names_classlabel_ids(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    features = datasets.Features(
        {"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=["negative", "positive"])}
    )
    folder = tmp_path / "sst"
    folder.mkdir()
    for split, rows in {"train": [("good", 1), ("bad", 0)], "validation": [("fine", 1)], "test": [("?", -1)]}.items():
        table = {"sentence": [text for text, _ in rows], "label": [label for _, label in rows]}
        datasets.Dataset.from_dict(table, features=features).to_parquet(str(folder / f"{split}.parquet"))
    config = section("classification", **{"hf.path": str(folder), "hf.name": None})
    assert [(e.text, e.label, e.where) for e in read_hf_split(config, "train")] == [
        ("good", "positive", f"{folder} split 'train' row 0"),
        ("bad", "negative", f"{folder} split 'train' row 1"),
    ]
    with pytest.raises(ElectraError, match=r"split 'test' row 0: label id -1 means unlabelled"):
        read_hf_split(config, "test")
    with pytest.raises(ElectraError, match=r"no column 'text'; the dataset has \['sentence', 'label'\]"):
        read_hf_split(config.model_copy(update={"text_column": "text"}), "train")


@pytest.mark.skipif(not (SST2 / "dev.tsv.gz").is_file(), reason="../shared/data/sst2 is not on this machine")
def test_sst2_files_read_as_the_source_describes() -> None:
    config = params(local={"train": str(SST2 / "train.tsv.gz"), "valid": str(SST2 / "dev.tsv.gz"),
                           "test": str(SST2 / "dev.tsv.gz")})
    splits = load_splits(config, "local")
    assert len(splits["train"]) == 67_349 and len(splits["valid"]) == 872
    assert label_list(config, splits["train"]) == ["0", "1"]
    dev_counts = {label: sum(e.label == label for e in splits["valid"]) for label in ("0", "1")}
    assert dev_counts == {"0": 428, "1": 444}
    assert splits["valid"][0].where.endswith("dev.tsv.gz:2")


@pytest.mark.parametrize("labels", [["pos"], ["pos", "neg", "pos"]])
def test_params_labels_need_two_distinct(labels: list[str]) -> None:
    with pytest.raises(ElectraError, match=r"classification.labels = .*at least two distinct labels"):
        params(labels=labels)
