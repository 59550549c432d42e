"""axe-core (npm ``axe-core`` in ``node_modules``) run inside a Playwright page: its serious and critical findings.

The script is evaluated through the DevTools protocol rather than added as a ``<script>`` tag, so
it also runs on pages whose Content-Security-Policy forbids inline scripts (the console and the
dashboard allow ``script-src 'self'`` only) without loosening that policy for the test.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from playwright.async_api import Page

from devhost.processes import ROOT

AXE_PATH = ROOT / "node_modules" / "axe-core" / "axe.min.js"

RUN = """async (include) => {
    const context = include ? { include: include.map((selector) => [selector]) } : document;
    const r = await axe.run(context, { resultTypes: ["violations"] });
    return r.violations.filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => ({ id: v.id, impact: v.impact,
                     nodes: v.nodes.map((n) => n.target.join(" ") + ": " + n.failureSummary) }));
}"""


@cache
def _source() -> str:
    """The axe script; a missing ``node_modules`` fails loudly (``npm ci`` installs it)."""
    return AXE_PATH.read_text()


async def serious_violations(page: Page, include: list[str] | None = None) -> list[dict[str, Any]]:
    """axe's serious and critical findings in the page (or only inside the ``include`` selectors)."""
    if not await page.evaluate("() => !!window.axe"):
        await page.evaluate(_source() + "\n;undefined")  # a script, not a function: evaluated as is
    return list(await page.evaluate(RUN, include))
