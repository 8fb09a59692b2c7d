"""Query side: retrieve, fuse, rank, answer, cite, verify, and keep chat memory.

from assistant import Engine, Settings
engine = Engine(Settings(storage_dir="storage"))
answer = engine.ask("What did Lavrov say about NATO expansion?")
"""

from assistant.answer import Answer, Citation, ShortAnswer, StreamEvent
from assistant.config import Settings
from assistant.engine import Engine
from assistant.llm import LLMError
from assistant.retrieve import Filters, Passage

__all__ = [
    "Answer",
    "Citation",
    "Engine",
    "Filters",
    "LLMError",
    "Passage",
    "Settings",
    "ShortAnswer",
    "StreamEvent",
]
