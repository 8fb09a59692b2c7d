"""Immutable segments of the keyword index: BM25 postings (term -> chunk rows and term counts,
CSC by term) over a batch of chunks, and the arithmetic that scores across segments.

A segment never changes once made. The index is a main segment and small delta segments on
top; a later segment supersedes an earlier one's chunk of the same id, and a delta's `deletes`
remove chunks of earlier segments (tombstones). Merging folds them into one segment again."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import struct
import uuid
import weakref
import zipfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from index.keyword_text import ChunkRecord, keyword_text, keyword_tokens, metadata_column
from index.segment_columns import SegmentColumns, columns_path
from index.segment_vectors import (
    HeldVectors,
    MergedVectors,
    SavedVectors,
    VectorRows,
    read_npy_header,
    save_vectors,
    vectors_path,
)

# A segment's files, in the order a search reads them most scattered (Segment.files).
VECTORS, POSTINGS, RECORDS = 0, 1, 2
K1, B = 1.5, 0.75  # BM25 (Lucene idf, Robertson tf), as bm25s computed them before
_FP_MODULUS = 1 << 160
_DECODER = json.JSONDecoder()


def chunk_hash(chunk_id: str, metadata: dict[str, Any]) -> int:
    """One chunk's share of a fingerprint: its id and article version."""
    text = f"{chunk_id}\x1f{metadata.get('article_hash', '')}"
    return int.from_bytes(hashlib.sha1(text.encode()).digest(), "big")


def fingerprint_value(ids: Sequence[str], metadatas: Sequence[dict[str, Any]]) -> int:
    total = 0
    for chunk_id, meta in zip(ids, metadatas, strict=True):
        total += chunk_hash(chunk_id, meta)
    return total % _FP_MODULUS


def fingerprint_hex(value: int) -> str:
    return f"{value % _FP_MODULUS:040x}"


class SegmentTexts:
    """The records file of a saved segment, read back a line at a time: the chunk texts stay
    on disk, not in memory. The file stays open, so a folder replaced since reads the same."""

    def __init__(self, path: Path, offsets: np.ndarray) -> None:
        self.path = path
        self.offsets = offsets  # (records + 1,) int64: where each record's line starts
        self._fd = os.open(path, os.O_RDONLY)
        weakref.finalize(self, os.close, self._fd)

    @property
    def fd(self) -> int:
        return self._fd

    def line(self, row: int) -> bytes:
        start, end = int(self.offsets[row]), int(self.offsets[row + 1])
        return os.pread(self._fd, end - start, start)

    def text(self, row: int) -> str:
        return _text_of(self.line(row))

    def texts(self, rows: Sequence[int]) -> dict[int, str]:
        """The texts of these rows, each run of consecutive rows read with one call: an
        article's chunks are one run, and a search reads a few articles from a cold disk."""
        out: dict[int, str] = {}
        ordered = sorted(set(rows))
        first = 0
        for i in range(1, len(ordered) + 1):
            if i < len(ordered) and ordered[i] == ordered[i - 1] + 1:
                continue
            run = ordered[first:i]
            start = int(self.offsets[run[0]])
            block = os.pread(self._fd, int(self.offsets[run[-1] + 1]) - start, start)
            for row in run:
                line = block[int(self.offsets[row]) - start : int(self.offsets[row + 1]) - start]
                out[row] = _text_of(line)
            first = i
        return out


def _text_of(line: bytes) -> str:
    """The chunk text of a records line."""
    text = line.decode()
    if text.startswith('["'):  # [id, text, metadata] as `save` writes it: the text alone
        _, end = _DECODER.raw_decode(text, 1)
        if text.startswith(', "', end):
            return str(_DECODER.raw_decode(text, end + 2)[0])
    return str(json.loads(text)[1])


def record_texts(records: Sequence[ChunkRecord], rows: Sequence[int]) -> list[str]:
    """`records[i].text` for each of `rows`; stored records are read a run of lines at a time
    (SegmentTexts.texts)."""
    wanted: dict[SegmentTexts, list[int]] = {}
    for i in rows:
        record = records[i]
        if isinstance(record, StoredRecord):
            wanted.setdefault(record._texts, []).append(record._row)
    read = {texts: texts.texts(local) for texts, local in wanted.items()}
    out = []
    for i in rows:
        record = records[i]
        out.append(
            read[record._texts][record._row] if isinstance(record, StoredRecord) else record.text
        )
    return out


