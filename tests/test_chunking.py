"""Sentence splitting and chunking, counted with the real model's tokenizer."""

from __future__ import annotations

import itertools
from typing import Any

from index.chunking import chunk_text, split_sentences

from .conftest import TASS


def test_sentences_keep_abbreviations_and_quotes() -> None:
    text = 'Mr. Smith met Dr. J. Doe in the U.S. capital. "We agree," he said. Next one?  Yes!'
    sentences = [text[s.start : s.end] for s in split_sentences(text)]
    assert sentences == [
        "Mr. Smith met Dr. J. Doe in the U.S. capital.",
        '"We agree," he said.',
        "Next one?",
        "Yes!",
    ]


def test_paragraph_break_ends_a_sentence() -> None:
    text = "Diplomatic track\n\nIf Washington wants to talk, it can."
    sentences = [text[s.start : s.end] for s in split_sentences(text)]
    assert sentences == ["Diplomatic track", "If Washington wants to talk, it can."]


def test_chunks_respect_the_wordpiece_limit_and_offsets(embedder: Any) -> None:
    text = TASS.read_text()
    chunks = chunk_text(text, count_tokens=embedder.count_tokens, max_tokens=120, overlap_tokens=30)
    assert len(chunks) > 5
    for chunk in chunks:
        assert chunk.text == text[chunk.start : chunk.end]
        assert embedder.count_tokens([chunk.text])[0] <= 120 + 2  # joins may merge a piece
    # every sentence is in some chunk, and consecutive chunks overlap
    covered = " ".join(c.text for c in chunks)
    assert "verbal pledges in the 1990s not to expand NATO" in covered
    assert any(b.start < a.end for a, b in itertools.pairwise(chunks))
    assert chunks[-1].end == len(text.rstrip())


def test_a_sentence_longer_than_the_limit_is_cut_at_word_breaks(embedder: Any) -> None:
    text = " ".join(["word"] * 600) + "."
    chunks = chunk_text(text, count_tokens=embedder.count_tokens, max_tokens=100, overlap_tokens=0)
    assert len(chunks) >= 6
    assert all(c.tokens <= 100 for c in chunks)
    assert "".join(c.text for c in chunks).replace(" ", "") == text.replace(" ", "")
