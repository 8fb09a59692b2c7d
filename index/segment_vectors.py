"""The chunk vectors of a keyword segment, saved beside its records file.

A search over Chroma's HNSW index scores the keyword candidates by cosine, so it needs their
vectors: about 650 a question. Asked of Chroma by id, they come back as Python lists of floats,
about 33 ms a search at 1M chunks. Read from this file (cached) they take 3-4 ms.

The file is an .npy of float32 rows in the segment's record order, read a row at a time with
`pread`: the vectors stay in the page cache, shared by every process and outside each one's
memory. It is optional: a segment saved without it (made by a rebuild, or by an older
version) has its vectors fetched from Chroma until `index.keyword_vectors.add_vectors` writes
it. Segments never change, so neither does the file once written."""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import numpy as np

SUFFIX = ".vectors.npy"
_BLOCK = 4096  # rows written at a time: a merge of a million chunks never holds them all


def read_npy_header(raw: BinaryIO) -> tuple[tuple[int, ...], bool, np.dtype[Any]]:
    """(shape, fortran order, dtype) of the .npy array starting at `raw`'s position, which
    it leaves where the array's data begins."""
    if np.lib.format.read_magic(raw) == (1, 0):
        return np.lib.format.read_array_header_1_0(raw)
    return np.lib.format.read_array_header_2_0(raw)


def vectors_path(records_file: Path) -> Path:
    """Where a segment's vectors are saved: beside its records file, with the same stem."""
    return records_file.with_name(records_file.stem + SUFFIX)


