"""The bot: providers behind one interface (offline, OpenAI-compatible, Azure OpenAI), grounding, citations, cost."""

from __future__ import annotations

from shared.llm.grounding import Excerpt, Grounding, build_grounding, ground
from shared.llm.handoff import asks_for_human
from shared.llm.knowledge import KnowledgeBase, Passage, ScoredPassage, get_knowledge, load_knowledge, top_passages
from shared.llm.offline import OfflineProvider
from shared.llm.openai_provider import OpenAIProvider
from shared.llm.provider import Provider, get_provider, make_provider
from shared.llm.settings import LlmSettings, get_llm_settings
from shared.llm.types import BotReply, ChatTurn, Citation, ReplyStream, cost_micro_usd

__all__ = [
    "BotReply",
    "ChatTurn",
    "Citation",
    "Excerpt",
    "Grounding",
    "KnowledgeBase",
    "LlmSettings",
    "OfflineProvider",
    "OpenAIProvider",
    "Passage",
    "Provider",
    "ReplyStream",
    "ScoredPassage",
    "asks_for_human",
    "build_grounding",
    "cost_micro_usd",
    "get_knowledge",
    "get_llm_settings",
    "get_provider",
    "ground",
    "load_knowledge",
    "make_provider",
    "top_passages",
]
