"""WordpieceCounter against the bundled model's tokenizer: the same counts, always."""

from __future__ import annotations

import json
import threading
import unicodedata
from collections.abc import Sequence
from typing import Any

import pytest

from index.chunking import split_sentences
from index.wordpieces import WordpieceCounter, python_whitespace

from .conftest import REPO, TASS

# Characters Python splits on that the tokenizer deletes (control characters).
DELETED_SPACES = "\x0b\x0c\x1c\x1d\x1e\x1f\x85"
CONTEXTS = ("a{c}b", "x {c} y", "{c}", "the{c}cat", "1{c}2{c}3", "[SEP]{c}[UNK]", "é{c}\u0301a")
MIXED = [
    "Café résumé naïve Ångström façade e\u0301e\u0301 ﬁnancial İstanbul Straße ΣΟΦΟΣ",
    "東京で会議が開かれた。北京 上海 서울 ภาษาไทย العربية עברית हिन्दी",
    "👍🏽 👨\u200d👩\u200d👧 🇺🇸 😀😀 €5 £3 ¥9 ½ … — “quoted” «guillemets»",
    "12345678901234567890 3.14159265358979 1,000,000,000 $4.5bn 2023-10-07T15:37:43+00:00",
    "https://www.example.com/path/to/page?query=1&b=2#frag mailto:someone@example.org",
    "a" * 150 + " " + "x" * 99 + " " + "word" * 30 + "." + " ,,,," * 40,
    "[SEP] [UNK] [CLS]x[MASK] [sep] [PAD][PAD] soft\u00adhyphen zero\u200bwidth bom\ufeff nul\x00",
    "",
    " ",
    "\t\n\r  \u3000\u2028\u2029\xa0",
]


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from transformers import AutoTokenizer

    from index.embedding import bundled_model_path

    return AutoTokenizer.from_pretrained(bundled_model_path(), local_files_only=True)


def reference(tokenizer: Any, texts: Sequence[str]) -> list[int]:
    """What Embedder.count_tokens gave before: the tokenizer on each whole text."""
    return [len(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]


def corpus_sample() -> list[str]:
    articles = json.loads((REPO / "data" / "multihop-rag" / "corpus.json").read_text())
    bodies = [a["body"] for a in articles[:25]] + [TASS.read_text()]
    sentences = [b[s.start : s.end] for b in bodies for s in split_sentences(b)]
    return sentences + bodies + [a["title"] for a in articles[:100]]


def odd_characters() -> list[str]:
    """Every character Python splits on, and every control, format and separator one."""
    kinds = {"Cc", "Cf", "Zs", "Zl", "Zp"}
    return [c for c in map(chr, range(0x110000)) if c.isspace() or unicodedata.category(c) in kinds]


def test_counts_a_corpus_sample_as_the_tokenizer_does(tokenizer: Any) -> None:
    texts = corpus_sample()
    expected = reference(tokenizer, texts)
    counter = WordpieceCounter(tokenizer)
    assert counter.by_pieces
    batches = [texts[i : i + 40] for i in range(0, len(texts), 40)]
    cold = [n for batch in batches for n in counter.count(batch)]
    assert len(counter) > 1000  # the pieces are remembered
    warm = [n for batch in batches for n in counter.count(batch)]
    assert cold == expected
    assert warm == expected


def test_the_models_own_tokenizer_json_counts_as_transformers_does(tokenizer: Any) -> None:
    """The embedder counts with the `tokenizers` tokenizer of the model's tokenizer.json (no
    transformers import in an app that only answers): the same counts as transformers'."""
    from index.config import IndexSettings
    from index.embedding import Embedder

    embedder = Embedder(IndexSettings(embedding_device="cpu"))
    texts = corpus_sample() + MIXED + [c.format(c=" \x0b\x85") for c in CONTEXTS]
    assert embedder.wordpieces.tokenizer is embedder.fast_tokenizer
    assert embedder.count_tokens(texts) == reference(tokenizer, texts)
    assert "tokenizer" not in embedder.__dict__  # transformers' was never loaded


def test_odd_characters_and_scripts_count_as_the_tokenizer_does(tokenizer: Any) -> None:
    texts = [context.format(c=c) for c in odd_characters() for context in CONTEXTS]
    texts += MIXED
    assert WordpieceCounter(tokenizer).count(texts) == reference(tokenizer, texts)


def test_texts_with_deleted_spaces_are_counted_whole(tokenizer: Any) -> None:
    normalize = tokenizer.backend_tokenizer.normalizer.normalize_str
    assert "".join(c for c in python_whitespace() if normalize(c) != " ") == DELETED_SPACES
    texts = [f"a{c}b" for c in DELETED_SPACES]
    expected = reference(tokenizer, texts)
    assert expected == [1] * len(texts)  # the tokenizer reads "ab"
    naive = WordpieceCounter(tokenizer)
    naive._unsafe = None  # summing the pieces: "a" + "b"
    assert naive.count(texts) == [2] * len(texts)
    counter = WordpieceCounter(tokenizer)
    assert counter.count(texts) == expected
    assert len(counter) == 0  # counted whole: no piece remembered
    mixed = ["plain words here", "a\x1cb", "more plain words"]
    assert counter.count(mixed) == reference(tokenizer, mixed)


def test_memory_is_bounded_and_counts_stay_right(tokenizer: Any) -> None:
    counter = WordpieceCounter(tokenizer, max_cached=50)
    texts = [f"word{i} item{i * 7} x{i}y" for i in range(200)] + ["z" * 300]
    expected = reference(tokenizer, texts)
    for start in range(0, len(texts), 10):
        assert counter.count(texts[start : start + 10]) == expected[start : start + 10]
        assert len(counter) <= 50
    assert counter.count(["z" * 300]) == expected[-1:]
    assert "z" * 300 not in counter._cache  # too long to remember


def test_threads_sharing_a_small_memory_get_right_counts(tokenizer: Any) -> None:
    texts = [f"{w}{i % 37} and {w.upper()}, again {i}" for i in range(300) for w in ("ab", "Zé")]
    expected = reference(tokenizer, texts)
    counter = WordpieceCounter(tokenizer, max_cached=40)
    wrong: list[int] = []

    def work(offset: int) -> None:
        for start in range(offset, len(texts), 15):
            got = counter.count(texts[start : start + 15])
            wrong.extend(i for i, n in enumerate(got, start) if n != expected[i])

    threads = [threading.Thread(target=work, args=(k * 5,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not wrong


def test_empty_input_and_other_tokenizers(tokenizer: Any) -> None:
    assert WordpieceCounter(tokenizer).count([]) == []
    assert WordpieceCounter(tokenizer).count(["", " \n "]) == [0, 0]

    class Characters:  # no Rust backend: counted by calling it, as before
        def __call__(self, texts: list[str], add_special_tokens: bool) -> dict[str, Any]:
            return {"input_ids": [list(t) for t in texts]}

    other = WordpieceCounter(Characters())  # type: ignore[arg-type]
    assert not other.by_pieces
    assert other.count(["abc", "de f"]) == [3, 4]


def test_python_whitespace_is_what_split_splits_on() -> None:
    spaces = python_whitespace()
    assert all(c in spaces for c in " \t\n\xa0\u3000\x1c\x85")
    assert all(f"a{c}b".split() == ["a", "b"] for c in spaces)
