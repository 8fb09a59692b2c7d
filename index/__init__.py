"""Build side: load articles, normalise, dedupe, chunk, embed, write to Chroma + keyword index.

The layers above use `Index` (ingest, delete, check, list) and `IndexSettings`."""

from index.archive import ArticleInfo, CorpusSummary, Index
from index.articles import Article
from index.config import IndexSettings
from index.errors import ConfigError, LoadIssue, NewsAssistantError, StoreUnavailableError
from index.pipeline import IngestReport

__all__ = [
    "Article",
    "ArticleInfo",
    "ConfigError",
    "CorpusSummary",
    "Index",
    "IndexSettings",
    "IngestReport",
    "LoadIssue",
    "NewsAssistantError",
    "StoreUnavailableError",
]
