"""A corpus of good articles mixed with every kind of bad input, and what ingest must make of it.

python -m tests.badcorpus OUT_DIR    # writes the corpus, and OUT_DIR-expected.json beside it
"""

from __future__ import annotations

import csv
import json
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

from index.articles import article_id

CITIES = ("Lisbon", "Tallinn", "Nairobi", "Osaka", "Quito", "Tromso", "Adelaide", "Leipzig")
PLANS = ("a tram line", "flood barriers", "a new library", "school meals", "a harbour bridge")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
SCRIPT_MARK = "SCRIPT_PAYLOAD_MUST_NOT_BE_INDEXED"
BIG_ID = "big-article"
BIG_BYTES = 1_000_000
LINES_100K = 100_000


@dataclass
class Expected:
    """What ingest must do with the corpus: which articles go in, which records are reported."""

    good: dict[str, str] = field(default_factory=dict)  # article id -> a phrase of its body
    issues: set[tuple[str, int | None, str | None]] = field(default_factory=set)
    duplicates: int = 0  # exact copies and copies of a body under another id
    replaced: dict[str, str] = field(default_factory=dict)  # id -> phrase of the version kept
    dropped_phrases: list[str] = field(default_factory=list)  # text that must not be stored
    notes: list[str] = field(default_factory=list)  # notes the report must hold, word for word

    def as_dict(self) -> dict[str, object]:
        return {
            "good": self.good,
            "issues": sorted([list(i) for i in self.issues], key=str),
            "duplicates": self.duplicates,
            "replaced": self.replaced,
            "dropped_phrases": self.dropped_phrases,
            "notes": self.notes,
        }


class _Corpus:
    def __init__(self, folder: Path, seed: int) -> None:
        self.folder = folder
        self.random = random.Random(seed)
        self.expected = Expected()
        self.serial = 0

    def body(self) -> tuple[str, str]:
        """A short, distinct one-paragraph article body and a phrase found only in it."""
        self.serial += 1
        mark = f"item{self.serial:05d}"
        city, plan, day = (
            self.random.choice(CITIES),
            self.random.choice(PLANS),
            self.random.choice(DAYS),
        )
        amount = self.random.randint(2, 900)
        text = (
            f"The {city} council approved {plan} costing {amount} million on {day}, "
            f"reference {mark}. Officials said work would start within a year."
        )
        return text, mark

    def good(self, *, given: str | None = None, **extra: object) -> dict[str, object]:
        body, mark = self.body()
        given = given or f"good-{self.serial:05d}"
        record: dict[str, object] = {"id": given, "title": f"Council plan {mark}", "body": body}
        record.update(extra)
        self.expected.good[article_id(url="", title="", body="", given=given)] = mark
        return record

    def issue(self, name: str, line: int | None, field_name: str | None) -> None:
        self.expected.issues.add((name, line, field_name))


def write_bad_corpus(folder: Path, *, seed: int = 7) -> Expected:
    """Write the corpus under `folder` (which must exist) and return what ingest must do."""
    corpus = _Corpus(folder, seed)
    _mixed_jsonl(corpus)
    _hundred_thousand_lines(corpus)
    _big_article(corpus)
    _whole_files(corpus)
    _broken_json_array(corpus)
    _other_encodings(corpus)
    _linked_folders(corpus)
    return corpus.expected


