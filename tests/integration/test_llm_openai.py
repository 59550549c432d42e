"""The real ``openai`` SDK against a fake OpenAI-compatible server: usage, cost, streaming, retries, outages."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from devhost.processes import ROOT, free_port
from shared.llm import (
    ChatTurn,
    Grounding,
    KnowledgeBase,
    LlmSettings,
    OpenAIProvider,
    build_grounding,
    cost_micro_usd,
    load_knowledge,
)
from tests.fakes.openai_server import FakeOpenAI, hang, ok, status
from tests.fixtures.llm import LLM_KNOWLEDGE

MakeProvider = Callable[..., OpenAIProvider]


def faq(question: str) -> Grounding:
    """The excerpts of the test FAQ (the knowledge setting) for ``question``."""
    return build_grounding(question, knowledge=KnowledgeBase(LLM_KNOWLEDGE))


async def test_reply_carries_usage_model_and_cost(fake_openai: FakeOpenAI, llm_provider: MakeProvider) -> None:
    fake_openai.script(ok("Standard shipping takes 3 to 5 business days.", prompt_tokens=1200, completion_tokens=80))
    provider = llm_provider(model="gpt-4o-mini", temperature=0.2, max_tokens=321)
    reply = await provider.reply([], "How long does shipping take?", faq("How long does shipping take?"))
    assert reply.text == "Standard shipping takes 3 to 5 business days."
    assert (reply.prompt_tokens, reply.completion_tokens) == (1200, 80)
    assert reply.model == "gpt-4o-mini-2024-07-18" and reply.provider == "openai"
    assert not reply.failed and not reply.usage_estimated and reply.latency_ms >= 0
    # 1200 * 0.00015 + 80 * 0.0006 USD = 228 micro-dollars, at the dated model's base price
    assert cost_micro_usd(reply.model, reply.prompt_tokens, reply.completion_tokens, provider.settings.prices) == 228
    (request,) = fake_openai.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test-key"
    body = request.json()
    assert (body["model"], body["temperature"], body["max_tokens"]) == ("gpt-4o-mini", 0.2, 321)
    assert "stream" not in body


async def test_system_prompt_is_grounded_and_history_is_capped(
    fake_openai: FakeOpenAI, llm_provider: MakeProvider
) -> None:
    provider = llm_provider(system_prompt="You are Acme's helper.", history_turns=4)
    history = [ChatTurn("user" if i % 2 == 0 else "assistant", f"turn {i}") for i in range(10)]
    await provider.reply(history, "What is your return policy?", faq("What is your return policy?"))
    messages = fake_openai.requests[0].json()["messages"]
    system = messages[0]
    assert system["role"] == "system" and system["content"].startswith("You are Acme's helper.")
    assert "You can return any unused item within 30 days for a full refund." in system["content"]
    assert "Monday to Friday" not in system["content"]  # irrelevant passages stay out of the prompt
    assert [m["content"] for m in messages[1:]] == [
        "turn 6",
        "turn 7",
        "turn 8",
        "turn 9",
        "What is your return policy?",
    ]
    assert [m["role"] for m in messages[1:]] == ["user", "assistant", "user", "assistant", "user"]


async def test_unknown_question_tells_the_model_there_is_no_knowledge(
    fake_openai: FakeOpenAI, llm_provider: MakeProvider
) -> None:
    await llm_provider().reply(
        [], "Can you repair my quantum flux capacitor?", faq("Can you repair my quantum flux capacitor?")
    )
    system = fake_openai.requests[0].json()["messages"][0]["content"]
    assert "Nothing in the knowledge base matches" in system and "3 to 5 business days" not in system
    assert "[no-answer]" in system  # how the model says so, which records the question as a content gap


async def test_stream_deltas_make_the_full_text_and_carry_usage(
    fake_openai: FakeOpenAI, llm_provider: MakeProvider
) -> None:
    text = "You can return any unused item within 30 days for a full refund."
    fake_openai.script(ok(text, prompt_tokens=900, completion_tokens=15))
    stream = llm_provider().stream([], "What is your return policy?", faq("What is your return policy?"))
    deltas = [delta async for delta in stream]
    assert len(deltas) == len(text.split())  # one per word, as the fake sends them
    assert "".join(deltas) == text
    assert stream.reply is not None and stream.reply.text == text
    assert (stream.reply.prompt_tokens, stream.reply.completion_tokens) == (900, 15)
    assert not stream.reply.usage_estimated and not stream.reply.failed
    body = fake_openai.requests[0].json()
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


async def test_stream_without_usage_estimates_and_says_so(fake_openai: FakeOpenAI, llm_provider: MakeProvider) -> None:
    fake_openai.script(ok("Our team answers on weekdays from nine to five.", usage=False))
    stream = llm_provider().stream([], "When are you open?", faq("When are you open?"))
    assert "".join([d async for d in stream]) == "Our team answers on weekdays from nine to five."
    assert stream.reply is not None and stream.reply.usage_estimated
    assert stream.reply.completion_tokens > 0 and stream.reply.prompt_tokens > 0


async def test_rate_limit_is_retried_after_the_servers_retry_after(
    fake_openai: FakeOpenAI, llm_provider: MakeProvider
) -> None:
    fake_openai.script(status(429, retry_after="1"), ok("Back again."))
    started = time.perf_counter()
    reply = await llm_provider(max_retries=2).reply(
        [], "How long does shipping take?", faq("How long does shipping take?")
    )
    elapsed = time.perf_counter() - started
    assert reply.text == "Back again." and not reply.failed
    assert len(fake_openai.requests) == 2
    # The SDK's own first backoff is at most 0.5 s, so a wait of 1 s means Retry-After was honoured.
    assert elapsed >= 0.95


async def test_server_errors_are_retried_then_answered_gracefully(
    fake_openai: FakeOpenAI, llm_provider: MakeProvider
) -> None:
    quick = {"retry-after-ms": "10"}
    fake_openai.script(status(500, **quick), status(503, **quick), status(502, **quick), ok("never reached"))
    reply = await llm_provider(max_retries=2).reply(
        [], "How long does shipping take?", faq("How long does shipping take?")
    )
    assert len(fake_openai.requests) == 3  # one try and two retries, then it gives up
    assert reply.failed and not reply.wants_human
    assert "person" in reply.text and (reply.prompt_tokens, reply.completion_tokens) == (0, 0)


async def test_a_hanging_llm_gives_a_graceful_reply_in_bounded_time(
    fake_openai: FakeOpenAI, llm_provider: MakeProvider
) -> None:
    fake_openai.script(hang(30))
    started = time.perf_counter()
    reply = await llm_provider(timeout_seconds=0.5, max_retries=0).reply(
        [], "How long does shipping take?", faq("How long does shipping take?")
    )
    assert time.perf_counter() - started < 5
    assert reply.failed and "person" in reply.text and reply.prompt_tokens == 0
    assert len(fake_openai.requests) == 1


async def test_the_deadline_bounds_retries_of_timeouts(fake_openai: FakeOpenAI, llm_provider: MakeProvider) -> None:
    fake_openai.script(*[hang(30) for _ in range(8)])
    started = time.perf_counter()
    provider = llm_provider(timeout_seconds=0.4, max_retries=7, deadline_seconds=1.0)
    reply = await provider.reply([], "How long does shipping take?", faq("How long does shipping take?"))
    assert time.perf_counter() - started < 3
    assert reply.failed and len(fake_openai.requests) < 8


async def test_unreachable_endpoint_gives_a_graceful_reply(llm_provider: MakeProvider) -> None:
    provider = llm_provider(openai_base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=1)
    reply = await provider.reply([], "How long does shipping take?", faq("How long does shipping take?"))
    assert reply.failed and "person" in reply.text
    stream = provider.stream([], "How long does shipping take?", faq("How long does shipping take?"))
    deltas = [delta async for delta in stream]
    assert stream.reply is not None and stream.reply.failed and "".join(deltas) == stream.reply.text


async def test_a_stream_cut_short_keeps_what_was_said_and_apologises(
    fake_openai: FakeOpenAI, llm_provider: MakeProvider
) -> None:
    fake_openai.script(ok("one two three four five six", stall_after=2))
    stream = llm_provider(timeout_seconds=0.5).stream(
        [], "How long does shipping take?", faq("How long does shipping take?")
    )
    deltas = [delta async for delta in stream]
    # A trailing space waits for the next piece (a citation marker may follow it, and goes with it).
    assert deltas[:2] == ["one", " two"]
    assert stream.reply is not None and stream.reply.failed and stream.reply.usage_estimated
    assert "".join(deltas) == stream.reply.text  # the visitor saw exactly what is stored
    assert stream.reply.text.startswith("one two") and "person" in stream.reply.text


async def test_stream_errors_before_any_text_give_one_graceful_delta(
    fake_openai: FakeOpenAI, llm_provider: MakeProvider
) -> None:
    fake_openai.script(status(500))
    stream = llm_provider().stream([], "How long does shipping take?", faq("How long does shipping take?"))
    deltas = [delta async for delta in stream]
    assert len(deltas) == 1 and stream.reply is not None
    assert stream.reply.failed and deltas[0] == stream.reply.text and "person" in deltas[0]


async def test_azure_flavour_uses_the_deployment_path_api_version_and_api_key(
    fake_openai: FakeOpenAI, llm_provider: MakeProvider
) -> None:
    provider = llm_provider(provider="azure", azure_openai_api_version="2024-10-21")
    reply = await provider.reply([], "When are you open?", faq("When are you open?"))
    assert reply.provider == "azure" and not reply.failed and reply.prompt_tokens > 0
    (request,) = fake_openai.requests
    assert request.path == "/openai/deployments/support-bot/chat/completions?api-version=2024-10-21"
    assert request.headers["api-key"] == "azure-test-key" and "authorization" not in request.headers
    stream = provider.stream([], "When are you open?", faq("When are you open?"))
    assert "".join([d async for d in stream]) == reply.text
    assert fake_openai.requests[1].path.startswith("/openai/deployments/support-bot/chat/completions?")


async def test_a_request_for_a_human_costs_no_llm_call(fake_openai: FakeOpenAI, llm_provider: MakeProvider) -> None:
    provider = llm_provider()
    reply = await provider.reply([], "Please let me talk to a real person", faq("Please let me talk to a real person"))
    stream = provider.stream([], "connect me with an agent", faq("connect me with an agent"))
    deltas = [delta async for delta in stream]
    assert reply.wants_human and stream.reply is not None and stream.reply.wants_human
    assert "".join(deltas) == stream.reply.text
    assert fake_openai.requests == []


async def test_an_injected_httpx_client_is_used(fake_openai: FakeOpenAI, llm_provider: MakeProvider) -> None:
    seen: list[str] = []

    async def note(request: httpx.Request) -> None:
        seen.append(request.url.path)

    provider = llm_provider(http_client=httpx.AsyncClient(event_hooks={"request": [note]}))
    assert not (await provider.reply([], "How long does shipping take?", faq("How long does shipping take?"))).failed
    assert seen == ["/v1/chat/completions"]


def test_importing_the_bot_does_not_import_the_openai_sdk() -> None:
    # Cold start: the SDK costs about a second to import, so only a real LLM call may load it.
    code = (
        "import asyncio, sys\n"
        "from shared.llm import LlmSettings, build_grounding, make_provider\n"
        "bot = make_provider(settings=LlmSettings(provider='offline'))\n"
        "asyncio.run(bot.reply([], 'a?', build_grounding('a?')))\n"
        "make_provider(settings=LlmSettings(provider='openai', openai_api_key='k'))\n"
        "print('openai' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_knowledge_file_is_read_and_an_unreadable_one_refused(tmp_path: Path) -> None:
    faq = tmp_path / "faq.md"
    faq.write_text("# Warranty\nEvery product has a two-year warranty.\n", encoding="utf-8")
    knowledge = load_knowledge(LlmSettings(knowledge_text="Q: Hi?\nA: Hello.", knowledge_file=str(faq)))
    assert [p.text for p in knowledge.passages] == ["Hello.", "Every product has a two-year warranty."]
    assert isinstance(knowledge, KnowledgeBase)
    with pytest.raises(ValueError, match="KNOWLEDGE_FILE"):
        load_knowledge(LlmSettings(knowledge_file=str(tmp_path / "missing.md")))


def test_fake_refuses_unknown_paths(fake_openai: FakeOpenAI) -> None:
    with httpx.Client(base_url=fake_openai.url) as client:
        assert client.post("/v1/completions", json={}).status_code == 404
        assert client.post("/openai/deployments/x/chat/completions", json={}).status_code == 404  # no api-version
        answered = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
    assert answered.status_code == 200 and json.loads(answered.text)["usage"]["total_tokens"] > 0


async def test_a_stream_abandoned_early_is_closed_and_the_client_stays_usable(
    fake_openai: FakeOpenAI, llm_provider: MakeProvider
) -> None:
    fake_openai.script(ok("one two three four five six"))
    provider = llm_provider()
    stream = provider.stream([], "How long does shipping take?", faq("How long does shipping take?"))
    assert await stream.__anext__() == "one"  # its trailing space waits for the next word
    await stream.aclose()  # the visitor went away
    assert stream.reply is None
    assert (await provider.reply([], "When are you open?", faq("When are you open?"))).failed is False
    assert len(fake_openai.requests) == 2
