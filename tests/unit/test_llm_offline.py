"""The offline bot, handoff detection, cost accounting and provider choice (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import pytest

from shared.config import get_settings
from shared.llm import (
    BotReply,
    ChatTurn,
    KnowledgeBase,
    LlmSettings,
    OfflineProvider,
    OpenAIProvider,
    asks_for_human,
    build_grounding,
    cost_micro_usd,
    get_knowledge,
    get_llm_settings,
    get_provider,
    make_provider,
)
from shared.llm.settings import DEFAULT_PRICES, parse_prices
from tests.fixtures.llm import LLM_KNOWLEDGE

_LLM_ENV = (
    "LLM_PROVIDER",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_DEPLOYMENT",
    "LLM_PRICES",
    "KNOWLEDGE_TEXT",
    "KNOWLEDGE_FILE",
)


def _settings(**values: Any) -> LlmSettings:
    """LlmSettings from plain values (keys as strings, as app settings give them)."""
    return LlmSettings(**values)


@pytest.fixture(autouse=True)
def clean_llm_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No LLM app settings from the environment leak into these tests; caches start and end empty."""
    for name in _LLM_ENV:
        monkeypatch.delenv(name, raising=False)
    caches = (get_settings, get_knowledge, get_provider)  # the LLM settings are a section of Settings
    for cached in caches:
        cached.cache_clear()
    yield
    for cached in caches:
        cached.cache_clear()


Ask = Callable[..., Awaitable[BotReply]]
SETTING_CITATION = {"sourceId": "knowledge-setting", "title": "Knowledge base", "url": None}


@pytest.fixture()
def bot() -> Ask:
    """``bot(question, history=())``: the offline bot's reply, grounded in the test FAQ (the knowledge setting)."""
    provider, knowledge = OfflineProvider(), KnowledgeBase(LLM_KNOWLEDGE)

    async def ask(question: str, history: Sequence[ChatTurn] = ()) -> BotReply:
        return await provider.reply(history, question, build_grounding(question, history, knowledge=knowledge))

    return ask


async def test_offline_bot_answers_from_the_knowledge_for_free_and_cites_it(bot: Ask) -> None:
    reply = await bot("How long does shipping take?")
    assert reply.text == "Standard shipping takes 3 to 5 business days; express shipping arrives the next day."
    assert (reply.prompt_tokens, reply.completion_tokens, reply.model, reply.provider) == (0, 0, "offline", "offline")
    assert not reply.failed and not reply.wants_human and reply.gap == ""
    assert [c.public() for c in reply.citations] == [SETTING_CITATION]
    assert cost_micro_usd(reply.model, reply.prompt_tokens, reply.completion_tokens, DEFAULT_PRICES) == 0
    assert "full refund" in (await bot("can I get a REFUND?")).text


async def test_offline_bot_says_honestly_when_it_does_not_know(bot: Ask) -> None:
    reply = await bot("Can you repair my quantum flux capacitor?")
    assert "don't know" in reply.text and "person" in reply.text
    assert "shipping" not in reply.text.lower()  # nothing made up from an unrelated passage
    assert not reply.wants_human and not reply.failed
    assert reply.citations == [] and reply.gap == "no-match"
    empty = await OfflineProvider().reply([], "How long does shipping take?", build_grounding("How long?"))
    assert "don't know" in empty.text and empty.citations == []


async def test_offline_bot_does_not_answer_from_a_partial_match(bot: Ask) -> None:
    # Half the question's topic words (ship, canada) is below KNOWLEDGE_MIN_SCORE (0.6 by default).
    reply = await bot("Do you ship to Canada?")
    assert "don't know" in reply.text and "3 to 5 business days" not in reply.text
    assert reply.citations == [] and reply.gap == "no-match"
    lenient = OfflineProvider()
    grounding = build_grounding("Do you ship to Canada?", knowledge=KnowledgeBase(LLM_KNOWLEDGE), min_score=0.5)
    assert "3 to 5 business days" in (await lenient.reply([], "Do you ship to Canada?", grounding)).text


