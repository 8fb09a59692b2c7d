"""Tests for index.loaders: every format, field mapping, and each kind of bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from index import loaders
from index.articles import Article, article_id
from index.errors import LoadIssue, LoadNote
from index.loaders import FIELDS, FORMATS, Loaded, detect_format, load_paths

DATA = Path(__file__).resolve().parent / "data" / "loaders"
TASS = DATA / "tass-2022-01-28-lavrov-security-guarantees.txt"
BODY = "The council voted on Tuesday.\n\nIt was the first vote in a decade."


def load(
    *paths: Path, fmt: str | None = None, fields: dict[str, str] | None = None
) -> list[Loaded]:
    return list(load_paths(paths, fmt=fmt, fields=fields))


def articles(items: list[Loaded]) -> list[Article]:
    return [item for item in items if isinstance(item, Article)]


def issues(items: list[Loaded]) -> list[LoadIssue]:
    return [item for item in items if isinstance(item, LoadIssue)]


def notes(items: list[Loaded]) -> list[str]:
    return [str(item) for item in items if isinstance(item, LoadNote)]


def only_article(items: list[Loaded]) -> Article:
    assert issues(items) == [], [str(i) for i in issues(items)]
    assert len(items) == 1
    item = items[0]
    assert isinstance(item, Article)
    return item


def only_issue(items: list[Loaded]) -> LoadIssue:
    assert len(items) == 1, items
    item = items[0]
    assert isinstance(item, LoadIssue), item
    return item


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


# Formats and paths.


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.jsonl", "jsonl"),
        ("a.NDJSON", "jsonl"),
        ("a.json", "json"),
        ("a.csv", "csv"),
        ("a.tsv", "csv"),
        ("a.txt", "txt"),
        ("a.md", "md"),
        ("a.markdown", "md"),
        ("a.html", "html"),
        ("a.HTM", "html"),
        ("a.pdf", None),
        ("README", None),
    ],
)
def test_detect_format_by_suffix(name: str, expected: str | None) -> None:
    assert detect_format(Path(name)) == expected
    assert expected is None or expected in FORMATS


def test_bad_arguments_raise_at_once(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown format"):
        load_paths([tmp_path], fmt="xml")
    with pytest.raises(ValueError, match="unknown field"):
        load_paths([tmp_path], fields={"headline": "hed"})
    assert "published" in FIELDS


def test_folder_walk_is_sorted_recursive_and_skips_hidden_and_unknown(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / ".hidden").mkdir()
    write_jsonl(tmp_path / "b" / "one.jsonl", [{"title": "B one", "body": "Text b."}])
    write_jsonl(tmp_path / "a.jsonl", [{"title": "A", "body": "Text a."}])
    write_jsonl(tmp_path / ".secret.jsonl", [{"title": "Hidden file", "body": "No."}])
    write_jsonl(tmp_path / ".hidden" / "x.jsonl", [{"title": "Hidden folder", "body": "No."}])
    (tmp_path / "notes.pdf").write_bytes(b"%PDF-1.4 not an article")
    (tmp_path / "c.txt").write_text("Title of the third article here\n\nBody of c.\n")

    items = load(tmp_path)

    assert [a.title for a in articles(items)] == ["A", "B one", "Title of the third article here"]
    assert issues(items) == []


def test_fmt_given_reads_every_file_in_a_folder(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "dump.data", [{"title": "Odd suffix", "body": "Still JSONL."}])
    assert load(tmp_path) == []
    assert [a.title for a in articles(load(tmp_path, fmt="jsonl"))] == ["Odd suffix"]


def test_missing_path_is_an_issue(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    issue = only_issue(load(missing))
    assert (issue.path, issue.line, issue.field) == (missing, None, None)
    assert "no such file" in issue.reason


def test_unknown_suffix_named_directly_is_an_issue(tmp_path: Path) -> None:
    path = tmp_path / "article.pdf"
    path.write_text("text")
    issue = only_issue(load(path))
    assert issue.path == path
    assert "unknown format" in issue.reason


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("  \n\n")
    issue = only_issue(load(path))
    assert (issue.path, issue.line, issue.field, issue.reason) == (path, None, None, "empty file")


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "image.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    issue = only_issue(load(path))
    assert (issue.path, issue.line, issue.field) == (path, None, None)
    assert issue.reason == "binary file, not text"


def test_a_pipe_is_refused(tmp_path: Path) -> None:
    pipe = tmp_path / "pipe.jsonl"
    os.mkfifo(pipe)
    issue = only_issue(load(pipe))
    assert (issue.path, issue.line, issue.field) == (pipe, None, None)
    assert issue.reason == "not a regular file"


def test_file_too_large(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_jsonl(tmp_path / "big.jsonl", [{"title": "T", "body": "x" * 2000}])
    monkeypatch.setattr(loaders, "MAX_FILE_BYTES", 1000)
    issue = only_issue(load(path))
    assert (issue.path, issue.line) == (path, None)
    assert issue.reason.startswith("file too large")


def test_utf8_bom_is_stripped(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbftitle,body\nWith a BOM,Body text.\n")
    assert only_article(load(path)).title == "With a BOM"


# JSONL and field mapping.


def test_jsonl_auto_detects_field_aliases(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "a.jsonl",
        [
            {
                "Headline": "  Council  votes ",
                "TEXT": BODY,
                "outlet": {"name": "The Gazette"},
                "pub_date": "March 3, 2021",
                "link": "https://Example.com/a/?utm_source=x",
                "authors": ["Ann Lee", "Bo Chan"],
                "section": "Politics",
                "doc_id": 42,
                "region": "North",
                "views": 10,
            }
        ],
    )
    article = only_article(load(path))
    assert article.title == "Council votes"
    assert article.body == BODY
    assert article.source == "The Gazette"
    assert article.published == "2021-03-03"
    assert article.url == "https://Example.com/a/?utm_source=x"
    assert article.id == article_id(url="https://example.com/a", title="", body="")
    assert article.author == "Ann Lee, Bo Chan"
    assert article.category == "Politics"
    assert article.origin == f"{path}:1"
    assert article.extra == {"region": "North"}


def test_id_field_is_used_when_there_is_no_url(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [{"guid": "abc-1", "body": BODY}])
    assert only_article(load(path)).id == article_id(url="", title="", body="", given="abc-1")


def test_field_overrides(tmp_path: Path) -> None:
    row = {
        "hed": "Given headline",
        "story_text": BODY,
        "body": "Not this one.",
        "when": "2020-02-29",
    }
    path = write_jsonl(tmp_path / "a.jsonl", [row])
    overrides = {"title": "hed", "body": "Story_Text", "published": "when"}
    article = only_article(load(path, fields=overrides))
    assert (article.title, article.body, article.published) == (
        "Given headline",
        BODY,
        "2020-02-29",
    )
    issue = only_issue(load(path, fields={"body": "missing_key"}))
    assert (issue.field, issue.reason) == ("body", "missing or empty body")


def test_title_from_body_when_missing(tmp_path: Path) -> None:
    long_body = "A first sentence that is long enough to matter here. " * 4 + "\n\nMore."
    path = write_jsonl(tmp_path / "a.jsonl", [{"body": long_body}])
    article = only_article(load(path))
    assert article.title == "A first sentence that is long enough to matter here."


def test_jsonl_bad_line_does_not_stop_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        json.dumps({"title": "First", "body": "One."})
        + "\n\n"
        + '{"title": "Broken", "body": \n'
        + "[1, 2]\n"
        + json.dumps({"title": "Last", "body": "Four."})
        + "\n"
    )
    items = load(path)
    assert [(a.title, a.origin) for a in articles(items)] == [
        ("First", f"{path}:1"),
        ("Last", f"{path}:5"),
    ]
    broken, not_object = issues(items)
    assert (broken.path, broken.line, broken.field) == (path, 3, None)
    assert broken.reason.startswith("invalid JSON")
    assert (not_object.line, not_object.reason) == (4, "expected a JSON object, found a list")


def test_jsonl_line_with_invalid_utf8(tmp_path: Path) -> None:
    # The file is UTF-8 (its accents say so): the damaged line alone is lost, nothing re-read.
    path = tmp_path / "bytes.jsonl"
    good = json.dumps({"title": "Zürich", "body": "Grüße aus Zürich."}, ensure_ascii=False)
    path.write_bytes(
        good.encode() + b"\n" + b'{"title": "Bad \xff", "body": "x"}\n' + good.encode() + b"\n"
    )
    items = load(path)
    assert [a.title for a in articles(items)] == ["Zürich", "Zürich"]
    assert notes(items) == []
    issue = issues(items)[0]
    assert (issue.path, issue.line, issue.field) == (path, 2, None)
    assert issue.reason == "not valid UTF-8 (byte 0xff at column 16)"


@pytest.mark.parametrize(
    ("row", "field", "reason"),
    [
        ({"title": "No body"}, "body", "missing or empty body"),
        ({"title": "Blank body", "body": " \n\t "}, "body", "missing or empty body"),
        ({"title": "Number", "body": 12}, "body", "expected text, found a number"),
        ({"title": "List", "content": ["a", "b"]}, "body", "found a list"),
        ({"title": {"en": "x"}, "body": "ok"}, "title", "expected text, found an object"),
        ({"title": "Bad date", "body": "ok", "date": "next Tuesday"}, "published", "next Tuesday"),
        ({"title": "Bad day", "body": "ok", "date": "2021-02-30"}, "published", "cannot read"),
        ({"title": "Odd date", "body": "ok", "date": [2021]}, "published", "found a list"),
    ],
)
def test_bad_records_name_the_field(
    tmp_path: Path, row: dict[str, object], field: str, reason: str
) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", [{"title": "Good", "body": "ok"}, row])
    items = load(path)
    assert [a.title for a in articles(items)] == ["Good"]
    issue = issues(items)[0]
    assert (issue.path, issue.line, issue.field) == (path, 2, field)
    assert reason in issue.reason
    assert str(issue).startswith(f"{path}:2: field '{field}':")


def test_wrong_type_names_the_key_when_it_is_an_alias(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [{"story": 3.5}])
    issue = only_issue(load(path))
    assert issue.field == "body"
    assert "'story'" in issue.reason


def test_epoch_timestamp(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [{"body": "x", "timestamp": 1643328000}])
    assert only_article(load(path)).published == "2022-01-28"


# JSON.

MULTIHOP_ROWS = [
    {
        "title": "&#039;Massive failure&#039;: markets fall",
        "author": None,
        "source": "Business Today | Latest News",
        "published_at": "2023-10-07T15:37:43+00:00",
        "category": "business",
        "url": "https://www.example.in/story/markets-fall-1?utm_source=rssfeed",
        "body": "Markets fell sharply.\n\nAlso Read: more news",
    },
    {
        "title": "Egypt faces an economic crisis",
        "author": "Mirette Magdy, Bloomberg",
        "source": "Fortune",
        "published_at": "2023-10-22T15:15:47+00:00",
        "category": "business",
        "url": "https://fortune.com/2023/10/22/egypt/",
        "body": "Egypt is in trouble.",
    },
    {
        "title": "Student debt and Christmas",
        "author": "Adriana Morga",
        "source": "Fortune",
        "published_at": "2023-12-23T15:13:12+00:00",
        "category": "business",
        "url": "https://fortune.com/2023/12/23/debt/",
        "body": "She cannot afford gifts.",
    },
]


def test_json_multihop_shape(tmp_path: Path) -> None:
    path = tmp_path / "corpus.json"
    path.write_text(json.dumps(MULTIHOP_ROWS, indent=1))
    items = load(path)
    assert issues(items) == []
    first, second, third = articles(items)
    assert first.title == "'Massive failure': markets fall"
    assert (first.source, first.published, first.author, first.category) == (
        "Business Today | Latest News",
        "2023-10-07",
        "",
        "business",
    )
    assert first.id == article_id(
        url="https://www.example.in/story/markets-fall-1", title="", body=""
    )
    assert second.author == "Mirette Magdy, Bloomberg"
    assert third.published == "2023-12-23"
    # Each origin points at the line where that object's "{" is.
    lines = path.read_text().split("\n")
    for article in (first, second, third):
        line = int(article.origin.rsplit(":", 1)[1])
        assert lines[line - 1].strip() == "{"
    assert [a.origin for a in (first, second, third)] == [f"{path}:2", f"{path}:11", f"{path}:20"]


def test_json_wrapper_object_and_single_object(tmp_path: Path) -> None:
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(
        '{"meta": {"count": 2},\n "articles": [\n  {"title": "One", "body": "a"},\n'
        '  {"title": "Two", "body": 7}\n ]\n}\n'
    )
    items = load(wrapped)
    assert [(a.title, a.origin) for a in articles(items)] == [("One", f"{wrapped}:3")]
    issue = issues(items)[0]
    assert (issue.line, issue.field) == (4, "body")

    single = tmp_path / "single.json"
    single.write_text('\n{"headline": "Alone", "content": "Just one."}\n')
    article = only_article(load(single))
    assert (article.title, article.origin) == ("Alone", f"{single}:2")


def test_invalid_json_reports_its_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('[\n {"title": "a", "body": "b"},\n {"title": "c" "body": "d"}\n]\n')
    items = load(path)
    assert [a.title for a in articles(items)] == ["a"]
    (issue,) = issues(items)
    assert (issue.path, issue.line, issue.field) == (path, 3, None)
    assert issue.reason == "invalid JSON: Expecting ',' delimiter (column 16)"

    single = tmp_path / "single.json"
    single.write_text('\n{"title": "c",\n "body": "d" "url": "x"}\n')
    issue = only_issue(load(single))
    assert (issue.line, issue.reason) == (3, "invalid JSON: Expecting ',' delimiter (column 14)")


def test_json_of_the_wrong_shape(tmp_path: Path) -> None:
    path = tmp_path / "numbers.json"
    path.write_text("[1, 2]")
    items = load(path)
    assert [(i.line, i.reason) for i in issues(items)] == [
        (1, "expected a JSON object, found a number"),
        (1, "expected a JSON object, found a number"),
    ]
    scalar = tmp_path / "scalar.json"
    scalar.write_text('"just text"')
    assert "found text" in only_issue(load(scalar)).reason


def test_json_file_holding_json_lines(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "lines.json", [{"body": "a"}, {"body": "b"}])
    assert [a.origin for a in articles(load(path))] == [f"{path}:1", f"{path}:2"]

    first_bad = tmp_path / "first-bad.json"
    first_bad.write_text('{"body": "a" "title": "x"}\n{"body": "b"}\n{"body": "c"}\n')
    items = load(first_bad)
    assert [a.origin for a in articles(items)] == [f"{first_bad}:2", f"{first_bad}:3"]
    assert [(i.line, i.reason) for i in issues(items)] == [
        (1, "invalid JSON: Expecting ',' delimiter (column 14)")
    ]


def test_a_damaged_byte_in_a_utf8_json_array_costs_only_its_record(tmp_path: Path) -> None:
    path = tmp_path / "damaged.json"
    path.write_bytes(
        '[\n {"title": "Zürich", "body": "Grüße."},\n'.encode()
        + b' {"title": "Caf\xe9", "body": "x"},\n'
        + ' {"title": "Genève", "body": "Crème."}\n]\n'.encode()
    )
    items = load(path)
    assert [(a.title, a.origin) for a in articles(items)] == [
        ("Zürich", f"{path}:2"),
        ("Genève", f"{path}:4"),
    ]
    assert notes(items) == []
    (issue,) = issues(items)
    assert (issue.path, issue.line, issue.field) == (path, 3, None)
    assert issue.reason == "not valid UTF-8 (byte 0xe9 at line 3, column 16)"


# CSV and TSV.


def test_csv_with_quoted_multiline_field_and_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(
        "Title,Text,Date,Publisher\n"
        'First,"Line one.\n\nLine three.",2021-01-02,Daily\n'
        "\n"
        "Second,Plain body.,,\n"
        "Third,,2021-01-03,Daily\n"
    )
    items = load(path)
    assert [(a.title, a.body, a.published, a.origin) for a in articles(items)] == [
        ("First", "Line one.\n\nLine three.", "2021-01-02", f"{path}:2"),
        ("Second", "Plain body.", "", f"{path}:6"),
    ]
    issue = issues(items)[0]
    assert (issue.line, issue.field) == (7, "body")


def test_tsv_and_semicolon_csv(tmp_path: Path) -> None:
    tsv = tmp_path / "a.tsv"
    tsv.write_text("title\tbody\tsource\nTabbed, with comma\tBody; text\tWire\n")
    article = only_article(load(tsv))
    assert (article.title, article.body, article.source) == (
        "Tabbed, with comma",
        "Body; text",
        "Wire",
    )

    semi = tmp_path / "b.csv"
    semi.write_text("title;body\nSemi;Colon body\n")
    assert only_article(load(semi)).body == "Colon body"


def test_csv_large_field(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    body = "word " * 60_000
    path.write_text(f'title,body\nBig,"{body}"\n')
    assert len(only_article(load(path)).body) == len(body.strip())


def test_csv_row_with_too_many_fields(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("title,body\nOk,Fine\nBad,Un,quoted\n")
    items = load(path)
    assert len(articles(items)) == 1
    issue = issues(items)[0]
    assert issue.line == 3
    assert "3 fields" in issue.reason


def test_csv_invalid_utf8_rejects_only_that_row(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(
        "title,body\nGood,Fine née\n".encode()
        + b"Bad,Caf\xe9 body\n"
        + "Also good,Fine too ça va\n".encode()
    )
    items = load(path)
    assert [a.title for a in articles(items)] == ["Good", "Also good"]
    assert notes(items) == []
    issue = issues(items)[0]
    assert (issue.path, issue.line, issue.field) == (path, 3, None)
    assert issue.reason == "not valid UTF-8 (byte 0xe9 at line 3, column 8)"


# Plain text and Markdown.


def test_tass_seed() -> None:
    article = only_article(load(TASS))
    assert article.title == (
        "Russia does not see its security guarantee proposals as excessive, says top diplomat"
    )
    assert article.source == "TASS"
    assert article.published == "2022-01-28"
    assert article.origin == f"{TASS}:1"
    assert article.body.startswith("On January 26, The United States and NATO")
    assert "All news" not in article.body
    assert "MOSCOW, January 28. /TASS/." in article.body


@pytest.mark.parametrize(
    ("name", "dateline", "source", "published"),
    [
        ("20210105-markets.txt", "LONDON, Jan 5 (Reuters) - Shares fell.", "Reuters", "2021-01-05"),
        ("story.txt", "KYIV, Ukraine, March 2, 2022 (AP) — Sirens.", "AP", "2022-03-02"),
        ("2020-06-01-story.txt", "WASHINGTON (Reuters) - Talks went on.", "Reuters", "2020-06-01"),
        ("story.txt", "KYIV, Ukraine (AP) — Sirens sounded.", "AP", ""),
        ("story.txt", "Officials said little (AP) - today.", "", ""),
    ],
)
def test_datelines(tmp_path: Path, name: str, dateline: str, source: str, published: str) -> None:
    path = tmp_path / name
    path.write_text(f"A headline about the day's news\n\n{dateline}\n\nMore text.\n")
    article = only_article(load(path))
    assert (article.title, article.source, article.published) == (
        "A headline about the day's news",
        source,
        published,
    )


def test_text_front_matter(tmp_path: Path) -> None:
    path = tmp_path / "2019-01-01-note.txt"
    path.write_text(
        "---\n"
        "title: 'Front matter title'\n"
        "outlet: The Herald\n"
        "date: 2021-07-04T10:00:00Z\n"
        "url: https://herald.example/a\n"
        "authors:\n"
        "  - Ann Lee\n"
        "  - Bo Chan\n"
        "desk: Metro\n"
        "---\n"
        "Front matter title\n"
        "\n"
        "LONDON (Reuters) - The body starts here.\n"
    )
    article = only_article(load(path))
    assert article.title == "Front matter title"
    assert article.body == "LONDON (Reuters) - The body starts here."
    assert (article.source, article.published, article.url) == (
        "The Herald",
        "2021-07-04",
        "https://herald.example/a",
    )
    assert article.author == "Ann Lee, Bo Chan"
    assert article.extra == {"desk": "Metro"}


def test_text_front_matter_bad_date(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("---\ndate: soon\n---\nA title for this one here\n\nBody.\n")
    issue = only_issue(load(path))
    assert (issue.path, issue.line, issue.field) == (path, 1, "published")


def test_text_without_headline_line(tmp_path: Path) -> None:
    one = tmp_path / "one.txt"
    one.write_text("Just one paragraph of text that ends with a period.\n")
    article = only_article(load(one))
    assert article.body == "Just one paragraph of text that ends with a period."
    assert article.title == article.body

    short = tmp_path / "short.txt"
    short.write_text("Home\n\nBriefly\n\nThe body is here. It goes on.\n")
    article = only_article(load(short))
    assert (article.title, article.body) == ("Briefly", "The body is here. It goes on.")


def test_file_name_date_alone(tmp_path: Path) -> None:
    path = tmp_path / "report-20230115.txt"
    path.write_text("A quiet day in the city council\n\nNothing happened.\n")
    assert only_article(load(path)).published == "2023-01-15"


def test_a_damaged_byte_in_a_utf8_text_file(tmp_path: Path) -> None:
    # Its other accents are UTF-8: reading it all as cp1252 would garble them, so it is refused.
    path = tmp_path / "damaged.txt"
    path.write_bytes("A headline from Zürich\n\nGrüße, ".encode() + b"caf\xe9 society.\n")
    issue = only_issue(load(path))
    assert (issue.path, issue.line, issue.field) == (path, 3, None)
    assert issue.reason == "not valid UTF-8 (byte 0xe9 at line 3, column 11)"


def test_markdown(tmp_path: Path) -> None:
    path = tmp_path / "post.md"
    path.write_text(
        "# The *big* vote\n"
        "\n"
        "The council **voted** to [approve](https://x.example/a) the plan.\n"
        "\n"
        "## What next\n"
        "\n"
        "![chart](chart.png) More to come.\n"
    )
    article = only_article(load(path))
    assert article.title == "The big vote"
    assert article.body == (
        "The council voted to approve the plan.\n\nWhat next\n\nchart More to come."
    )


def test_markdown_front_matter_title_drops_repeated_heading(tmp_path: Path) -> None:
    path = tmp_path / "post.markdown"
    path.write_text("---\ntitle: Same title\n---\n# Same title\n\nBody text.\n")
    article = only_article(load(path))
    assert (article.title, article.body) == ("Same title", "Body text.")


# HTML.

HTML_PAGE = """<!doctype html>
<html><head>
<meta charset="utf-8">
<title>Storm hits the coast | Coast Times</title>
<meta property="og:title" content="Storm hits the coast">
<meta property="og:site_name" content="Coast Times">
<meta property="og:url" content="https://coast.example/og">
<meta property="article:published_time" content="2022-09-30T08:00:00Z">
<meta name="author" content="Dana Ray">
<link rel="canonical" href="https://coast.example/storm">
<script>var tracking = "SECRET_SCRIPT_TEXT";</script>
<style>p { color: red }</style>
</head><body>
<header><nav><ul><li>Home</li><li>World</li></ul></nav></header>
<article>
<h1>Storm hits the coast</h1>
<p>Winds reached <b>150 km/h</b> overnight.<br>Power was cut.</p>
<script>document.write("INLINE_SCRIPT_TEXT")</script>
<blockquote><p>It was loud, said a resident.</p></blockquote>
<ul><li>Roads closed</li></ul>
<aside>Related: ASIDE_TEXT</aside>
<noscript>NOSCRIPT_TEXT</noscript>
</article>
<footer>FOOTER_TEXT</footer>
</body></html>
"""


def test_html_meta_and_body(tmp_path: Path) -> None:
    path = tmp_path / "storm.html"
    path.write_text(HTML_PAGE)
    article = only_article(load(path))
    assert article.title == "Storm hits the coast"
    assert (article.source, article.author, article.published, article.url) == (
        "Coast Times",
        "Dana Ray",
        "2022-09-30",
        "https://coast.example/storm",
    )
    assert article.body == (
        "Winds reached 150 km/h overnight.\nPower was cut.\n\n"
        "It was loud, said a resident.\n\nRoads closed"
    )
    for hidden in ("SCRIPT_TEXT", "color", "Home", "ASIDE_TEXT", "NOSCRIPT", "FOOTER"):
        assert hidden not in article.body
    assert article.origin == f"{path}:1"


def test_html_fallbacks(tmp_path: Path) -> None:
    path = tmp_path / "page.htm"
    path.write_text(
        "<html><head><title>Budget passes | City Paper</title>"
        '<meta property="og:site_name" content="City Paper">'
        '<meta property="og:url" content="https://city.example/budget">'
        '<meta name="publisher" content="Ignored Publisher">'
        "</head><body><main><p>The budget passed.</p>"
        '<time datetime="2020-05-06T12:00">May 6</time></main></body></html>'
    )
    article = only_article(load(path))
    assert article.title == "Budget passes"
    assert (article.source, article.url, article.published) == (
        "City Paper",
        "https://city.example/budget",
        "2020-05-06",
    )

    other = tmp_path / "other.html"
    other.write_text(
        "<html><head><title>Keep | This Suffix</title>"
        '<meta name="publisher" content="The Publisher"></head>'
        "<body><h1>Heading</h1><div>Loose text without paragraphs.</div></body></html>"
    )
    article = only_article(load(other))
    assert (article.title, article.source) == ("Keep | This Suffix", "The Publisher")
    assert "Loose text without paragraphs." in article.body


def test_html_news_page_keeps_the_story_and_drops_the_boilerplate() -> None:
    path = Path(__file__).parent / "data" / "web" / "storm.html"
    article = only_article(load(path))
    assert (article.title, article.author, article.source, article.published) == (
        "Storm cuts power to 40,000 homes on the coast",  # JSON-LD headline, not og:title
        "Dana Ray, Li Wen",
        "Coast Times",
        "2024-03-01",
    )
    assert article.url == "https://coast.example/2024/03/02/storm-power-cuts"
    assert article.body.startswith("A winter storm brought winds")
    for noise in ("COOKIE", "NAV_NEWS", "ADVERT", "RELATED", "NEWSLETTER", "FOOTER", "By Dana"):
        assert noise not in article.body


def test_html_bad_date_and_empty_body(tmp_path: Path) -> None:
    path = tmp_path / "a.html"
    path.write_text(
        '<html><head><meta name="date" content="yesterday"></head><body><p>Text.</p></body></html>'
    )
    issue = only_issue(load(path))
    assert (issue.path, issue.line, issue.field) == (path, 1, "published")

    empty = tmp_path / "b.html"
    empty.write_text("<html><head><title>Nothing here</title></head><body></body></html>")
    issue = only_issue(load(empty))
    assert (issue.field, issue.reason) == ("body", "missing or empty body")


def test_html_declared_charset(tmp_path: Path) -> None:
    path = tmp_path / "latin.html"
    path.write_bytes(
        b'<html><head><meta charset="windows-1252"><title>Caf\xe9 opens</title></head>'
        b"<body><p>The caf\xe9 opened \x93today\x94.</p></body></html>"
    )
    article = only_article(load(path))
    assert article.title == "Café opens"
    assert article.body == "The café opened “today”."

    undeclared = tmp_path / "undeclared.html"
    undeclared.write_bytes(b"<html><body><p>The caf\xe9 opened \x93today\x94.</p></body></html>")
    items = load(undeclared)
    assert notes(items) == [f"{undeclared}: not UTF-8; read as cp1252"]
    assert [a.body for a in articles(items)] == ["The café opened “today”."]

    mislabelled = tmp_path / "mislabelled.html"
    mislabelled.write_bytes(b'<meta charset="utf-8"><p>The caf\xe9 opened \x93today\x94.</p>')
    items = load(mislabelled)
    assert notes(items) == [f"{mislabelled}: not UTF-8; read as cp1252"]
    assert [a.body for a in articles(items)] == ["The café opened “today”."]


# A JSON array with bad elements: the good ones around them are kept.


def _records(n: int) -> list[dict[str, str]]:
    return [{"title": f"Story {i}", "body": f"Body of story {i}."} for i in range(1, n + 1)]


def test_a_bad_element_in_the_middle_of_a_pretty_printed_array(tmp_path: Path) -> None:
    path = tmp_path / "feed.json"
    text = json.dumps(_records(5), indent=2)
    # Story 3 loses the comma after its title: the object on lines 10-13 is broken at line 11.
    text = text.replace('"title": "Story 3",', '"title": "Story 3"')
    path.write_text(text)
    lines = text.split("\n")
    assert lines[10].strip() == '"title": "Story 3"'
    items = load(path)
    assert [(a.title, a.origin) for a in articles(items)] == [
        ("Story 1", f"{path}:2"),
        ("Story 2", f"{path}:6"),
        ("Story 4", f"{path}:14"),
        ("Story 5", f"{path}:18"),
    ]
    (issue,) = issues(items)
    assert (issue.path, issue.line, issue.field) == (path, 12, None)
    assert issue.reason == (
        "invalid JSON: Expecting ',' delimiter (column 5); skipped the record on lines 10-13"
    )


def test_two_bad_elements_give_two_issues_and_keep_the_rest(tmp_path: Path) -> None:
    rows = [json.dumps(r) for r in _records(7)]
    rows[1] = rows[1].replace('"Body', "Body")  # an unquoted string
    rows[4] = rows[4].replace('"title"', "'title'")  # a single-quoted key
    path = tmp_path / "rows.json"
    path.write_text("[\n" + ",\n".join(rows) + "\n]\n")
    items = load(path)
    assert [a.title for a in articles(items)] == [
        "Story 1",
        "Story 3",
        "Story 4",
        "Story 6",
        "Story 7",
    ]
    assert [(i.line, i.reason.split(" (")[0]) for i in issues(items)] == [
        (3, "invalid JSON: Expecting value"),
        (6, "invalid JSON: Expecting property name enclosed in double quotes"),
    ]


def test_bad_elements_next_to_each_other_are_reported_one_each(tmp_path: Path) -> None:
    rows = [json.dumps(r) for r in _records(5)]
    rows[1] = rows[1].replace("Body", 'Bo"dy')  # a quote that unbalances the rest of the line
    rows[2] = rows[2][:-1]  # a closing brace missing
    path = tmp_path / "rows.json"
    path.write_text("[\n" + ",\n".join(rows) + "\n]\n")
    items = load(path)
    assert [a.title for a in articles(items)] == ["Story 1", "Story 4", "Story 5"]
    assert [i.line for i in issues(items)] == [3, 4]


def test_a_bad_element_in_a_wrapped_list_and_on_one_line(tmp_path: Path) -> None:
    records = _records(4)
    records[1]["tags"] = [{"title": "x"}, {"name": "nested"}]  # type: ignore[assignment]
    wrapped = json.dumps({"meta": {"count": 4}, "articles": records})
    # A quote left open in story 2, before its nested objects: they must not pass for records.
    wrapped = wrapped.replace('"Body of story 2."', '"Body of "story 2."')
    path = tmp_path / "wrapped.json"
    path.write_text(wrapped)
    items = load(path)
    assert [a.title for a in articles(items)] == ["Story 1", "Story 3", "Story 4"]
    (issue,) = issues(items)
    assert (issue.line, issue.field) == (1, None)
    assert issue.reason.startswith("invalid JSON: Expecting ',' delimiter (column ")


def test_an_error_outside_the_list_keeps_every_record_and_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "after.json"
    text = json.dumps({"articles": _records(2)}, indent=1)[:-2] + ',\n "count": two\n}\n'
    path.write_text(text)
    assert text.split("\n")[11] == ' "count": two'
    items = load(path)
    assert [a.title for a in articles(items)] == ["Story 1", "Story 2"]
    (issue,) = issues(items)
    assert (issue.line, issue.reason) == (12, "invalid JSON: Expecting value (column 11)")


def test_lenient_commas_lose_nothing_and_a_cut_file_keeps_what_came_before(
    tmp_path: Path,
) -> None:
    lenient = tmp_path / "lenient.json"
    rows = [json.dumps(r) for r in _records(3)]
    lenient.write_text(f"[{rows[0]}\n {rows[1]},,\n {rows[2]},\n]")
    assert [a.title for a in articles(load(lenient))] == ["Story 1", "Story 2", "Story 3"]
    assert issues(load(lenient)) == []

    cut = tmp_path / "cut.json"
    text = json.dumps(_records(3), indent=2)
    cut.write_text(text[: text.index("story 3") + 3])
    items = load(cut)
    assert [a.title for a in articles(items)] == ["Story 1", "Story 2"]
    (issue,) = issues(items)
    assert issue.line == 12
    assert issue.reason.startswith("invalid JSON: Unterminated string")
    assert issue.reason.endswith("lines 10-12 are lost (is the file cut short?)")

    unclosed = tmp_path / "unclosed.json"
    unclosed.write_text(text[: text.rindex("}") + 1])
    items = load(unclosed)
    assert len(articles(items)) == 3
    assert [i.reason for i in issues(items)] == [
        "invalid JSON: the file ends before the list of records closes with ']' (is it cut short?)"
    ]


# Links to folders.


def test_a_linked_folder_is_followed_and_a_loop_ends(tmp_path: Path) -> None:
    corpus, outside = tmp_path / "corpus", tmp_path / "outside"
    (corpus / "real").mkdir(parents=True)
    outside.mkdir()
    write_jsonl(corpus / "real" / "a.jsonl", [{"title": "Real", "body": "In the corpus."}])
    write_jsonl(outside / "b.jsonl", [{"title": "Linked", "body": "Outside it."}])
    (corpus / "linked").symlink_to(outside, target_is_directory=True)
    (corpus / "same").symlink_to(outside, target_is_directory=True)  # a second link to it
    (outside / "back").symlink_to(corpus, target_is_directory=True)  # a loop through the link
    (corpus / "real" / "up").symlink_to("..", target_is_directory=True)  # a loop to the top

    items = load(corpus)

    assert [(a.title, a.origin) for a in articles(items)] == [
        ("Linked", f"{corpus}/linked/b.jsonl:1"),
        ("Real", f"{corpus}/real/a.jsonl:1"),
    ]
    assert issues(items) == []
    # Folder by folder, each in name order: the top, then linked, then real.
    assert notes(items) == [
        f"{corpus}/linked: a link to the folder {outside}; followed",
        f"{corpus}/same: a link to {outside}, already read as {corpus}/linked; not read again",
        f"{corpus}/linked/back: a link back to {corpus}, a folder that holds it; "
        "not followed (it would loop)",
        f"{corpus}/real/up: a link back to {corpus}, a folder that holds it; "
        "not followed (it would loop)",
    ]


def test_a_broken_link_is_an_issue(tmp_path: Path) -> None:
    (tmp_path / "gone.jsonl").symlink_to(tmp_path / "nowhere.jsonl")
    issue = only_issue(load(tmp_path))
    assert issue.reason == f"a link to {tmp_path / 'nowhere.jsonl'}, which is not there"


# Files in other encodings than UTF-8.


def test_a_cp1252_file_with_curly_quotes(tmp_path: Path) -> None:
    path = tmp_path / "quotes.txt"
    text = "The mayor’s plan for the harbour\n\nShe said “we will build it” — and it is done…\n"
    path.write_bytes(text.encode("cp1252"))
    items = load(path)
    assert notes(items) == [f"{path}: not UTF-8; read as cp1252"]
    (article,) = articles(items)
    assert article.title == "The mayor’s plan for the harbour"
    assert article.body == "She said “we will build it” — and it is done…"
    assert issues(items) == []


def test_latin1_files_with_accents_in_every_format(tmp_path: Path) -> None:
    title, body = "Résumé of the week in Zürich", "Café owners met; the crème brûlée was naïve."
    (tmp_path / "a.md").write_bytes(f"# {title}\n\n{body}\n".encode("latin-1"))
    (tmp_path / "b.csv").write_bytes(f"title,body\n{title},{body}\n".encode("latin-1"))
    row = json.dumps({"title": title, "body": body}, ensure_ascii=False)
    (tmp_path / "c.jsonl").write_bytes(f"{row}\n".encode("latin-1"))
    (tmp_path / "d.json").write_bytes(f"[{row}]".encode("latin-1"))
    page = f"<html><head><title>{title}</title></head><body><p>{body}</p></body></html>"
    (tmp_path / "e.html").write_bytes(page.encode("latin-1"))
    items = load(tmp_path)
    assert issues(items) == []
    assert [(a.title, a.body) for a in articles(items)] == [(title, body)] * 5
    assert notes(items) == [
        f"{tmp_path / name}: not UTF-8; read as cp1252"
        for name in ("a.md", "b.csv", "c.jsonl", "d.json", "e.html")
    ]


def test_utf16_and_utf8_with_a_bom_need_no_note(tmp_path: Path) -> None:
    text = "Café opens in Zürich today\n\nThe café opened “today”.\n"
    (tmp_path / "a.txt").write_bytes(text.encode("utf-16"))  # with its byte-order mark
    (tmp_path / "b.txt").write_bytes(text.encode("utf-8-sig"))
    items = load(tmp_path)
    assert [a.body for a in articles(items)] == ["The café opened “today”."] * 2
    assert issues(items) == notes(items) == []


def test_a_binary_file_without_nul_bytes_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "noise.txt"
    path.write_bytes(bytes(range(0x80, 0x100)) * 8 + bytes(range(1, 0x80)))
    issue = only_issue(load(path))
    assert (issue.path, issue.line, issue.field) == (path, 1, None)
    assert issue.reason == (
        "binary file, not text: neither UTF-8 (byte 0x80 at line 1, column 1) nor any other "
        "encoding fits; if it is text, save it as UTF-8"
    )


# A CSV without a body column.


def test_a_csv_without_a_body_column_is_one_issue(tmp_path: Path) -> None:
    path = tmp_path / "feed.csv"
    path.write_text(
        "id,headline,date\n" + "".join(f"{i},Story {i},2022-01-0{i}\n" for i in range(1, 8))
    )
    issue = only_issue(load(path))
    assert (issue.path, issue.line, issue.field) == (path, 1, "body")
    assert issue.reason == (
        "no rows read: no body column (one named body, text, content, article, story or "
        "full_text); the header has 'id', 'headline', 'date'. Name the column that holds the "
        "text with --field body=COLUMN"
    )
    named = only_issue(load(path, fields={"body": "story"}))
    assert named.reason.startswith(
        "no rows read: no column named 'story', the one named for the body; the header has 'id'"
    )
    assert [a.body for a in articles(load(path, fields={"body": "headline"}))][:1] == ["Story 1"]