class VectorRows(Protocol):
    """A segment's vectors, in its record order."""

    dimensions: int

    def __len__(self) -> int: ...

    def take(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """(len(rows), dimensions) float32: the vectors at these rows of the segment."""
        ...


class HeldVectors:
    """Vectors in memory: those of a writer's delta (read back from Chroma), until it is saved."""

    def __init__(self, matrix: np.ndarray) -> None:
        self.matrix = np.asarray(matrix, dtype=np.float32)
        self.dimensions = int(self.matrix.shape[1]) if self.matrix.ndim == 2 else 0

    def __len__(self) -> int:
        return len(self.matrix)

    def take(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        return self.matrix[np.asarray(rows, dtype=np.int64)]


class MergedVectors:
    """The live rows of several segments' vectors, one after another (a merge), read from
    their sources when asked: a merge writes them a block at a time."""

    def __init__(self, parts: Sequence[tuple[VectorRows, np.ndarray]]) -> None:
        self.parts = [(source, np.asarray(live, dtype=np.int64)) for source, live in parts]
        self.ends = np.cumsum([live.size for _, live in self.parts], dtype=np.int64)
        self.dimensions = self.parts[0][0].dimensions if self.parts else 0

    def __len__(self) -> int:
        return int(self.ends[-1]) if self.ends.size else 0

    def take(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        out = np.zeros((rows.size, self.dimensions), dtype=np.float32)
        part_of = np.searchsorted(self.ends, rows, side="right")
        for p in np.unique(part_of).tolist():
            source, live = self.parts[p]
            at = np.flatnonzero(part_of == p)
            start = int(self.ends[p - 1]) if p else 0
            out[at] = source.take(live[rows[at] - start])
        return out


class FetchedVectors:
    """The vectors of these chunk ids, fetched when asked (from Chroma, to write a segment's
    file a block at a time). None: a chunk no longer live (deleted or superseded, perhaps
    gone from Chroma), whose row is never read: zeros. KeyError for a live chunk without one."""

    def __init__(
        self,
        ids: Sequence[str | None],
        fetch: Callable[[list[str]], dict[str, np.ndarray]],
        dimensions: int,
    ) -> None:
        self.ids = ids
        self.fetch = fetch
        self.dimensions = dimensions

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        wanted = [self.ids[i] for i in np.asarray(rows, dtype=np.int64).tolist()]
        found = self.fetch([i for i in wanted if i is not None])
        out = np.zeros((len(wanted), self.dimensions), dtype=np.float32)
        for at, chunk_id in enumerate(wanted):
            if chunk_id is None:
                continue
            if chunk_id not in found:
                raise KeyError(f"no vector for chunk {chunk_id}")
            out[at] = found[chunk_id]
        return out


class SavedVectors:
    """A saved segment's vectors file, read with `pread`; it stays open, so a folder replaced
    since reads the same."""

    def __init__(self, path: Path, rows: int, dimensions: int, start: int) -> None:
        self.path = path
        self.rows = rows
        self.dimensions = dimensions
        self.start = start  # where the first row begins (after the .npy header)
        self._fd = os.open(path, os.O_RDONLY)
        weakref.finalize(self, os.close, self._fd)

    def __len__(self) -> int:
        return self.rows

    @classmethod
    def open(cls, path: Path, rows: int) -> SavedVectors | None:
        """The file at `path` if it holds `rows` float32 rows, whole; else None (no file, a
        file cut short, or one of another segment: their vectors come from Chroma)."""
        try:
            with path.open("rb") as raw:
                shape, fortran, dtype = read_npy_header(raw)
                start = raw.tell()
            size = path.stat().st_size
        except (OSError, ValueError):
            return None
        if fortran or dtype != np.float32 or len(shape) != 2 or shape[0] != rows:
            return None
        if size != start + 4 * shape[0] * shape[1]:
            return None
        return cls(path, rows, int(shape[1]), start)

    @property
    def fd(self) -> int:
        return self._fd

    def take(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """One `pread` per run of consecutive rows (a search asks for scattered rows; a merge
        for long runs)."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((rows.size, self.dimensions), dtype=np.float32)
        width = 4 * self.dimensions
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        starts = np.concatenate(([0], breaks)).tolist() if rows.size else []
        ends = [*starts[1:], rows.size]
        for first, end in zip(starts, ends, strict=True):
            count = end - first
            data = os.pread(self._fd, count * width, self.start + int(rows[first]) * width)
            if len(data) != count * width:
                raise OSError(f"{self.path} is cut short")
            out[first:end] = np.frombuffer(data, dtype=np.float32).reshape(count, -1)
        return out


def read_ahead(file: int | str) -> None:
    """Read an open file whole, 16 MB at a time, so that the kernel holds it in the page
    cache. For the files a search reads scattered rows of: read cold, a search's 640 vectors
    took 100-120 ms at 1M chunks (Chroma gives them in about 33). `posix_fadvise` WILLNEED was no
    help here: the kernel read 230 MB of the 1.4 GB file."""
    fd = file if isinstance(file, int) else os.open(file, os.O_RDONLY)
    try:
        buffer = bytearray(16 << 20)
        offset = 0
        while got := os.preadv(fd, [buffer], offset):
            offset += got
    finally:
        if fd is not file:
            os.close(fd)


def save_vectors(path: Path, vectors: VectorRows) -> SavedVectors:
    """Write `vectors` to `path` (a block of rows at a time, synced), and open what was written."""
    count = len(vectors)
    blocks = _blocks(vectors, count)
    first = next(blocks, np.zeros((0, 0), dtype=np.float32))
    dimensions = first.shape[1] if count else 0
    with path.open("wb") as out:
        header = {"descr": "<f4", "fortran_order": False, "shape": (count, dimensions)}
        np.lib.format.write_array_header_1_0(out, header)
        out.write(np.ascontiguousarray(first, dtype="<f4").tobytes())
        for block in blocks:
            out.write(np.ascontiguousarray(block, dtype="<f4").tobytes())
        out.flush()
        os.fsync(out.fileno())
    saved = SavedVectors.open(path, count)
    if saved is None:
        raise OSError(f"{path} was not written whole")
    return saved


def _blocks(vectors: VectorRows, count: int) -> Iterator[np.ndarray]:
    for start in range(0, count, _BLOCK):
        yield vectors.take(np.arange(start, min(count, start + _BLOCK)))