def _mixed_jsonl(c: _Corpus) -> None:
    """Good records among malformed lines, wrong types, missing fields and duplicates."""
    name = "mixed.jsonl"
    lines: list[bytes] = []

    def add(value: object | bytes, issue_field: str | None = None, bad: bool = False) -> None:
        lines.append(value if isinstance(value, bytes) else json.dumps(value).encode())
        if bad:
            c.issue(name, len(lines), issue_field)

    first = c.good()
    add(first)
    add(b'{"title": "cut short", "body": "no end', bad=True)  # malformed JSON
    add(b"not json at all", bad=True)
    add([1, 2, 3], bad=True)  # JSON, not an object
    add("a string", bad=True)
    add({"title": "No body here"}, "body", bad=True)  # missing field
    add({"title": "Blank body", "body": "   \n  "}, "body", bad=True)  # empty field
    add({"title": "Null body", "body": None}, "body", bad=True)
    add({"title": 12345, "body": c.body()[0]}, "title", bad=True)  # wrong types
    add({"title": "List body", "body": ["a", "b"]}, "body", bad=True)
    add({"title": "Bool date", "body": c.body()[0], "published": True}, "published", bad=True)
    add(
        {"title": "Bad date", "body": c.body()[0], "published": "the 45th of Smarch"},
        "published",
        bad=True,
    )
    add({"title": "Object url", "body": c.body()[0], "url": {"href": "x"}}, "url", bad=True)
    latin1 = json.dumps({"title": "Latin-1", "body": "café"}, ensure_ascii=False)
    bad_utf8 = latin1.encode("latin-1")
    add(bad_utf8, bad=True)  # not UTF-8 in a file that is (see the accents below): only it is lost
    lines.append(b"")  # blank lines are not records
    lines.append(b"   ")
    add(c.good(published="2022-03-04", source="Daily Planet"))
    lines.append(
        json.dumps(c.good(author="Zoë Brontë", source="Le Café Crème"), ensure_ascii=False).encode()
    )
    add(first)  # an exact copy: a duplicate, not an issue
    c.expected.duplicates += 1
    copy_of_first = {**first, "id": "another-id-same-body"}
    add(copy_of_first)  # the same body under another id: a duplicate
    c.expected.duplicates += 1
    # The same id twice with different text: the later version is kept.
    early = c.good(given="twice")
    add(early)
    late = c.good(given="twice")
    add(late)
    c.expected.dropped_phrases.append(str(early["title"]).split()[-1])
    twice = article_id(url="", title="", body="", given="twice")
    c.expected.replaced[twice] = str(late["title"]).split()[-1]
    c.expected.good[twice] = c.expected.replaced[twice]
    # Markup inside a JSON body is text and is kept as text (the web layer escapes it).
    marked = c.good()
    marked["body"] = f"<p>{marked['body']}</p><script>alert('markup stays text')</script>"
    add(marked)
    (c.folder / name).write_bytes(b"\n".join(lines) + b"\n")


def _hundred_thousand_lines(c: _Corpus) -> None:
    """100,000 lines, nearly all blank, bad or duplicate, so that little needs embedding."""
    name = "lines100k.jsonl"
    copy = json.dumps(c.good()).encode()
    out: list[bytes] = []
    for number in range(1, LINES_100K + 1):
        kind = number % 10
        if number % 5000 == 0:
            out.append(json.dumps(c.good()).encode())
        elif kind in (0, 1, 2):
            out.append(b"")
        elif kind == 3:
            out.append(b'{"title": "broken"')
            c.issue(name, number, None)
        elif kind == 4:
            out.append(b'{"title": "no body"}')
            c.issue(name, number, "body")
        elif kind == 5:
            out.append(b'{"title": "typed", "body": 42}')
            c.issue(name, number, "body")
        else:
            out.append(copy)
            c.expected.duplicates += 1
    c.expected.duplicates -= 1  # the first copy is the article itself
    (c.folder / name).write_bytes(b"\n".join(out) + b"\n")


def _big_article(c: _Corpus) -> None:
    """A 1 MB article; its text repeats a paragraph, so its thousand chunks embed as a few."""
    paragraph = (
        "The harbour authority published its annual report on shipping volumes. "
        "Container traffic rose for the third year in a row. "
        "Bulk cargo fell slightly as coal shipments declined. "
        "The authority expects growth to continue next year.\n\n"
    )
    body = paragraph * (BIG_BYTES // len(paragraph) + 1)
    record = {"id": BIG_ID, "title": "Harbour report", "body": body[:BIG_BYTES]}
    (c.folder / "big.jsonl").write_text(json.dumps(record) + "\n")
    c.expected.good[article_id(url="", title="", body="", given=BIG_ID)] = "harbour authority"


def _whole_files(c: _Corpus) -> None:
    """Binary, empty and mis-encoded files; HTML with scripts; a CSV with bad rows."""
    (c.folder / "binary.jsonl").write_bytes(bytes(range(256)) * 40)
    c.issue("binary.jsonl", None, None)
    (c.folder / "picture.json").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(500))
    c.issue("picture.json", None, None)
    (c.folder / "empty.txt").write_bytes(b"")
    c.issue("empty.txt", None, None)
    (c.folder / "latin1.txt").write_bytes(
        "Résumé of the week\n\nCafé owners met.".encode("latin-1")
    )
    title, body = "Résumé of the week", "Café owners met."
    c.expected.good[article_id(url="", title=title, body=body)] = "Café owners"
    c.expected.notes.append(f"{c.folder / 'latin1.txt'}: not UTF-8; read as cp1252")
    (c.folder / "notes.pdf").write_bytes(
        b"%PDF-1.4 not read: unknown formats in a folder are skipped"
    )
    body, mark = c.body()
    (c.folder / "scripted.html").write_text(
        "<html><head><title>Scripted page</title>"
        f"<script>var payload = '{SCRIPT_MARK}';</script></head><body><article>"
        f"<h1>Scripted page</h1><p>{body}</p>"
        f"<script>document.write('{SCRIPT_MARK}')</script>"
        f"<noscript>{SCRIPT_MARK}</noscript></article></body></html>"
    )
    c.expected.good[article_id(url="", title="Scripted page", body=body, given="")] = mark
    c.expected.dropped_phrases.append(SCRIPT_MARK)
    (c.folder / "empty-body.html").write_text(
        f"<html><body><script>{SCRIPT_MARK}</script></body></html>"
    )
    c.issue("empty-body.html", 1, "body")
    good_row = c.good()
    with (c.folder / "table.csv").open("w", newline="") as out:
        table = csv.writer(out)
        table.writerow(["id", "title", "body", "date"])
        table.writerow([good_row["id"], good_row["title"], good_row["body"], "2022-01-02"])
        table.writerow(["x", "too", "many", "fields", "here"])
        table.writerow(["y", "No body", "", "2022-01-03"])
        table.writerow(["z", "Bad date", "Some text about a bad date", "not-a-date"])
    c.issue("table.csv", 3, None)
    c.issue("table.csv", 4, "body")
    c.issue("table.csv", 5, "published")


