// The admin dashboard: sign-in, cost chart and totals, costly sessions, search, transcripts, keys.
// Every piece of stored text reaches the page through textContent (or text nodes), never innerHTML.
(() => {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const PAGE = 20;
  const state = { csrf: "", window: "24h", chart: null, sessionCursors: [null], sessionPage: 0,
    searchQuery: "", searchCursor: null, transcriptId: "", transcriptAfter: null };

  class SignedOut extends Error {}

  async function api(path, { method = "GET", body } = {}) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") {
      headers["Content-Type"] = "application/json";
      if (state.csrf) headers["X-CSRF-Token"] = state.csrf;
    }
    const response = await fetch("/api" + path, {
      method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
    });
    const type = response.headers.get("content-type") || "";
    const data = type.includes("json") ? await response.json() : null;
    if (response.status === 401 && path !== "/ops/signin") {
      showSignIn();
      throw new SignedOut("signed out");
    }
    if (!response.ok) throw new Error((data && (data.detail || data.title)) || response.statusText);
    return data;
  }

  function report(error) {
    if (error instanceof SignedOut) return;
    const box = $("error");
    box.textContent = error.message || String(error);
    box.hidden = false;
    setTimeout(() => { box.hidden = true; }, 6000);
  }

  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (key === "text") node.textContent = value;
      else if (key === "onclick") node.addEventListener("click", value);
      else node.setAttribute(key, value);
    }
    for (const child of children) node.append(child);
    return node;
  }

  // Statuses as people say them (the API's codes stay in the API).
  const STATUS_LABELS = { open: "With the bot", human_requested: "Waiting for a person", claimed: "With an agent",
    closed: "Closed" };
  const statusLabel = (code) => STATUS_LABELS[code] || String(code || "");

  const money = (usd) => "$" + Number(usd || 0).toFixed(usd >= 100 ? 2 : 4);
  const count = (n) => Number(n || 0).toLocaleString();
  const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");

  // --- views: Overview here; each other view is a file of its own (dashboard-<view>.js) that calls
  // SupportDesk.register(name, { show }) and whose show() runs whenever its tab is opened. -------------

  const views = {};
  window.SupportDesk = { api, el, report, when, count, money, statusLabel, STATUS_LABELS, csrf: () => state.csrf, signedOut: () => showSignIn(),
    register(name, view) {
      views[name] = view;
      const panel = document.querySelector(`[data-view-panel="${CSS.escape(name)}"]`);
      if (panel && !panel.hidden && !$("app").hidden) Promise.resolve(view.show()).catch(report);
    } };

  function showView(name) {
    const known = document.querySelector(`[data-view-panel="${CSS.escape(name)}"]`) ? name : "overview";
    document.querySelectorAll("[data-view-panel]").forEach((panel) => { panel.hidden = panel.dataset.viewPanel !== known; });
    document.querySelectorAll("#views [data-view]").forEach((b) => b.setAttribute("aria-current", String(b.dataset.view === known)));
    const view = views[known];
    if (view && view.show) Promise.resolve(view.show()).catch(report);
  }

  document.querySelectorAll("#views [data-view]").forEach((button) => {
    button.addEventListener("click", () => {
      window.history.replaceState(null, "", "#" + button.dataset.view);
      showView(button.dataset.view);
    });
  });

  // --- sign-in ---------------------------------------------------------------------------------

  function showSignIn() {
    state.csrf = "";
    $("app").hidden = true;
    $("actions").hidden = true;
    $("views").hidden = true;
    $("transcript").hidden = true;
    $("signin").hidden = false;
    $("signin-key").focus();
  }

  function showApp() {
    $("signin").hidden = true;
    $("app").hidden = false;
    $("actions").hidden = false;
    $("views").hidden = false;
    showView(window.location.hash.slice(1) || "overview");
    loadCost().catch(report);
    loadSessions(0).catch(report);
  }

  async function signIn(key) {
    const session = await api("/ops/signin", { method: "POST", body: { key } });
    state.csrf = session.csrfToken;
    showApp();
  }

  $("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    $("signin-error").textContent = "";
    const input = $("signin-key");
    signIn(input.value).then(() => { input.value = ""; })
      .catch((error) => { $("signin-error").textContent = error.message; });
  });

  $("signout").addEventListener("click", () => {
    api("/ops/signout", { method: "POST" }).catch(() => {}).finally(showSignIn);
  });

  // --- plan ----------------------------------------------------------------------------------------

  async function loadPlan() {
    const plan = await api("/plan");
    const box = $("plan");
    const quota = plan.seatQuota === null || plan.seatQuota === undefined ? "∞" : plan.seatQuota;
    let text = `Plan ${plan.planDisplayName || plan.planId}: ${plan.seatsUsed} of ${quota} seats used`;
    if (plan.blocked) text += " · new agents are blocked";
    else if (plan.exceeded) text += ` · over quota (${plan.daysOverQuota || 0} days)`;
    box.textContent = text;
    box.classList.toggle("exceeded", Boolean(plan.exceeded));
  }

  // --- cost ----------------------------------------------------------------------------------------

  async function loadCost() {
    const bucketHours = state.window === "7d" ? 6 : 1;
    const report = await api(`/cost?window=${state.window}&bucketHours=${bucketHours}`);
    const totals = report.totals;
    $("total-sessions").textContent = count(totals.sessions);
    $("total-messages").textContent = count(totals.messages);
    $("total-handoff").textContent = (100 * (totals.handoffRate || 0)).toFixed(1) + "%";
    $("total-tokens").textContent = count(totals.totalTokens);
    $("total-cost").textContent = money(totals.costUsd);
    drawChart(report.buckets);
  }

  function drawChart(buckets) {
    const box = $("chart");
    if (state.chart) state.chart.destroy();
    box.textContent = "";
    if (typeof uPlot === "undefined") {
      box.textContent = "Chart library unavailable.";
      return;
    }
    const xs = buckets.map((b) => Date.parse(b.start) / 1000);
    const cost = buckets.map((b) => b.costUsd);
    const tokens = buckets.map((b) => b.totalTokens);
    const bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.7, 40] }) : undefined;
    state.chart = new uPlot({
      width: Math.max(320, box.clientWidth || 800),
      height: 280,
      scales: { x: { time: true }, usd: { auto: true, range: (u, min, max) => [0, Math.max(max, 0.0001)] },
        tok: { auto: true, range: (u, min, max) => [0, Math.max(max, 1)] } },
      series: [
        {},
        { label: "Cost (USD)", scale: "usd", stroke: "#2563eb", fill: "rgba(37,99,235,.25)", paths: bars,
          value: (u, v) => (v === null ? "–" : money(v)) },
        { label: "Tokens", scale: "tok", stroke: "#f59e0b", width: 2, value: (u, v) => (v === null ? "–" : count(v)) },
      ],
      axes: [{}, { scale: "usd", values: (u, vals) => vals.map((v) => "$" + v) },
        { scale: "tok", side: 1, grid: { show: false } }],
    }, [xs, cost, tokens], box);
  }

  document.querySelectorAll("[data-window]").forEach((button) => {
    button.addEventListener("click", () => {
      state.window = button.dataset.window;
      document.querySelectorAll("[data-window]").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
      loadCost().catch(report);
    });
  });

  // --- top sessions (paged: only one page is ever loaded) ------------------------------------------

  function sessionLink(id) {
    return el("button", { type: "button", class: "link", text: id, title: "Open transcript",
      onclick: () => openTranscript(id).catch(report) });
  }

  async function loadSessions(page) {
    const cursor = state.sessionCursors[page];
    const query = `/sessions?sortBy=cost&limit=${PAGE}` + (cursor ? `&cursor=${encodeURIComponent(cursor)}` : "");
    const body = await api(query);
    state.sessionPage = page;
    state.sessionCursors[page + 1] = body.nextCursor;
    const rows = $("sessions-body");
    rows.textContent = "";
    for (const s of body.sessions) {
      rows.append(el("tr", {},
        el("td", {}, sessionLink(s.sessionId)), el("td", { text: statusLabel(s.status) }), el("td", { text: count(s.messageCount) }),
        el("td", { text: money(s.costUsd) }), el("td", { text: when(s.lastActivityAt) }),
        el("td", { text: s.preview || "", title: s.preview || "" })));
    }
    $("sessions-empty").hidden = body.sessions.length > 0 || page > 0;
    $("sessions-prev").disabled = page === 0;
    $("sessions-next").disabled = !body.nextCursor;
  }

  $("sessions-prev").addEventListener("click", () => loadSessions(state.sessionPage - 1).catch(report));
  $("sessions-next").addEventListener("click", () => loadSessions(state.sessionPage + 1).catch(report));

  // --- search ----------------------------------------------------------------------------------------

  const ENTITIES = { "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#x27;": "'" };
  const unescapeHtml = (text) => text.replace(/&(amp|lt|gt|quot|#x27);/g, (entity) => ENTITIES[entity]);

  // The API escapes the snippet and wraps matches in <mark>; rebuild it as text nodes and <mark>s.
  function snippetNode(snippet) {
    const node = el("div", { class: "snippet" });
    let mark = null;
    for (const part of snippet.split(/(<mark>|<\/mark>)/)) {
      if (part === "<mark>") { mark = el("mark"); node.append(mark); }
      else if (part === "</mark>") mark = null;
      else if (part) (mark || node).append(document.createTextNode(unescapeHtml(part)));
    }
    return node;
  }

  async function runSearch(more) {
    const params = new URLSearchParams({ q: state.searchQuery, limit: String(PAGE) });
    if (more && state.searchCursor) params.set("cursor", state.searchCursor);
    const body = await api("/sessions/search?" + params.toString());
    const list = $("search-results");
    if (!more) list.textContent = "";
    for (const hit of body.results) {
      list.append(el("li", {},
        el("div", { class: "muted" }, `${when(hit.createdAt)} · ${hit.sender} · `, sessionLink(hit.sessionId)),
        snippetNode(hit.snippet)));
    }
    state.searchCursor = body.nextCursor;
    $("search-more").hidden = !body.nextCursor;
    const shown = list.children.length;
    $("search-status").textContent = shown ? `${shown} result${shown === 1 ? "" : "s"}${body.nextCursor ? " so far" : ""}`
      : "No messages match.";
  }

  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.searchQuery = $("search-q").value.trim();
    state.searchCursor = null;
    if (!state.searchQuery) return;
    runSearch(false).catch(report);
  });
  $("search-more").addEventListener("click", () => runSearch(true).catch(report));

  // --- transcript ------------------------------------------------------------------------------------

  async function openTranscript(id) {
    state.transcriptId = id;
    state.transcriptAfter = 0;
    $("transcript-messages").textContent = "";
    $("transcript-title").textContent = "Transcript " + id;
    $("transcript").hidden = false;
    await loadTranscript();
  }

  // A bot answer's sources: a link only for an http(s) URL; every title as text.
  function citationsNode(list) {
    if (!Array.isArray(list) || !list.length) return null;
    const box = el("div", { class: "citations muted" }, "Sources: ");
    list.slice(0, 10).forEach((c, i) => {
      if (!c || typeof c !== "object") return;
      let href = null;
      try { const u = new URL(String(c.url)); if (u.protocol === "https:" || u.protocol === "http:") href = u.href; } catch (_) { /* no link */ }
      const text = String(c.title || href || "Source").slice(0, 200);
      if (i) box.append(" · ");
      box.append(href ? el("a", { href, target: "_blank", rel: "noopener noreferrer", text }) : text);
    });
    return box;
  }

  async function loadTranscript() {
    const body = await api(`/sessions/${encodeURIComponent(state.transcriptId)}/transcript?after=${state.transcriptAfter}`);
    const s = body.session;
    $("transcript-meta").textContent =
      `${statusLabel(s.status)} · ${count(s.messageCount)} messages · ${count(s.promptTokens + s.completionTokens)} tokens · ${money(s.costUsd)}` +
      (s.page && s.page.url ? ` · last on ${s.page.title || s.page.url}` : "");
    const list = $("transcript-messages");
    for (const m of body.messages) {
      const tokens = m.promptTokens + m.completionTokens;
      const meta = [when(m.createdAt)];
      if (tokens) meta.push(`${count(m.promptTokens)} + ${count(m.completionTokens)} tokens`, money(m.costUsd));
      const item = el("li", { class: m.sender },
        el("div", { class: "meta" }, el("strong", { class: "sender", text: m.agentName || m.sender }), " · " + meta.join(" · ")),
        el("div", { class: "text", text: m.text }));
      const cited = citationsNode(m.citations);
      if (cited) item.append(cited);
      list.append(item);
    }
    state.transcriptAfter = body.nextAfter;
    $("transcript-more").hidden = body.nextAfter === null || body.nextAfter === undefined;
  }

  $("transcript-more").addEventListener("click", () => loadTranscript().catch(report));
  $("transcript-close").addEventListener("click", () => { $("transcript").hidden = true; });

  // --- key rotation ----------------------------------------------------------------------------------

  // In the Settings view, behind a confirmation that says what stops working.
  $("rotate").addEventListener("click", () => {
    $("rotate-dialog").hidden = false;
    $("rotate-cancel").focus();
  });
  $("rotate-cancel").addEventListener("click", () => { $("rotate-dialog").hidden = true; $("rotate").focus(); });
  $("rotate-dialog").addEventListener("keydown", (event) => {
    if (event.key === "Escape") { $("rotate-dialog").hidden = true; $("rotate").focus(); }
  });
  $("rotate-confirm").addEventListener("click", async () => {
    $("rotate-dialog").hidden = true;
    try {
      const body = await api("/ops/rotate-key", { method: "POST" });
      if (body.csrfToken) state.csrf = body.csrfToken;
      $("new-key").textContent = body.adminKey;
      $("key-dialog").hidden = false;
    } catch (error) { report(error); }
  });
  $("copy-key").addEventListener("click", () => {
    navigator.clipboard.writeText($("new-key").textContent).catch(() => {});
  });
  $("key-done").addEventListener("click", () => {
    $("new-key").textContent = "";
    $("key-dialog").hidden = true;
  });

  // --- start -----------------------------------------------------------------------------------------

  async function start() {
    loadPlan().catch(() => {});
    const url = new URL(window.location.href);
    const code = url.searchParams.get("code");
    if (code) {
      // Trade a ?code= link for a cookie, and take the key out of the address bar and history.
      url.searchParams.delete("code");
      window.history.replaceState(null, "", url.pathname + url.search + url.hash);
      try { await signIn(code); return; } catch (error) { showSignIn(); $("signin-error").textContent = error.message; return; }
    }
    try {
      const session = await api("/ops/session");
      state.csrf = session.csrfToken || "";
      showApp();
    } catch (error) {
      if (!(error instanceof SignedOut)) { showSignIn(); report(error); }
    }
  }

  start();
})();