class StoredRecord(ChunkRecord):
    """A chunk record whose text is read from its segment's file, and whose metadata is made
    from its segment's columns, when asked for: neither is held per chunk."""

    __slots__ = ("_columns", "_row", "_texts")
    _texts: SegmentTexts
    _columns: SegmentColumns
    _row: int

    def __init__(self, columns: SegmentColumns, texts: SegmentTexts, row: int) -> None:
        object.__setattr__(self, "id", columns.ids[row])
        object.__setattr__(self, "_columns", columns)
        object.__setattr__(self, "_texts", texts)
        object.__setattr__(self, "_row", row)

    @property
    def text(self) -> str:
        return self._texts.text(self._row)

    @property
    def metadata(self) -> dict[str, Any]:  # a new dict each time
        return self._columns.metadata(self._row)

    def __eq__(self, other: object) -> bool:  # equal to a plain record of the same chunk
        if not isinstance(other, ChunkRecord):
            return NotImplemented
        return (self.id, self.text, self.metadata) == (other.id, other.text, other.metadata)

    __hash__ = None  # type: ignore[assignment]  # as a plain record: the metadata is a dict

    def __reduce__(self) -> Any:  # a plain record, text and all, for pickle and copy
        return (ChunkRecord, (self.id, self.text, self.metadata))


