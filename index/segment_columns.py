"""The ids and metadata of a keyword segment's chunks as columns, saved beside its records file.

Every chunk of an article repeats the article's title, outlet, url and date: those values are
held once per article, and the few that differ per chunk (its number, offsets, tokens) once
per chunk, as numpy arrays where they are integers. A chunk's metadata dict is made when it is
asked for; a pass over every chunk reads one column (`column`) and makes no dict at all.

Loading a segment of a million chunks reads this file (a pickle of lists and arrays) instead
of parsing every line of the records file: seconds, not a minute, and no dict per chunk held."""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

_VERSION = 1
SUFFIX = ".columns.pkl"


def columns_path(records_file: Path) -> Path:
    """Where a segment's columns are saved: beside its records file, with the same stem."""
    return records_file.with_name(records_file.stem + SUFFIX)


class SegmentColumns:
    """Ids and metadata of a segment's chunks, article-level values held once per article."""

    def __init__(
        self,
        ids: list[str],
        orders: list[tuple[str, ...]],
        order_of: np.ndarray,
        articles: list[dict[str, Any]],
        article_of: np.ndarray,
        own: dict[str, Any],
    ) -> None:
        self.ids = ids
        self.orders = orders  # the distinct key orders of the chunks' metadata
        self.order_of = order_of  # (chunks,) index into `orders`
        self.articles = articles  # values that are the same on every chunk of an article
        self.article_of = article_of  # (chunks,) index into `articles`
        self.own = own  # key -> one value per chunk (a list, or an int64 array)
        self.hash_total: int | None = None  # the fingerprint share of every chunk, when known
        # (chunks + 1,) where each chunk's line starts in the records file, and where it ends
        self.offsets = np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def of(cls, ids: Sequence[str], metadatas: Sequence[dict[str, Any]]) -> SegmentColumns:
        """The columns of these chunks (one metadata dict each, in the same order)."""
        groups: dict[Any, int] = {}
        firsts: list[dict[str, Any]] = []
        article_of = np.zeros(len(ids), dtype=np.int32)
        varying: set[str] = set()
        for row, meta in enumerate(metadatas):
            key = meta.get("article_id", ("row", row))
            at = groups.setdefault(key if isinstance(key, str) else repr(key), len(firsts))
            if at == len(firsts):
                firsts.append(meta)
            article_of[row] = at
            first = firsts[at]
            if first is not meta:
                varying.update(k for k in meta.keys() ^ first.keys())
                varying.update(k for k, v in meta.items() if not _same(first.get(k), v))
        pool: dict[tuple[type, Any], Any] = {}
        articles = [
            {_pooled(k, pool): _pooled(v, pool) for k, v in first.items() if k not in varying}
            for first in firsts
        ]
        order_index: dict[tuple[str, ...], int] = {}
        order_of = np.array(
            [order_index.setdefault(tuple(m), len(order_index)) for m in metadatas],
            dtype=np.int16 if len(metadatas) < 2**15 else np.int32,
        )
        orders = [tuple(_pooled(k, pool) for k in order) for order in order_index]
        own = {k: _column([m.get(k) for m in metadatas], pool) for k in sorted(varying)}
        return cls(list(ids), orders, order_of, articles, article_of, own)

    def metadata(self, row: int) -> dict[str, Any]:
        """The chunk's metadata dict, keys in the order they were given (a new dict)."""
        article = self.articles[int(self.article_of[row])]
        own = self.own
        out: dict[str, Any] = {}
        for key in self.orders[int(self.order_of[row])]:
            if key in article:
                out[key] = article[key]
            else:
                value = own[key][row]
                out[key] = value.item() if isinstance(value, np.generic) else value
        return out

    def column(self, key: str) -> list[Any]:
        """Every chunk's value for `key` (None where it has none), as `metadata().get` gives."""
        if key in self.own:
            values = self.own[key]
            return values.tolist() if isinstance(values, np.ndarray) else list(values)
        table = [article.get(key) for article in self.articles]
        return [table[i] for i in self.article_of.tolist()]

    def save(self, path: Path, records_size: int) -> None:
        """Write atomically (a temporary file renamed): several readers may write it at once."""
        state = {
            "version": _VERSION,
            "records_size": records_size,
            "ids": self.ids,
            "orders": self.orders,
            "order_of": self.order_of,
            "articles": self.articles,
            "article_of": self.article_of,
            "own": self.own,
            "hash_total": self.hash_total,
            "offsets": self.offsets,
        }
        partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        with partial.open("wb") as out:
            pickle.dump(state, out, protocol=pickle.HIGHEST_PROTOCOL)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)

    @classmethod
    def load(cls, path: Path, records_size: int, count: int | None) -> SegmentColumns | None:
        """The saved columns, if they were saved for a records file of this size (and of
        `count` chunks, when given); None when there are none, or of another version."""
        try:
            with path.open("rb") as handle:
                state = pickle.load(handle)
        except FileNotFoundError:
            return None
        if (
            not isinstance(state, dict)
            or state.get("version") != _VERSION
            or state.get("records_size") != records_size
            or (count is not None and len(state["ids"]) != count)
        ):
            return None
        columns = cls(
            state["ids"],
            state["orders"],
            state["order_of"],
            state["articles"],
            state["article_of"],
            state["own"],
        )
        columns.hash_total = state["hash_total"]
        columns.offsets = state["offsets"]
        return columns


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _pooled(value: Any, pool: dict[tuple[type, Any], Any]) -> Any:
    """One object for equal strings and numbers across the segment."""
    if isinstance(value, str | int | float):
        return pool.setdefault((type(value), value), value)
    return value


def _column(values: list[Any], pool: dict[tuple[type, Any], Any]) -> Any:
    """Integers as an int64 array (their dicts give Python ints back); others a list."""
    if values and all(type(v) is int for v in values) and all(-(2**62) < v < 2**62 for v in values):
        return np.asarray(values, dtype=np.int64)
    return [_pooled(v, pool) for v in values]
