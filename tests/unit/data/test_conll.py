"""CoNLL reading and writing: the file variants we accept, the IOB1->IOB2 conversion, and the errors users see."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from seqeval.metrics.sequence_labeling import get_entities

from electra_model.tasks.ner.conll import (
    Sentence,
    check_labels_known,
    count_entities,
    detect_scheme,
    read_conll,
    to_iob2,
    write_conll,
)
from electra_model.errors import ElectraError

CONLL2003 = Path(__file__).resolve().parents[4] / "shared" / "data" / "conll2003"


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


def test_two_column_iob2(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", "John B-PER\nSmith I-PER\nran O\n\nParis B-LOC\n")
    assert read_conll(path) == [
        Sentence(("John", "Smith", "ran"), ("B-PER", "I-PER", "O")),
        Sentence(("Paris",), ("B-LOC",)),
    ]


def test_four_columns_docstart_tabs_and_crlf(tmp_path: Path) -> None:
    text = (
        "-DOCSTART- -X- O O\r\n\r\n"
        "EU\tNNP\tI-NP\tI-ORG\r\nrejects VBZ  I-VP O\r\n\r\n\r\n"
        "-DOCSTART- -X- -X- O\r\nBonn NNP I-NP I-LOC\r\n"
    )
    path = write(tmp_path / "a.txt", text)
    assert read_conll(path) == [Sentence(("EU", "rejects"), ("B-ORG", "O")), Sentence(("Bonn",), ("B-LOC",))]


def test_gzip_input(tmp_path: Path) -> None:
    path = tmp_path / "a.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("Zürich I-LOC\n")
    assert read_conll(path) == [Sentence(("Zürich",), ("B-LOC",))]


@pytest.mark.parametrize(
    ("iob1", "iob2"),
    [
        (("I-PER", "I-PER", "B-PER"), ("B-PER", "I-PER", "B-PER")),
        (("O", "I-LOC"), ("O", "B-LOC")),
        (("I-ORG", "I-LOC", "I-LOC"), ("B-ORG", "B-LOC", "I-LOC")),
        (("B-MISC", "I-MISC", "O"), ("B-MISC", "I-MISC", "O")),
    ],
)
def test_to_iob2(iob1: tuple[str, ...], iob2: tuple[str, ...]) -> None:
    assert to_iob2(iob1) == iob2
    assert to_iob2(iob2) == iob2


def test_detect_scheme() -> None:
    iob2 = [Sentence(("a", "b"), ("B-PER", "I-PER"))]
    assert detect_scheme(iob2) == "iob2"
    iob1 = [Sentence(("a", "b", "c"), ("I-PER", "B-PER", "O")), Sentence(("c", "d"), ("O", "I-LOC"))]
    assert detect_scheme(iob1) == "iob1"


@pytest.mark.parametrize("mistake", [("O", "I-PER"), ("B-PER", "I-LOC")])
def test_auto_refuses_iob2_with_mistakes_instead_of_reading_it_as_iob1(tmp_path: Path, mistake: tuple[str, str],
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    lines = "\n".join(f"w{i} {tag}" for i, tag in enumerate(mistake))
    path = write(tmp_path / "a.txt", f"John B-PER\nSmith I-PER\n\n{lines}\n")
    with pytest.raises(ElectraError, match=rf"{path}:5: tag 'I-\w+' opens an entity \(IOB1\), but {path}:1 opens "
                       r"one with 'B-PER' \(IOB2\).*valid in neither scheme.*ner.scheme: iob1"):
        read_conll(path, scheme="auto")
    assert [s.tags for s in read_conll(path, scheme="iob1")][1][-1].startswith("B-")  # asked for: converted


def test_auto_names_the_scheme_it_chose(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    read_conll(write(tmp_path / "a.txt", "Paris I-LOC\n"), scheme="auto")
    read_conll(write(tmp_path / "b.txt", "Paris B-LOC\n"), scheme="auto")
    assert capsys.readouterr().err.splitlines() == [
        f"{tmp_path / 'a.txt'}: IOB1 tags detected (ner.scheme: auto), written as IOB2",
        f"{tmp_path / 'b.txt'}: IOB2 tags detected (ner.scheme: auto), written as IOB2",
    ]


def test_a_byte_order_mark_inside_a_file_is_refused_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", "\ufeff-DOCSTART- O\n\nParis B-LOC\n\n\ufeff-DOCSTART- O\n\nRome B-LOC\n")
    with pytest.raises(ElectraError, match=rf"^{path}:5: a byte-order mark \(U\+FEFF\) inside the file"):
        read_conll(path)


def test_forced_iob1_converts_and_forced_iob2_refuses_iob1_tags(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", "x O\ny O\n\nParis I-LOC\n")
    assert read_conll(path, scheme="iob1")[1].tags == ("B-LOC",)
    with pytest.raises(ElectraError, match=rf"{path}:4: .*'I-LOC' opens an entity.*ner.scheme"):
        read_conll(path, scheme="iob2")


def test_forced_iob2_keeps_valid_iob2(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", "New B-LOC\nYork I-LOC\nLondon B-LOC\n")
    assert read_conll(path, scheme="iob2")[0].tags == ("B-LOC", "I-LOC", "B-LOC")


@pytest.mark.parametrize(
    ("text", "line", "complaint"),
    [
        (b"John B-PER\nlonely\n", 2, "only one column"),
        (b"John NNP I-NP B-PER\nran VBD O\n", 2, "3 columns, but line 1 has 4"),
        (b"John B-PER\n\nran X-VERB\n", 3, "'X-VERB' is not 'O', 'B-TYPE' or 'I-TYPE'"),
        (b"John S-PER\n", 1, "'S-PER'"),
        (b"ok O\nbad \xff O\n", 2, "not valid UTF-8"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path: Path, text: bytes, line: int, complaint: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(text)
    with pytest.raises(ElectraError) as error:
        read_conll(path)
    assert f"{path}:{line}:" in str(error.value)
    assert complaint in str(error.value)


@pytest.mark.parametrize("text", ["", "\n\n", "-DOCSTART- -X- O O\n\n"])
def test_empty_file_is_an_error(tmp_path: Path, text: str) -> None:
    path = write(tmp_path / "empty.txt", text)
    with pytest.raises(ElectraError, match=rf"{path}: no sentences"):
        read_conll(path)


def test_missing_and_broken_gzip_files(tmp_path: Path) -> None:
    with pytest.raises(ElectraError, match="file not found"):
        read_conll(tmp_path / "nope.txt")
    broken = write(tmp_path / "broken.txt.gz", "not gzip at all\n")
    with pytest.raises(ElectraError, match=rf"{broken}: not a readable gzip file"):
        read_conll(broken)


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    sentences = [Sentence(("New", "York", "is", "big"), ("B-LOC", "I-LOC", "O", "O")), Sentence(("Hi",), ("O",))]
    path = tmp_path / "out" / "train.txt"
    write_conll(path, sentences)
    assert path.read_text(encoding="utf-8") == "New B-LOC\nYork I-LOC\nis O\nbig O\n\nHi O\n\n"
    assert read_conll(path, scheme="iob2") == sentences
    assert [entry.name for entry in path.parent.iterdir()] == ["train.txt"]


def test_sentences_know_their_document_and_first_line(tmp_path: Path) -> None:
    text = "-DOCSTART- -X- O O\n\nEU I-ORG\nrejects O\n\nBonn I-LOC\n\n-DOCSTART- -X- O O\n\nParis I-LOC\n"
    sentences = read_conll(write(tmp_path / "a.txt", text))
    assert [(s.document, s.line) for s in sentences] == [(1, 3), (1, 6), (2, 10)]
    plain = read_conll(write(tmp_path / "b.txt", "a O\n\nb O\n"), scheme="iob2")
    assert [(s.document, s.line) for s in plain] == [(0, 1), (0, 3)]


@pytest.mark.parametrize("blank", ["", " ", "\t", " \t ", "\r"])
def test_blank_lines_with_whitespace_break_sentences(tmp_path: Path, blank: str) -> None:
    path = write(tmp_path / "a.txt", f"John B-PER\n{blank}\nParis \t B-LOC\t\n")
    assert read_conll(path) == [Sentence(("John",), ("B-PER",)), Sentence(("Paris",), ("B-LOC",))]


def test_two_column_docstart(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", "-DOCSTART- O\n\nJohn I-PER\n")
    assert read_conll(path) == [Sentence(("John",), ("B-PER",))]


def test_label_missing_from_training_names_file_and_line(tmp_path: Path) -> None:
    train = read_conll(write(tmp_path / "train.txt", "John B-PER\n"))
    path = write(tmp_path / "valid.txt", "-DOCSTART- O\n\nhello O\n\nthe O\nNew B-LOC\nYork I-LOC\n")
    with pytest.raises(ElectraError, match=rf"{path}:6: sentence 2 \(token 'New'\) has entity type 'LOC'.*PER"):
        check_labels_known(train, read_conll(path), path)


def test_unknown_entity_type_in_valid_is_named() -> None:
    train = [Sentence(("John",), ("B-PER",))]
    valid = [Sentence(("x",), ("O",)), Sentence(("Paris",), ("B-LOC",))]
    check_labels_known(train, train, "valid.txt")
    with pytest.raises(ElectraError, match=r"valid.txt: sentence 2 \(token 'Paris'\) has entity type 'LOC'.*PER"):
        check_labels_known(train, valid, "valid.txt")


def test_sentence_needs_one_tag_per_token() -> None:
    with pytest.raises(ValueError, match="one tag per token"):
        Sentence(("a", "b"), ("O",))


@pytest.mark.skipif(not CONLL2003.is_dir(), reason=f"{CONLL2003} not present")
def test_conll2003_entity_counts_after_iob2_conversion() -> None:
    expected = {  # from the data's SOURCE.md, conlleval-style chunking
        "train": (14041, {"PER": 6600, "LOC": 7140, "ORG": 6321, "MISC": 3438}),
        "valid": (3250, {"PER": 1842, "LOC": 1837, "ORG": 1341, "MISC": 922}),
        "test": (3453, {"PER": 1617, "LOC": 1668, "ORG": 1661, "MISC": 702}),
    }
    for split, (n_sentences, counts) in expected.items():
        sentences = read_conll(CONLL2003 / f"{split}.txt.gz")
        assert len(sentences) == n_sentences
        assert detect_scheme(sentences) == "iob2"
        assert count_entities(sentences) == dict(sorted(counts.items()))
        chunked = get_entities([list(sentence.tags) for sentence in sentences])
        assert len(chunked) == sum(counts.values())