async def test_offline_bot_greets_and_thanks(bot: Ask) -> None:
    assert (await bot("Hello there!")).text.startswith("Hello!")
    assert (await bot("Bonjour")).text.startswith("Hello!")
    thanks = await bot("thanks a lot")
    assert thanks.text.startswith("You're welcome") and thanks.gap == "" and thanks.citations == []
    assert "don't know" in (await bot("hello, my flux capacitor broke")).text  # not just a greeting


async def test_offline_bot_does_not_guess_from_earlier_turns(bot: Ask) -> None:
    history = [ChatTurn("user", "How long does shipping take?"), ChatTurn("assistant", "3 to 5 days.")]
    unrelated = await bot("Can you repair my quantum flux capacitor?", history)
    assert "don't know" in unrelated.text


async def test_offline_bot_hands_off_when_asked(bot: Ask) -> None:
    reply = await bot("Can I talk to a real person?")
    assert reply.wants_human and "person" in reply.text and reply.prompt_tokens == 0


async def test_offline_stream_deltas_make_the_reply(bot: Ask) -> None:
    question = "What is your return policy?"
    grounding = build_grounding(question, knowledge=KnowledgeBase(LLM_KNOWLEDGE))
    stream = OfflineProvider().stream([], question, grounding)
    deltas = [delta async for delta in stream]
    assert len(deltas) > 1
    assert isinstance(stream.reply, BotReply)
    assert "".join(deltas) == stream.reply.text == "You can return any unused item within 30 days for a full refund."


@pytest.mark.parametrize(
    "text",
    [
        "talk to a person",
        "Can I speak with someone from your team?",
        "I want to TALK TO A HUMAN",
        "I'd like a real person please",
        "connect me with an agent",
        "Put me through to a representative",
        "agent",
        "Human please!",
        "live agent",
        "Je voudrais parler à un conseiller",
        "PARLER A QUELQU'UN",
        "Ich möchte mit einem Menschen sprechen",
        "¿Puedo hablar con una persona?",
        "I don't know, can I talk to a person?",
    ],
)
def test_asks_for_human_detects_requests(text: str) -> None:
    assert asks_for_human(text)


@pytest.mark.parametrize(
    "text",
    [
        "How long does shipping take?",
        "Are you a human?",
        "I don't want to talk to a person, just answer",
        "I need someone to explain the invoice",  # "someone" alone is not a handoff request
        "My travel agency booked it",
        "What is the agenda?",
        "",
    ],
)
def test_asks_for_human_ignores_other_messages(text: str) -> None:
    assert not asks_for_human(text)


def test_cost_is_integer_micro_dollars_from_the_price_table() -> None:
    prices = {
        "gpt-4o-mini": {"prompt": 0.00015, "completion": 0.0006},
        "gpt-4o": {"prompt": 0.0025, "completion": 0.01},
    }
    assert cost_micro_usd("gpt-4o-mini", 1000, 1000, prices) == 150 + 600
    assert cost_micro_usd("gpt-4o", 1234, 567, prices) == 3085 + 5670
    assert cost_micro_usd("gpt-4o-mini", 1, 0, prices) == 0  # 0.15 micro-dollars rounds down
    assert cost_micro_usd("gpt-4o-mini", 4, 0, prices) == 1  # 0.6 rounds up


def test_cost_matches_dated_model_names_to_the_longest_prefix() -> None:
    prices = parse_prices("")
    assert cost_micro_usd("gpt-4o-mini-2024-07-18", 1000, 0, prices) == 150
    assert cost_micro_usd("gpt-4o-2024-08-06", 1000, 0, prices) == 2500
    assert cost_micro_usd("GPT-4.1-MINI", 1000, 1000, prices) == 400 + 1600
    assert cost_micro_usd("my-own-model", 1000, 1000, prices) == 0  # unknown: logged, counted as free
    assert cost_micro_usd("gpt-4o-minimal", 1000, 0, {"gpt-4o-mini": {"prompt": 1.0, "completion": 1.0}}) == 0


