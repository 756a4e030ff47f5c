"""The streaming sentence splitter."""

from __future__ import annotations

import pytest

from switchboard.providers.pipeline.sentences import SentenceSplitter, split_sentences


def stream(text: str, step: int, **kw: int) -> list[str]:
    splitter = SentenceSplitter(**kw)
    out: list[str] = []
    for i in range(0, len(text), step):
        out += splitter.push(text[i : i + step])
    return out + splitter.flush()


TEXT = 'Hello there! Mr. Smith paid $3.50 today. Is that ok? "Yes." J. R. Tolkien wrote it\nDone'
EXPECTED = [
    "Hello there!",
    "Mr. Smith paid $3.50 today.",
    "Is that ok?",
    '"Yes."',
    "J. R. Tolkien wrote it",
    "Done",
]


@pytest.mark.parametrize("step", [1, 3, 7, 1000])
def test_same_sentences_whatever_the_delta_size(step: int) -> None:
    assert stream(TEXT, step) == EXPECTED


def test_sentence_is_released_as_soon_as_whitespace_follows() -> None:
    splitter = SentenceSplitter()
    assert splitter.push("We open at nine.") == []  # could still be "nine.5"
    assert splitter.push(" We") == ["We open at nine."]
    assert splitter.pending == "We"


def test_run_on_text_is_cut_at_a_clause() -> None:
    long = "word, " * 60
    parts = split_sentences(long, max_chars=100)
    assert all(len(p) <= 100 for p in parts)
    assert " ".join(parts).split() == long.split()
    assert parts[0].endswith(",")


def test_min_chars_joins_short_sentences() -> None:
    assert stream("Hi. I am Ann. Welcome.", 1, min_chars=8) == ["Hi. I am Ann.", "Welcome."]


def test_ellipsis_and_question_marks() -> None:
    assert split_sentences("Well… let me see?! Sure.") == ["Well…", "let me see?!", "Sure."]


def test_bad_max_chars() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        SentenceSplitter(max_chars=5)


def test_a_long_first_sentence_goes_to_tts_after_its_first_clause() -> None:
    from switchboard.providers.pipeline.sentences import SentenceSplitter

    splitter = SentenceSplitter(first_clause_chars=20)
    text = "We're open Monday to Friday, nine to five, and Saturday from ten to two. Anything? "
    assert splitter.push(text) + splitter.flush() == [
        "We're open Monday to Friday,",
        "nine to five, and Saturday from ten to two.",
        "Anything?",
    ]
    short = SentenceSplitter(first_clause_chars=20)
    assert short.push("Hi there, Bob. How are you? ") == ["Hi there, Bob.", "How are you?"]
