"""The demo deployment's sample knowledge base: a small outdoor shop's help pages and FAQ.

``make dev`` adds these through the product's own API the first time it starts on an empty
knowledge base, so a new user asks the demo page's widget "how long does shipping take?" and
gets a grounded answer that cites its page. It never touches a knowledge base that has sources,
and remembers that it seeded (in the local Storage folder), so sources an owner deletes stay
deleted. ``DEV_SEED_KNOWLEDGE=false`` turns it off.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import httpx

SAMPLES = Path(__file__).resolve().parent / "sample_knowledge"
_TITLE = re.compile(r"^#\s+(.+)$", re.MULTILINE)


def sample_sources() -> list[dict[str, Any]]:
    """The sample sources as ``POST /api/knowledge/sources`` bodies, in a stable order."""
    bodies: list[dict[str, Any]] = []
    for path in sorted(SAMPLES.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        match = _TITLE.search(text)
        bodies.append({"type": "text", "title": match.group(1) if match else path.stem, "text": text})
    faq = json.loads((SAMPLES / "faq.json").read_text(encoding="utf-8"))
    bodies.append({"type": "qa", "title": faq["title"], "pairs": faq["pairs"]})
    return bodies


def seed_knowledge(base: str, admin_key: str, marker: Path) -> str:
    """Add the samples when the knowledge base is empty and was never seeded; what happened, in words."""
    if os.environ.get("DEV_SEED_KNOWLEDGE", "").lower() in ("0", "false", "no"):
        return "sample knowledge off (DEV_SEED_KNOWLEDGE=false)"
    if marker.exists():
        return "sample knowledge added before"
    headers = {"Authorization": f"Bearer {admin_key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        existing = client.get("/knowledge/sources", params={"limit": 1})
        existing.raise_for_status()
        if existing.json()["sources"]:
            return "knowledge base has sources; no samples added"
        for body in sample_sources():
            # One key per sample: a start interrupted half-way and run again adds each once.
            key = "sample-" + re.sub(r"[^a-z0-9]+", "-", body["title"].lower()).strip("-")
            client.post("/knowledge/sources", json=body, headers={"Idempotency-Key": key}).raise_for_status()
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("seeded\n", encoding="utf-8")
    return f"added {len(sample_sources())} sample knowledge sources (Contoso Outdoor)"
