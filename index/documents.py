"""Articles from whole files: plain text and Markdown (with front matter), and HTML pages."""

from __future__ import annotations

import codecs
import contextlib
import re
from pathlib import Path

from bs4 import BeautifulSoup, Tag

from index.articles import MONTH_PATTERN, Article, month_number, normalise_title, parse_date
from index.errors import LoadIssue
from index.records import BadField, make_article, map_fields

_CRUMBS = {"all news", "home", "news", "menu", "skip to content", "advertisement", "share"}

_FILE_DATE = re.compile(r"(?<!\d)((?:19|20)\d\d)-?(\d\d)-?(\d\d)(?!\d)")
_DATELINE = re.compile(
    r"^(?P<place>[A-Z][A-Z.'’\- ]{1,40}?)"
    r"(?:,\s+(?P<region>[A-Z][A-Za-z.' ]{1,30}?))?"
    rf"(?:,\s+(?P<month>(?i:{MONTH_PATTERN}))\.?\s+(?P<day>\d{{1,2}})(?:,\s+(?P<year>\d{{4}}))?)?"
    r"(?:\.\s*/(?P<slash>[^/\n]{2,30})/\.?|\s*\((?P<paren>[^)\n]{2,30})\)\s*[-—–])",
    re.M,
)
_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_MD_EMPHASIS = re.compile(r"(\*{1,3})(\S(?:.*?\S)?)\1")
_HTML_DROP = (
    "script",
    "style",
    "noscript",
    "nav",
    "header",
    "footer",
    "aside",
    "form",
    "iframe",
    "svg",
    "template",
)
_HTML_BLOCKS = ("p", "h2", "h3", "h4", "h5", "h6", "li", "blockquote")
_HTML_DATE_META = (
    "article:published_time",
    "date",
    "pubdate",
    "publish-date",
    "dc.date",
    "dc.date.issued",
    "dcterms.date",
    "datepublished",
)
_BR = "\ue000"
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)""", re.I)


def load_text(path: Path, text: str, fmt: str, overrides: dict[str, str]) -> Article | LoadIssue:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    meta, first_line = _front_matter(lines)
    values, extra = map_fields(meta, overrides)
    lines = lines[first_line:]
    title_at: int | None = None
    if "body" not in values:
        if "title" in values:
            given = values["title"][1]
            first = next((n for n, line in enumerate(lines) if line.strip()), None)
            if first is not None and isinstance(given, str):
                heading = _strip_markdown([lines[first]])[0] if fmt == "md" else lines[first]
                if normalise_title(heading) == normalise_title(given):
                    title_at = first
        else:
            title_at = _find_title(lines, fmt)
    if fmt == "md":
        lines = _strip_markdown(lines)
    body_lines = lines
    if title_at is not None:
        values.setdefault("title", ("title", lines[title_at].strip()))
        body_lines = lines[title_at + 1 :]
    values.setdefault("body", ("body", "\n".join(body_lines)))
    fallback_date = _file_date(path)
    lead = [line for line in body_lines if line.strip()][:3]
    dateline = _DATELINE.search("\n".join(line.strip() for line in lead))
    if dateline:
        outlet = (dateline["slash"] or dateline["paren"] or "").strip()
        if outlet and "source" not in values:
            values["source"] = ("source", outlet)
        year = dateline["year"] or fallback_date[:4]
        if dateline["month"] and year:
            month = month_number(dateline["month"]) or 0
            with contextlib.suppress(ValueError):
                fallback_date = parse_date(f"{year}-{month:02d}-{int(dateline['day']):02d}")
    try:
        return make_article(values, extra, path, 1, fallback_date=fallback_date)
    except BadField as bad:
        return LoadIssue(path, 1, bad.field, bad.reason)


def _front_matter(lines: list[str]) -> tuple[dict[str, object], int]:
    """`key: value` pairs between leading `---` lines, and the index of the first line after."""
    if not lines or lines[0].strip() != "---":
        return {}, 0
    meta: dict[str, object] = {}
    last_key: str | None = None
    for number, line in enumerate(lines[1:], start=1):
        if line.strip() in ("---", "..."):
            return meta, number + 1
        item = re.match(r"^\s*-\s+(.*)$", line)
        if item and last_key is not None:
            current = meta.get(last_key)
            listed = current if isinstance(current, list) else []
            listed.append(_unquote(item.group(1)))
            meta[last_key] = listed
            continue
        pair = re.match(r"^([A-Za-z_][\w -]*?)\s*:\s*(.*)$", line)
        if pair:
            last_key = pair.group(1).strip()
            meta[last_key] = _unquote(pair.group(2)) if pair.group(2).strip() else None
    return {}, 0


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _strip_markdown(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        if line.strip().startswith("```"):
            continue
        heading = _MD_HEADING.match(line)
        if heading:
            line = heading.group(1)
        line = _MD_LINK.sub(r"\1", _MD_IMAGE.sub(r"\1", line))
        out.append(_MD_EMPHASIS.sub(r"\2", line))
    return out


def _find_title(lines: list[str], fmt: str) -> int | None:
    """Index of the headline line: a Markdown heading, a headline-like line, or the first line."""
    candidates = [n for n, line in enumerate(lines) if line.strip()][:6]
    if not candidates:
        return None
    if fmt == "md" and _MD_HEADING.match(lines[candidates[0]]):
        return candidates[0]
    for n in candidates:
        line = lines[n].strip()
        words = line.split()
        if 4 <= len(words) <= 30 and len(line) <= 200 and line[-1] not in ".,:;":
            return n
    useful = [n for n in candidates if lines[n].strip().lower() not in _CRUMBS]
    # A file that is one paragraph has no title line; its title comes from the body.
    if len(useful) < 2:
        return None
    return useful[0]


def _file_date(path: Path) -> str:
    match = _FILE_DATE.search(path.name)
    if not match:
        return ""
    try:
        return parse_date("-".join(match.groups()))
    except ValueError:
        return ""


def declared_charset(data: bytes) -> str | None:
    """The codec a page names in its <meta charset>, or None when it names none Python knows."""
    declared = _META_CHARSET.search(data[:4096])
    if declared is None:
        return None
    try:
        name = codecs.lookup(declared.group(1).decode("ascii", "replace")).name
    except LookupError:
        return None
    # As browsers do (the WHATWG encoding labels): these labels mean windows-1252 on the web.
    return "cp1252" if name in ("ascii", "iso8859-1") else name


def load_html(path: Path, text: str) -> Article | LoadIssue:
    soup = BeautifulSoup(text, "lxml")
    meta = _html_meta(soup)
    values: dict[str, tuple[str, object]] = {}

    def put(name: str, key: str, value: str | None) -> None:
        if value and value.strip() and name not in values:
            values[name] = (key, value.strip())

    site = meta.get("og:site_name")
    put("title", "og:title", meta.get("og:title"))
    put("title", "twitter:title", meta.get("twitter:title"))
    if soup.title is not None:
        put("title", "title", _strip_site(soup.title.get_text(), site))
    h1 = soup.find("h1")
    if h1 is not None:
        put("title", "h1", h1.get_text(" "))
    for name in _HTML_DATE_META:
        put("published", name, meta.get(name))
    for element in soup.find_all(itemprop="datePublished"):
        put("published", "datePublished", _attr(element, "datetime") or _attr(element, "content"))
    for element in soup.find_all("time"):
        put("published", "time", _attr(element, "datetime"))
    canonical = soup.find("link", rel="canonical")
    put("url", "canonical", _attr(canonical, "href") if canonical is not None else None)
    put("url", "og:url", meta.get("og:url"))
    put("source", "og:site_name", site)
    put("source", "publisher", meta.get("publisher"))
    put("author", "author", meta.get("author"))
    put("category", "article:section", meta.get("article:section"))
    values["body"] = ("body", _html_body(soup))
    try:
        return make_article(values, {}, path, 1, fallback_date=_file_date(path))
    except BadField as bad:
        return LoadIssue(path, 1, bad.field, bad.reason)


def _attr(element: object, name: str) -> str | None:
    if not isinstance(element, Tag):
        return None
    value = element.get(name)
    return " ".join(value) if isinstance(value, list) else value


def _html_meta(soup: BeautifulSoup) -> dict[str, str]:
    """First content of each <meta> by its lower-cased property, name or itemprop."""
    found: dict[str, str] = {}
    for element in soup.find_all("meta"):
        content = _attr(element, "content")
        if not content:
            continue
        for attribute in ("property", "name", "itemprop"):
            key = _attr(element, attribute)
            if key:
                found.setdefault(key.strip().lower(), content)
    return found


def _strip_site(title: str, site: str | None) -> str:
    title = " ".join(title.split())
    if site:
        for separator in (" | ", " - ", " – ", " — "):
            suffix = separator + site.strip()
            if title.lower().endswith(suffix.lower()) and len(title) > len(suffix):
                return title[: -len(suffix)]
    return title


def _html_body(soup: BeautifulSoup) -> str:
    for element in soup.find_all(_HTML_DROP):
        element.decompose()
    container = soup.find("article") or soup.find("main") or soup.body or soup
    if not isinstance(container, Tag):
        return ""
    # Newlines in the markup are layout; only <br> breaks a line, so mark it apart.
    for br in container.find_all("br"):
        br.replace_with(_BR)
    blocks = []
    for element in container.find_all(_HTML_BLOCKS):
        # A block that holds other blocks is read through them, so nothing comes out twice.
        if element.find(_HTML_BLOCKS) is None:
            words = " ".join(element.get_text().split())
            block = "\n".join(part.strip() for part in words.split(_BR) if part.strip())
            if block:
                blocks.append(block)
    if blocks:
        return "\n\n".join(blocks)
    return container.get_text("\n").replace(_BR, "\n")
