"""The bundled data, installed as the package `news_assistant_data`: the demo corpus and the
MultiHop-RAG benchmark (see README.md beside this file)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent
DEMO_DIR = ROOT / "demo"
MULTIHOP_DIR = ROOT / "multihop-rag"
