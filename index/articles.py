"""The Article record: stable ids, content hashes, and normalising of text, URLs and dates."""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_TRACKING_PARAMS = re.compile(r"^(utm_\w+|fbclid|gclid|mc_cid|mc_eid|ref|cmpid|ocid)$", re.I)
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n\s*\n\s*(\n\s*)+")


@dataclass(frozen=True, slots=True)
class Article:
    """One news article, normalised; `id` is stable across re-ingests."""

    id: str
    title: str
    body: str
    source: str = ""
    published: str = ""  # ISO date, YYYY-MM-DD, or "" when unknown
    url: str = ""
    author: str = ""
    category: str = ""
    origin: str = ""  # file:line it came from, for messages
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        """Changes when anything that is indexed changes."""
        parts = (self.title, self.body, self.source, self.published, self.url, self.author)
        return _sha1("\x1f".join((*parts, self.category)))[:16]

    @property
    def body_hash(self) -> str:
        """Same for two copies of the same text, whatever their ids."""
        return _sha1(" ".join(self.body.split()).lower())[:16]

    @property
    def date_int(self) -> int:
        """YYYYMMDD as an integer for range filters; 0 when the date is unknown."""
        return int(self.published.replace("-", "")) if self.published else 0


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def normalise_text(text: str) -> str:
    """Unicode NFC, unescaped entities, single spaces, at most one blank line between paragraphs."""
    text = unicodedata.normalize("NFC", html.unescape(text))
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "\n".join(_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


def normalise_title(title: str) -> str:
    return " ".join(normalise_text(title).split())


def canonical_url(url: str) -> str:
    """Lower-case scheme and host, no fragment, no tracking parameters, no trailing slash."""
    url = url.strip()
    if not url:
        return ""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return url
    query = urlencode(
        [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not _TRACKING_PARAMS.match(k)
        ]
    )
    path = parts.path.rstrip("/") or "/"
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, query, ""))


def article_id(*, url: str, title: str, body: str, given: str = "") -> str:
    """The canonical URL's hash, else the given id, else a hash of the content."""
    if url:
        return "u" + _sha1(canonical_url(url))[:15]
    if given:
        return "i" + _sha1(given.strip())[:15]
    return "h" + _sha1(normalise_title(title) + "\n" + " ".join(body.split()))[:15]


_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for name in names
}
MONTH_PATTERN = "|".join(sorted(_MONTHS, key=len, reverse=True))
_WRITTEN_DATE = re.compile(
    rf"\b(?:(\d{{1,2}})\s+({MONTH_PATTERN})\.?,?\s+(\d{{4}})"
    rf"|({MONTH_PATTERN})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}}))\b",
    re.I,
)


def month_number(name: str) -> int | None:
    return _MONTHS.get(name.lower().rstrip("."))


def parse_date(value: object) -> str:
    """ISO date (YYYY-MM-DD) from ISO strings, epoch numbers or written dates; "" if none.

    Raises ValueError for a value that is present but cannot be read as a date.
    """
    if value is None or value == "":
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        raise ValueError(f"not a date: {value!r}")
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value
        return datetime.fromtimestamp(seconds, tz=UTC).date().isoformat()
    if not isinstance(value, str):
        raise ValueError(f"not a date: {value!r}")
    text = value.strip()
    iso = re.match(r"^(\d{4})-(\d{1,2})-(\d{1,2})", text) or re.match(
        r"^(\d{4})/(\d{1,2})/(\d{1,2})", text
    )
    if iso:
        return _checked(int(iso[1]), int(iso[2]), int(iso[3]), value)
    if re.fullmatch(r"\d{8}", text):
        return _checked(int(text[:4]), int(text[4:6]), int(text[6:]), value)
    written = _WRITTEN_DATE.search(text)
    if written:
        if written[1]:
            day, month, year = int(written[1]), month_number(written[2]), int(written[3])
        else:
            month, day, year = month_number(written[4]), int(written[5]), int(written[6])
        return _checked(year, month or 0, day, value)
    try:
        from email.utils import parsedate_to_datetime

        return parsedate_to_datetime(text).date().isoformat()
    except (TypeError, ValueError, IndexError):
        pass
    raise ValueError(f"not a date: {value!r}")


def _checked(year: int, month: int, day: int, original: object) -> str:
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        raise ValueError(f"not a date: {original!r}") from None
