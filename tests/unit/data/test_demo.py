"""The generated demo data: reproducible from its seed, well-formed IOB2, and a task that needs generalisation."""

from __future__ import annotations

from pathlib import Path

from seqeval.metrics.sequence_labeling import get_entities

from electra_model.tasks.ner.conll import Sentence, count_entities, detect_scheme, read_conll, write_conll
from electra_model.data.demo import demo_corpus, derive_seed, detokenize
from electra_model.tasks.ner.data import demo_ner


def entity_strings(sentences: list[Sentence]) -> set[tuple[str, str]]:
    return {
        (label, " ".join(sentence.tokens[start : end + 1]))
        for sentence in sentences
        for label, start, end in get_entities(list(sentence.tags))
    }


def test_same_seed_same_data_and_different_seed_different_data() -> None:
    assert demo_ner(50, seed=7) == demo_ner(50, seed=7)
    assert demo_corpus(5, seed=7) == demo_corpus(5, seed=7)
    assert demo_ner(50, seed=7) != demo_ner(50, seed=8)
    assert demo_corpus(5, seed=7) != demo_corpus(5, seed=8)


def test_derived_seeds_differ_per_purpose_and_are_stable() -> None:
    seeds = {derive_seed(1234, purpose) for purpose in ("corpus", "train", "valid", "test")}
    assert len(seeds) == 4
    assert derive_seed(1234, "train") == derive_seed(1234, "train")


def test_ner_sentences_are_iob2_with_all_four_types_of_one_to_three_words(tmp_path: Path) -> None:
    sentences = demo_ner(400, seed=1)
    counts = count_entities(sentences)
    assert set(counts) == {"PER", "LOC", "ORG", "MISC"}
    assert min(counts.values()) >= 40
    assert detect_scheme(sentences) == "iob2"
    lengths = {end - start + 1 for sentence in sentences for _, start, end in get_entities(list(sentence.tags))}
    assert lengths == {1, 2, 3}
    assert sum(counts.values()) / len(sentences) > 1.5
    assert any(set(sentence.tags) == {"O"} for sentence in sentences)
    write_conll(tmp_path / "train.txt", sentences)
    assert read_conll(tmp_path / "train.txt", scheme="iob2") == sentences


def test_test_split_holds_names_never_seen_in_train() -> None:
    train = entity_strings(demo_ner(1500, derive_seed(1234, "train")))
    test = entity_strings(demo_ner(300, derive_seed(1234, "test")))
    unseen = test - train
    assert len(unseen) / len(test) > 0.2
    assert {label for label, _ in unseen} >= {"PER", "ORG"}


def test_sentences_start_with_capitalised_words_that_are_not_entities() -> None:
    sentences = demo_ner(300, seed=3)
    starts = [sentence for sentence in sentences if sentence.tokens[0][0].isupper() and sentence.tags[0] == "O"]
    assert len(starts) > 50
    ambiguous = {"Jordan", "Washington", "Reading"}
    labels = {
        tag[2:] if tag != "O" else "O"
        for sentence in demo_ner(3000, seed=3)
        for token, tag in zip(sentence.tokens, sentence.tags, strict=True)
        if token in ambiguous
    }
    assert {"PER", "LOC", "O"} <= labels


def test_corpus_size_and_shape() -> None:
    documents = demo_corpus(400, seed=derive_seed(1234, "corpus"))
    assert 200_000 <= sum(map(len, documents)) <= 400_000
    assert all(2 <= len(document.split("\n")) <= 4 for document in documents)
    text = "\n".join(documents)
    assert " ." not in text and " ," not in text


def test_corpus_mentions_the_names_the_ner_task_uses() -> None:
    text = "\n".join(demo_corpus(400, seed=derive_seed(1234, "corpus")))
    names = {name for _, name in entity_strings(demo_ner(300, derive_seed(1234, "test")))}
    assert sum(name in text for name in names) / len(names) > 0.5


def test_detokenize() -> None:
    assert (
        detokenize(("Smith", "'s", "book", "(", "UK", ")", ",", "Workers", "'", "Party", "."))
        == "Smith's book (UK), Workers' Party."
    )
