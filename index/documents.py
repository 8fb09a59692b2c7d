"""Articles from whole files: plain text and Markdown (with front matter), and HTML pages."""

from __future__ import annotations

import codecs
import contextlib
import json
import re
from pathlib import Path

import trafilatura
from bs4 import BeautifulSoup, Tag
from lxml import etree
from trafilatura.settings import use_config

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
# The blocks of trafilatura's XML output that hold text.
_TEXT_BLOCKS = ("p", "head", "item", "quote", "row", "code")
_LD_ARTICLE_TYPES = {
    "NewsArticle",
    "Article",
    "ReportageNewsArticle",
    "AnalysisNewsArticle",
    "OpinionNewsArticle",
    "BackgroundNewsArticle",
    "ReviewNewsArticle",
    "BlogPosting",
    "Report",
}
_TRAFILATURA = use_config()
# A short item (a brief, a one-paragraph wire story) is still an article: no minimum size.
_TRAFILATURA.set("DEFAULT", "MIN_EXTRACTED_SIZE", "1")
_TRAFILATURA.set("DEFAULT", "MIN_OUTPUT_SIZE", "1")
# Its timeout uses signals, which work only in the main thread; pages are fetched in threads.
_TRAFILATURA.set("DEFAULT", "EXTRACTION_TIMEOUT", "0")
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
    values = page_values(text)
    try:
        return make_article(values, {}, path, 1, fallback_date=_file_date(path))
    except BadField as bad:
        return LoadIssue(path, 1, bad.field, bad.reason)


def page_values(text: str) -> dict[str, tuple[str, object]]:
    """A page's fields as (key it came from, value): metadata from JSON-LD, OpenGraph and meta
    tags, and the main text as extracted by trafilatura."""
    soup = BeautifulSoup(text, "lxml")
    meta = _html_meta(soup)
    linked = _json_ld_article(soup)
    values: dict[str, tuple[str, object]] = {}

    def put(name: str, key: str, value: str | None) -> None:
        if value and value.strip() and name not in values:
            values[name] = (key, value.strip())

    site = meta.get("og:site_name")
    put("title", "headline", linked.get("title"))
    put("title", "og:title", meta.get("og:title"))
    put("title", "twitter:title", meta.get("twitter:title"))
    if soup.title is not None:
        put("title", "title", _strip_site(soup.title.get_text(), site or linked.get("source")))
    h1 = soup.find("h1")
    if h1 is not None:
        put("title", "h1", h1.get_text(" "))
    put("published", "datePublished", linked.get("published"))
    for name in _HTML_DATE_META:
        put("published", name, meta.get(name))
    for element in soup.find_all(itemprop="datePublished"):
        put("published", "datePublished", _attr(element, "datetime") or _attr(element, "content"))
    for element in soup.find_all("time"):
        put("published", "time", _attr(element, "datetime"))
    canonical = soup.find("link", rel="canonical")
    put("url", "canonical", _attr(canonical, "href") if canonical is not None else None)
    put("url", "mainEntityOfPage", linked.get("url"))
    put("url", "og:url", meta.get("og:url"))
    put("source", "publisher", linked.get("source"))
    put("source", "og:site_name", site)
    put("source", "publisher", meta.get("publisher"))
    put("author", "author", linked.get("author"))
    put("author", "author", meta.get("author"))
    put("author", "article:author", meta.get("article:author"))
    put("category", "articleSection", linked.get("category"))
    put("category", "article:section", meta.get("article:section"))
    body = main_text(text)
    title = values.get("title", ("", ""))[1]
    first, _, rest = body.partition("\n\n")
    if isinstance(title, str) and normalise_title(first) == normalise_title(title):
        body = rest  # the headline is the article's title, not its first paragraph
    values["body"] = ("body", body)
    return values


def main_text(page: str) -> str:
    """The article text of an HTML page, paragraphs apart, without navigation, banners, related
    links, adverts, newsletter boxes or footers; "" when the page has none."""
    extracted = trafilatura.extract(
        page,
        output_format="xml",
        include_comments=False,
        include_tables=True,
        include_images=False,
        include_links=False,
        include_formatting=False,
        favor_precision=True,
        deduplicate=False,
        with_metadata=False,
        config=_TRAFILATURA,
    )
    if not extracted:
        return ""
    root = etree.fromstring(extracted.encode("utf-8"))
    main = root.find("main")
    if main is None:
        return ""
    for lb in main.iter("lb"):
        lb.tail = "\n" + (lb.tail or "")
    blocks = []
    for element in main.iter(*_TEXT_BLOCKS):
        # A block that holds other blocks is read through them, so nothing comes out twice.
        if any(child.tag in _TEXT_BLOCKS for child in element.iterdescendants()):
            continue
        separator = " " if element.tag == "row" else ""
        parts = element.itertext() if element.tag != "row" else _cells(element)
        text = separator.join(parts)
        lines = (" ".join(line.split()) for line in text.split("\n"))
        block = "\n".join(line for line in lines if line)
        if block:
            blocks.append(block)
    return "\n\n".join(blocks)


def _cells(row: etree._Element) -> list[str]:
    return [" ".join("".join(cell.itertext()).split()) for cell in row.iter("cell")]


def _json_ld_article(soup: BeautifulSoup) -> dict[str, str]:
    """Title, author, date, publisher, URL and section of the page's JSON-LD NewsArticle."""
    for script in soup.find_all("script", type="application/ld+json"):
        try:
            data = json.loads(script.get_text())
        except ValueError:
            continue  # a broken block says nothing; the meta tags still may
        for item in _ld_items(data):
            kinds = item.get("@type")
            kinds = kinds if isinstance(kinds, list) else [kinds]
            if not any(isinstance(kind, str) and kind in _LD_ARTICLE_TYPES for kind in kinds):
                continue
            page = item.get("mainEntityOfPage")
            return {
                "title": _ld_text(item.get("headline") or item.get("name")),
                "author": _ld_names(item.get("author")),
                "published": _ld_text(item.get("datePublished")),
                "source": _ld_names(item.get("publisher")),
                "url": _ld_text(item.get("url"))
                or _ld_text(page.get("@id") if isinstance(page, dict) else page),
                "category": _ld_names(item.get("articleSection")),
            }
    return {}


def _ld_items(data: object) -> list[dict[str, object]]:
    if isinstance(data, list):
        return [found for item in data for found in _ld_items(item)]
    if not isinstance(data, dict):
        return []
    return [data, *_ld_items(data.get("@graph"))]


def _ld_text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _ld_names(value: object) -> str:
    """ "A, B" from a name, a {"name": ...} object or a list of either."""
    items = value if isinstance(value, list) else [value]
    names = [item.get("name") if isinstance(item, dict) else item for item in items]
    return ", ".join(name.strip() for name in names if isinstance(name, str) and name.strip())


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
