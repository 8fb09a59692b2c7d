"""Exact wordpiece counts, fast: a text's count is the sum of its words' counts, and words repeat.

BERT's tokenizer (normalizer: clean text, accents, lower case; pre-tokenizer: white space, then
punctuation; WordPiece within each word) never looks across white space, so the count of a text
is the sum of the counts of its `str.split()` pieces wherever Python and the tokenizer agree on
what white space is. They disagree on a few characters that Python splits on and the tokenizer
deletes as control characters (for all-MiniLM-L6-v2: \\v \\f \\x1c-\\x1f \\x85); a text holding
one of them is counted whole. Pieces are counted once, by the real tokenizer, and remembered.

Per sentence of MultiHop-RAG news (counted an article at a time): the tokenizer on the whole
sentence about 85 µs; from remembered pieces about 7 µs; a piece not yet seen costs about 7 µs
more. A piece is remembered only when it is short; the memory starts afresh when full."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerBase

MAX_CACHED = 300_000  # pieces remembered before the memory starts afresh (news: about 30 MB)
LONGEST_CACHED = 200  # characters: longer pieces (data, runs of symbols) are counted each time


@cache
def python_whitespace() -> str:
    """Every character `str.split()` splits on."""
    return "".join(c for c in map(chr, range(0x110000)) if c.isspace())


class WordpieceCounter:
    """`count(texts)`: each text's wordpieces without special tokens, as
    `tokenizer(texts, add_special_tokens=False)` gives them, for any tokenizer; for a BERT
    WordPiece one, from remembered word counts. Safe to share between threads."""

    def __init__(
        self, tokenizer: PreTrainedTokenizerBase | Tokenizer, max_cached: int = MAX_CACHED
    ) -> None:
        """`tokenizer`: transformers' or a `tokenizers` one (a BERT WordPiece one only: it
        counts by pieces)."""
        self.tokenizer = tokenizer
        self.max_cached = max_cached
        self._cache: dict[str, int] = {}
        self._backend = private_backend(tokenizer)
        self._unsafe = None if self._backend is None else unsafe_pattern(self._backend)

    def __len__(self) -> int:
        """Pieces remembered."""
        return len(self._cache)

    @property
    def by_pieces(self) -> bool:
        """Whether texts are counted from their pieces (else whole, by the tokenizer)."""
        return self._backend is not None

    def count(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        if self._backend is None:
            assert callable(self.tokenizer), "a tokenizers one that does not count by pieces"
            encoded = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
            return [len(ids) for ids in encoded]
        if self._unsafe is None or self._unsafe("".join(texts)) is None:
            lookup = self._cache.__getitem__
            try:
                return [sum(map(lookup, text.split())) for text in texts]
            except KeyError:
                pass  # a piece not yet counted
        return self._count_new(texts)

    def _count_new(self, texts: Sequence[str]) -> list[int]:
        """One tokenizer pass over the pieces not yet counted and the texts that must be
        counted whole; the pieces are remembered."""
        remembered = self._cache
        unsafe = self._unsafe
        known: dict[str, int] = {}  # this call's pieces: another thread may clear the memory
        missing: list[str] = []
        whole: list[int] = []
        split: list[list[str] | None] = []
        for i, text in enumerate(texts):
            if unsafe is not None and unsafe(text) is not None:
                whole.append(i)
                split.append(None)
                continue
            pieces = text.split()
            split.append(pieces)
            for piece in pieces:
                if piece not in known:
                    found = remembered.get(piece)
                    if found is None:
                        missing.append(piece)
                    known[piece] = -1 if found is None else found
        lengths = self._encode_lengths([*missing, *(texts[i] for i in whole)])
        known.update(zip(missing, lengths, strict=False))
        counted_whole = dict(zip(whole, lengths[len(missing) :], strict=True))
        self._remember(missing, lengths)
        return [
            counted_whole[i] if pieces is None else sum(map(known.__getitem__, pieces))
            for i, pieces in enumerate(split)
        ]

    def _encode_lengths(self, texts: list[str]) -> list[int]:
        assert self._backend is not None
        if not texts:
            return []
        return [len(e) for e in self._backend.encode_batch_fast(texts, add_special_tokens=False)]

    def _remember(self, pieces: list[str], lengths: list[int]) -> None:
        fresh = {p: n for p, n in zip(pieces, lengths, strict=False) if len(p) <= LONGEST_CACHED}
        if len(self._cache) + len(fresh) > self.max_cached:
            self._cache = {}  # a new dict: a thread reading the old one still reads right counts
        self._cache.update(fresh)


def private_backend(tokenizer: Any) -> Tokenizer | None:
    """A copy of a fast BERT WordPiece tokenizer's Rust backend, set as `tokenizer(...,
    add_special_tokens=False)` sets it (no truncation, no padding) and used by no one else: the
    shared one's settings change under every call (an ONNX embed pads and truncates). None for
    a tokenizer whose counts do not add up over white space."""
    from tokenizers import Tokenizer

    # transformers' fast tokenizer wraps one; the model's tokenizer.json loaded is one
    backend = tokenizer if isinstance(tokenizer, Tokenizer) else None
    backend = getattr(tokenizer, "backend_tokenizer", backend)
    if backend is None:
        return None
    config = json.loads(backend.to_str())
    kinds = [(config.get(part) or {}).get("type") for part in ("normalizer", "pre_tokenizer")]
    if kinds != ["BertNormalizer", "BertPreTokenizer"] or config["model"]["type"] != "WordPiece":
        return None
    for token in config.get("added_tokens", []):
        if token["lstrip"] or token["rstrip"] or token["single_word"] or not token["content"]:
            return None
        if any(c.isspace() for c in token["content"]):
            return None
    private: Tokenizer = Tokenizer.from_str(backend.to_str())
    private.no_truncation()
    private.no_padding()
    private.encode_special_tokens = bool(getattr(tokenizer, "split_special_tokens", False))
    return private


def unsafe_pattern(backend: Tokenizer) -> Any:
    """`search` of a pattern matching the characters `str.split()` splits on that the
    tokenizer's normalizer does not turn into a plain space; None when there are none."""
    normalizer = backend.normalizer
    assert normalizer is not None
    unsafe = [c for c in python_whitespace() if normalizer.normalize_str(c) != " "]
    if not unsafe:
        return None
    return re.compile("[" + "".join(re.escape(c) for c in unsafe) + "]").search