@dataclass(frozen=True, eq=False)
class Segment:
    """BM25 postings of a batch of chunks; `deletes`: chunk ids it removes from older segments."""

    name: str
    records: list[ChunkRecord]
    terms: dict[str, int]  # term -> column
    indptr: np.ndarray  # (terms + 1,) int64: column j's postings are [indptr[j], indptr[j+1])
    rows: np.ndarray  # (postings,) int32 rows in this segment
    tfs: np.ndarray  # (postings,) float32 term counts
    lengths: np.ndarray  # (records,) int32 tokens per chunk
    deletes: tuple[str, ...] = ()
    _sorted: list[str] = field(default_factory=list, repr=False)
    # The chunks' vectors in record order, where known (see index.segment_vectors).
    vectors: VectorRows | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.records)

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        column = self.terms.get(term)
        if column is None:
            return None
        start, end = int(self.indptr[column]), int(self.indptr[column + 1])
        return self.rows[start:end], self.tfs[start:end]

    def files(self) -> list[tuple[int, int | str]]:
        """(kind, open file descriptor or path) of each file of the saved segment that a
        search reads: VECTORS, POSTINGS or RECORDS (see _State.read_ahead)."""
        out: list[tuple[int, int | str]] = []
        if isinstance(self.vectors, SavedVectors):
            out.append((VECTORS, self.vectors.fd))
        if isinstance(self.rows, np.memmap) and self.rows.filename:
            out.append((POSTINGS, str(self.rows.filename)))
        first = self.records[0] if self.records else None
        if isinstance(first, StoredRecord):
            out.append((RECORDS, first._texts.fd))
        return out

    def sorted_terms(self) -> list[str]:
        """The segment's terms in order (made once, on first use)."""
        if not self._sorted and self.terms:
            self._sorted.extend(sorted(self.terms))
        return self._sorted

    @classmethod
    def build(
        cls,
        records: list[ChunkRecord],
        deletes: Iterable[str] = (),
        vectors: np.ndarray | None = None,
    ) -> Segment:
        """Tokenise `records` and index them; `vectors`: theirs, in the same order, if known."""
        vocab: dict[str, int] = {}
        cols: list[int] = []
        rows: list[int] = []
        tfs: list[int] = []
        lengths = np.zeros(len(records), dtype=np.int32)
        for i, record in enumerate(records):
            tokens = keyword_tokens(keyword_text(record))
            lengths[i] = len(tokens)
            for term, count in Counter(tokens).items():
                cols.append(vocab.setdefault(term, len(vocab)))
                rows.append(i)
                tfs.append(count)
        return cls._from_coo(
            records,
            list(vocab),
            np.asarray(cols, dtype=np.int64),
            np.asarray(rows, dtype=np.int64),
            np.asarray(tfs, dtype=np.float32),
            lengths,
            tuple(deletes),
            None if vectors is None else HeldVectors(vectors),
        )

    @classmethod
    def _from_coo(
        cls,
        records: list[ChunkRecord],
        terms: list[str],
        cols: np.ndarray,
        rows: np.ndarray,
        tfs: np.ndarray,
        lengths: np.ndarray,
        deletes: tuple[str, ...] = (),
        vectors: VectorRows | None = None,
    ) -> Segment:
        order = np.lexsort((rows, cols))
        counts = np.bincount(cols, minlength=len(terms))
        indptr = np.zeros(len(terms) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return cls(
            name=f"s{uuid.uuid4().hex[:12]}",
            records=records,
            terms={t: i for i, t in enumerate(terms)},
            indptr=indptr,
            rows=rows[order].astype(np.int32),
            tfs=tfs[order].astype(np.float32),
            lengths=np.asarray(lengths, dtype=np.int32),
            deletes=deletes,
            vectors=vectors if vectors is not None and len(vectors) == len(records) else None,
        )

    # Persistence: `<stem>.npz` (postings), `<stem>.jsonl` (records, after a header line for
    # deltas), and beside them their columns and, where known, vectors. Written to their final
    # names: a manifest names them only once whole.

    def save(self, npz: Path, jsonl: Path, *, header: bool) -> Segment:
        """Write the segment; what comes back is the same segment reading its chunks' texts
        from `jsonl`, to hold instead of this one (no texts in memory)."""
        terms = sorted(self.terms, key=self.terms.__getitem__)
        with npz.open("wb") as out:
            np.savez(
                out,
                indptr=self.indptr,
                rows=self.rows,
                tfs=self.tfs,
                lengths=self.lengths,
                terms=np.frombuffer("\n".join(terms).encode(), dtype=np.uint8),
            )
            out.flush()
            os.fsync(out.fileno())
        offsets: list[int] = []
        with jsonl.open("wb") as out:
            if header:
                head = {"records": len(self.records), "deletes": self.deletes}
                out.write(json.dumps(head).encode() + b"\n")
            for r in self.records:
                offsets.append(out.tell())
                if isinstance(r, StoredRecord):  # a merge: the saved line as it is
                    out.write(r._texts.line(r._row))
                    continue
                out.write(json.dumps([r.id, r.text, r.metadata], ensure_ascii=False).encode())
                out.write(b"\n")
            offsets.append(out.tell())
            out.flush()
            os.fsync(out.fileno())
        texts = SegmentTexts(jsonl, np.asarray(offsets, dtype=np.int64))
        metadatas = [r.metadata for r in self.records]
        columns = SegmentColumns.of([r.id for r in self.records], metadatas)
        columns.hash_total = fingerprint_value([r.id for r in self.records], metadatas)
        columns.offsets = texts.offsets
        columns.save(columns_path(jsonl), offsets[-1])
        records: list[ChunkRecord] = [StoredRecord(columns, texts, i) for i in range(len(self))]
        vectors = None if self.vectors is None else save_vectors(vectors_path(jsonl), self.vectors)
        return Segment(
            self.name, records, self.terms, self.indptr, self.rows, self.tfs, self.lengths,
            self.deletes, self._sorted, vectors,
        )  # fmt: skip

    @classmethod
    def load(cls, name: str, npz: Path, jsonl: Path, *, header: bool) -> Segment:
        """Raises ValueError (or OSError) unless both files are whole and agree."""
        deletes: tuple[str, ...] = ()
        expected, at = None, 0
        with jsonl.open("rb") as lines:
            if header:
                first = next(lines)
                head = json.loads(first)
                expected, deletes, at = int(head["records"]), tuple(head["deletes"]), len(first)
        size = jsonl.stat().st_size
        columns = _saved_columns(jsonl, size, expected)
        if columns is None:
            columns = _read_columns(jsonl, at)
            if columns.offsets[-1] == size:  # whole: save them, for the next process
                with contextlib.suppress(OSError):
                    columns.save(columns_path(jsonl), size)
        if expected is not None and len(columns) != expected:
            raise ValueError(f"{len(columns)} records, {expected} saved")
        texts = SegmentTexts(jsonl, columns.offsets)
        records: list[ChunkRecord] = [StoredRecord(columns, texts, i) for i in range(len(columns))]
        data = mapped_arrays(npz)
        raw = bytes(data["terms"]).decode()
        terms = raw.split("\n") if raw else []
        indptr, rows, tfs, lengths = data["indptr"], data["rows"], data["tfs"], data["lengths"]
        if len(lengths) != len(records):
            raise ValueError(f"postings of {len(lengths)} chunks, {len(records)} records")
        if len(indptr) != len(terms) + 1 or not int(indptr[-1]) == len(rows) == len(tfs):
            raise ValueError("the postings are cut short")
        return cls(
            name, records, {t: i for i, t in enumerate(terms)}, indptr, rows, tfs, lengths, deletes,
            vectors=SavedVectors.open(vectors_path(jsonl), len(records)),
        )  # fmt: skip

    def hash_total(self) -> int:
        """The fingerprint share of all the segment's chunks (saved with its columns)."""
        first = self.records[0] if self.records else None
        if isinstance(first, StoredRecord) and first._columns.hash_total is not None:
            return first._columns.hash_total
        return fingerprint_value([r.id for r in self.records], [r.metadata for r in self.records])

    def column(self, key: str) -> list[Any]:
        """Every chunk's metadata value for `key` (None where it has none), in row order."""
        first = self.records[0] if self.records else None
        if isinstance(first, StoredRecord):
            return first._columns.column(key)
        return metadata_column(self.records, key)


def mapped_arrays(npz: Path) -> dict[str, np.ndarray]:
    """The arrays of an uncompressed .npz, memory-mapped read-only: the postings are read from
    the page cache as searches touch them, and shared by every process on the machine. (A
    folder replaced meanwhile stays readable: the mapping holds the old file.)"""
    out: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(npz) as archive, npz.open("rb") as raw:
        for info in archive.infolist():
            name = info.filename.removesuffix(".npy")
            if info.compress_type != zipfile.ZIP_STORED:
                with archive.open(info) as member:
                    out[name] = np.lib.format.read_array(member)
                continue
            raw.seek(info.header_offset)
            local = raw.read(30)  # the member's local header: names and extras follow it
            name_length, extra_length = struct.unpack("<HH", local[26:30])
            start = info.header_offset + 30 + name_length + extra_length
            raw.seek(start)
            shape, fortran, dtype = read_npy_header(raw)
            if dtype.hasobject or not shape or 0 in shape:
                raw.seek(start)
                out[name] = np.lib.format.read_array(raw)
                continue
            out[name] = np.memmap(
                npz, dtype=dtype, mode="r", offset=raw.tell(), shape=shape,
                order="F" if fortran else "C",
            )  # fmt: skip
    return out


def _saved_columns(jsonl: Path, size: int, expected: int | None) -> SegmentColumns | None:
    """The columns saved beside `jsonl` for it as it is now, or None."""
    try:
        columns = SegmentColumns.load(columns_path(jsonl), size, expected)
    except (OSError, ValueError, KeyError, EOFError, pickle.UnpicklingError):
        return None
    return columns if columns is not None and columns.offsets[-1] == size else None


def _read_columns(jsonl: Path, at: int) -> SegmentColumns:
    """Every line of a records file parsed (its texts dropped): ids, metadata, offsets."""
    ids: list[str] = []
    metadatas: list[dict[str, Any]] = []
    offsets: list[int] = []
    with jsonl.open("rb") as lines:
        if at:
            lines.seek(at)
        for line in lines:
            chunk_id, _, metadata = json.loads(line)
            ids.append(chunk_id)
            metadatas.append(metadata)
            offsets.append(at)
            at += len(line)
    offsets.append(at)
    columns = SegmentColumns.of(ids, metadatas)
    columns.hash_total = fingerprint_value(ids, metadatas)
    columns.offsets = np.asarray(offsets, dtype=np.int64)
    return columns


def merge(segments: Sequence[Segment], alive: Sequence[np.ndarray]) -> Segment:
    """One segment of the live chunks of `segments`, in order; no text is tokenised again."""
    vocab: dict[str, int] = {}
    cols, rows, tfs, lengths = [], [], [], []
    records: list[ChunkRecord] = []
    offset = 0
    for segment, live in zip(segments, alive, strict=True):
        new_row = np.where(live, offset + np.cumsum(live) - 1, -1)
        offset += int(live.sum())
        terms = sorted(segment.terms, key=segment.terms.__getitem__)
        mapping = np.array([vocab.setdefault(t, len(vocab)) for t in terms], dtype=np.int64)
        per_column = np.diff(segment.indptr)
        column_of = np.repeat(mapping, per_column)
        target = new_row[segment.rows]
        keep = target >= 0
        cols.append(column_of[keep])
        rows.append(target[keep])
        tfs.append(segment.tfs[keep])
        lengths.append(segment.lengths[live])
        records.extend(r for r, ok in zip(segment.records, live.tolist(), strict=True) if ok)

    def joined(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    vectors = None
    needed = [(s.vectors, live) for s, live in zip(segments, alive, strict=True) if live.any()]
    if all(v is not None for v, _ in needed):  # else they come from Chroma
        vectors = MergedVectors([(v, np.flatnonzero(live)) for v, live in needed if v is not None])
    return Segment._from_coo(
        records,
        list(vocab),
        joined(cols, np.int64),
        joined(rows, np.int64),
        joined(tfs, np.float32),
        joined(lengths, np.int32),
        vectors=vectors,
    )


def bm25_idf(documents: int, frequency: int) -> float:
    return float(np.log(1 + (documents - frequency + 0.5) / (frequency + 0.5)))


def bm25_tf(tf: np.ndarray, length: np.ndarray, average: float) -> np.ndarray:
    return tf / (K1 * ((1 - B) + B * length / average) + tf)


def replace_file(path: Path, text: str) -> None:
    """Write `path` atomically: a temporary file, fsync, rename, fsync of the folder."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    tmp.rename(path)
    sync_dir(path.parent)


def sync_tree(folder: Path) -> None:
    """fsync every file under `folder`, and the folders, so a power cut keeps them whole."""
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
    for path in [folder, *(p for p in folder.rglob("*") if p.is_dir())]:
        sync_dir(path)


def sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