def _broken_json_array(c: _Corpus) -> None:
    """A pretty-printed JSON array with two broken records: the five around them go in."""
    name = "array.json"
    records = [c.good() for _ in range(7)]
    lines = json.dumps(records, indent=2).split("\n")
    # Record i takes lines 2+5i to 6+5i: "{", id, title, body, "}". Record 2 loses the comma
    # after its id (the parser stops on the title line); record 5's body loses its opening quote.
    for index, line, damage, reported in ((2, 3, ('",', '"'), 4), (5, 5, ('": "', '": '), 5)):
        lines[line + 5 * index - 1] = lines[line + 5 * index - 1].replace(*damage, 1)
        c.issue(name, reported + 5 * index, None)
        given = str(records[index]["id"])
        del c.expected.good[article_id(url="", title="", body="", given=given)]
        c.expected.dropped_phrases.append(str(records[index]["title"]).split()[-1])
    (c.folder / name).write_text("\n".join(lines))


def _other_encodings(c: _Corpus) -> None:
    """A cp1252 text with curly quotes and a cp1252 CSV: read, with a note each; a CSV with no
    body column: one issue for the file."""
    title = "The mayor’s “harbour” plan"
    body = f"“{c.body()[0]}” — said the mayor’s office…"
    (c.folder / "quotes.txt").write_bytes(f"{title}\n\n{body}\n".encode("cp1252"))
    c.expected.good[article_id(url="", title=title, body=body)] = "year.” — said the mayor’s"
    c.expected.notes.append(f"{c.folder / 'quotes.txt'}: not UTF-8; read as cp1252")
    row = c.good(title="Crème brûlée in Genève")
    with (c.folder / "feed.csv").open("w", newline="", encoding="cp1252") as out:
        table = csv.writer(out)
        table.writerow(["id", "title", "body"])
        table.writerow([row["id"], row["title"], f"{row['body']} Naïve café!"])
    c.expected.good[article_id(url="", title="", body="", given=str(row["id"]))] = "Naïve café!"
    c.expected.notes.append(f"{c.folder / 'feed.csv'}: not UTF-8; read as cp1252")
    with (c.folder / "nobody.csv").open("w", newline="") as out:
        table = csv.writer(out)
        table.writerow(["id", "headline", "date"])
        table.writerows([[f"n{i}", f"Headline {i}", "2022-01-02"] for i in range(50)])
    c.issue("nobody.csv", 1, "body")


def _linked_folders(c: _Corpus) -> None:
    """A folder beside the corpus, linked into it twice, with a link back: read once."""
    outside = c.folder.with_name(c.folder.name + "-linked")
    outside.mkdir(exist_ok=True)
    (outside / "linked.jsonl").write_text(json.dumps(c.good()) + "\n")
    linked, again, back = c.folder / "linked", c.folder / "linked-again", outside / "back"
    for link, target in ((linked, outside), (again, outside), (back, c.folder)):
        link.unlink(missing_ok=True)  # from an earlier run into the same folder
        link.symlink_to(target, target_is_directory=True)
    c.expected.notes += [
        f"{linked}: a link to the folder {outside}; followed",
        f"{again}: a link to {outside}, already read as {linked}; not read again",
        f"{linked / back.name}: a link back to {c.folder}, a folder that holds it; "
        "not followed (it would loop)",
    ]


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "badcorpus")
    folder.mkdir(parents=True, exist_ok=True)
    expected = write_bad_corpus(folder)
    # Beside the corpus, not in it: ingest would read a .json file in the folder.
    answers = folder.with_name(folder.name + "-expected.json")
    answers.write_text(json.dumps(expected.as_dict(), indent=2))
    print(f"wrote {folder}: {len(expected.good)} good articles, {len(expected.issues)} bad records")


if __name__ == "__main__":
    main()