def test_llm_prices_merge_over_the_defaults_and_bad_ones_are_refused() -> None:
    settings = LlmSettings(prices_json='{"My-Model": {"prompt": 0.001, "completion": 0.002}}')
    assert settings.prices["my-model"] == {"prompt": 0.001, "completion": 0.002}
    assert settings.prices["gpt-4o-mini"] == DEFAULT_PRICES["gpt-4o-mini"]
    for bad in ("not json", "[1]", '{"m": {"prompt": 1}}', '{"m": {"prompt": -1, "completion": 1}}'):
        broken = LlmSettings(prices_json=bad)
        assert broken.prices_error and broken.prices == DEFAULT_PRICES  # cost accounting goes on
        with pytest.raises(ValueError, match="LLM_PRICES"):
            make_provider(settings=broken)


def test_auto_provider_follows_the_keys_that_are_set() -> None:
    assert _settings().resolved_provider == "offline"
    assert _settings(openai_api_key="sk-x").resolved_provider == "openai"
    assert _settings(openai_base_url="http://localhost:11434/v1").resolved_provider == "openai"
    azure = _settings(azure_openai_endpoint="https://x.openai.azure.com", azure_openai_api_key="k", openai_api_key="s")
    assert azure.resolved_provider == "azure"
    assert _settings(azure_openai_endpoint="https://x.openai.azure.com").resolved_provider == "offline"
    assert _settings(provider="OFFLINE", openai_api_key="sk-x").resolved_provider == "offline"


def test_settings_read_app_settings_and_never_show_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret")
    monkeypatch.setenv("LLM_MODEL", "gpt-4.1-mini")
    monkeypatch.setenv("LLM_TEMPERATURE", "0.7")
    settings = get_llm_settings()
    assert (settings.model, settings.temperature, settings.max_tokens) == ("gpt-4.1-mini", 0.7, 500)
    assert settings.openai_api_key.get_secret_value() == "sk-very-secret"
    assert "sk-very-secret" not in repr(settings) and "sk-very-secret" not in str(settings.describe())


def test_make_provider_builds_the_chosen_provider_without_calling_it() -> None:
    assert isinstance(make_provider(settings=_settings()), OfflineProvider)
    openai = make_provider(settings=_settings(openai_api_key="sk-x"))
    assert isinstance(openai, OpenAIProvider) and openai.name == "openai"
    azure = make_provider(
        settings=_settings(azure_openai_endpoint="https://x.openai.azure.com", azure_openai_api_key="k"),
    )
    assert isinstance(azure, OpenAIProvider) and azure.name == "azure" and azure.deployment == "gpt-4o-mini"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"provider": "azure"}, "AZURE_OPENAI_ENDPOINT"),
        ({"provider": "azure", "azure_openai_endpoint": "https://x.openai.azure.com"}, "AZURE_OPENAI_API_KEY"),
        ({"provider": "azure", "azure_openai_endpoint": "x.openai.azure.com", "azure_openai_api_key": "k"}, "URL"),
        ({"provider": "openai"}, "OPENAI_API_KEY"),
        ({"provider": "openai", "openai_base_url": "localhost:8080"}, "OPENAI_BASE_URL"),
        ({"provider": "claude"}, "LLM_PROVIDER"),
    ],
)
def test_make_provider_refuses_bad_config(values: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_provider(settings=_settings(**values))


def test_get_provider_is_cached_and_falls_back_to_offline_on_bad_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_PROVIDER", "azure")  # no endpoint: invalid
    monkeypatch.setenv("KNOWLEDGE_TEXT", "Q: Do you deliver?\\nA: Yes, everywhere.")
    provider = get_provider()
    assert isinstance(provider, OfflineProvider)
    assert get_provider() is provider
    assert get_knowledge().passages[0].text == "Yes, everywhere."
