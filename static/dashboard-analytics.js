// The dashboard's Analytics view: a date range, cards with each figure and how it is counted,
// charts per day, week or month (with words when there is nothing to draw), and per-agent figures.
// Everything comes from GET /api/analytics; text from the server is set as text, never as HTML.
(() => {
  "use strict";

  const SD = window.SupportDesk;
  const { el } = SD;
  const DAY = 86400000;
  const state = { built: false, charts: [], last: null, observer: null };

  const iso = (date) => date.toISOString().slice(0, 10);
  const percent = (ratio) => (ratio === null || ratio === undefined ? "–" : (100 * ratio).toFixed(1) + "%");
  const usd = (value) => (value === null || value === undefined ? "–" : SD.money(value));

  function duration(ms, over) {
    if (ms === null || ms === undefined) return "–";
    const text = ms < 1000 ? `${ms} ms` : ms < 60000 ? `${+(ms / 1000).toFixed(1)} s`
      : ms < 3600000 ? `${+(ms / 60000).toFixed(1)} min` : `${+(ms / 3600000).toFixed(1)} h`;
    return (over ? "over " : "≤ ") + text;
  }

  // A percentile at the last histogram edge means "more than that edge".
  const edgeDuration = (ms, edges) => duration(ms, ms !== null && ms !== undefined && ms === edges[edges.length - 1]);

  function field(id, label, input) {
    return el("div", { class: "field" }, el("label", { for: id, text: label }), input,
      el("p", { class: "field-error", "data-error-for": id.replace("an-", ""), role: "alert" }));
  }

  function build(root) {
    const today = new Date();
    const from = el("input", { id: "an-from", type: "date", value: iso(new Date(today - 29 * DAY)), required: "" });
    const to = el("input", { id: "an-to", type: "date", value: iso(today), required: "" });
    const bucket = el("select", { id: "an-bucket" },
      el("option", { value: "day", text: "Day" }), el("option", { value: "week", text: "Week" }),
      el("option", { value: "month", text: "Month" }));
    const quick = el("div", { class: "row presets", role: "group", "aria-label": "Quick ranges" });
    for (const [days, label] of [[7, "7 days"], [30, "30 days"], [90, "90 days"], [365, "12 months"]]) {
      quick.append(el("button", { type: "button", class: "secondary", text: label, onclick: () => {
        const end = new Date();
        to.value = iso(end);
        from.value = iso(new Date(end - (days - 1) * DAY));
        bucket.value = days > 120 ? "month" : days > 31 ? "week" : "day";
        load().catch(SD.report);
      } }));
    }
    const form = el("form", { id: "an-form", class: "filters" },
      field("an-from", "From (UTC day)", from), field("an-to", "To (UTC day)", to), field("an-bucket", "Per", bucket),
      el("div", { class: "field" }, el("button", { type: "submit", text: "Show" })));
    form.addEventListener("submit", (event) => { event.preventDefault(); load().catch(SD.report); });
    root.append(
      el("section", { class: "card" },
        el("div", { class: "row" }, el("h2", { text: "Analytics" }), quick), form,
        el("p", { id: "an-status", class: "muted", "aria-live": "polite" })),
      el("section", { class: "an-cards", id: "an-cards", "aria-label": "Figures" }),
      el("section", { class: "card" }, el("h2", { text: "Conversations" }),
        el("div", { id: "an-chart-volume", class: "chart", role: "img", "aria-label": "Conversations and bot resolutions" })),
      el("section", { class: "card" }, el("h2", { text: "AI cost" }),
        el("div", { id: "an-chart-cost", class: "chart", role: "img", "aria-label": "AI cost per period" })),
      el("section", { class: "card" }, el("h2", { text: "Agents" }),
        el("div", { class: "table-scroll" }, el("table", { class: "audit an-agents" },
          el("thead", {}, el("tr", {}, ...["Agent", "Claimed", "Resolved", "Median first reply", "CSAT"].map((h) => el("th", { text: h })))),
          el("tbody", { id: "an-agents" }))),
        el("p", { id: "an-agents-empty", class: "muted", hidden: "" }),
        el("p", { id: "an-agents-how", class: "how muted" })));
    state.observer = new ResizeObserver(() => resize());
    state.observer.observe(root);
  }

  function card(title, value, detail, how) {
    return el("article", { class: "card an-card" },
      el("h3", { text: title }), el("p", { class: "an-value", text: value }),
      el("p", { class: "an-detail", text: detail }),
      el("details", { class: "how" }, el("summary", { text: "How we count" }), el("p", { class: "muted", text: how })));
  }

  function renderCards(body) {
    const t = body.totals;
    const d = body.definitions;
    const edges = body.histogramEdgesMs;
    const dist = [1, 2, 3, 4, 5].map((s) => `${s}★ ${t.csat.distribution[String(s)] || 0}`).join(" · ");
    const box = document.getElementById("an-cards");
    box.textContent = "";
    box.append(
      card("Conversations", SD.count(t.conversations), `${SD.count(t.withPerson)} with a person · ${SD.count(t.closed)} closed`, d.conversations),
      card("Bot resolution rate", percent(t.botResolutionRate), `${SD.count(t.botResolved)} resolved by the bot`, d.botResolutionRate),
      card("Handoff rate", percent(t.handoffRate), `${SD.count(t.handoffs)} asked for a person`, d.handoffRate),
      card("First human reply", t.firstHumanReply.count ? edgeDuration(t.firstHumanReply.p50Ms, edges.firstHumanReply) : "–",
        t.firstHumanReply.count ? `median · p90 ${edgeDuration(t.firstHumanReply.p90Ms, edges.firstHumanReply)} · ${SD.count(t.firstHumanReply.count)} replies`
          : "No agent has replied in this period.", d.firstHumanReply),
      card("Bot reply time", t.botLatency.count ? edgeDuration(t.botLatency.p50Ms, edges.botLatency) : "–",
        t.botLatency.count ? `median · p95 ${edgeDuration(t.botLatency.p95Ms, edges.botLatency)} · ${SD.count(t.botLatency.count)} answers`
          : "The bot has not answered in this period.", d.botLatency),
      card("CSAT", t.csat.count ? `${t.csat.average.toFixed(2)} / 5` : "–",
        t.csat.count ? `${SD.count(t.csat.count)} ratings · ${dist}` : "No ratings in this period.", d.csat),
      card("Cost per conversation", usd(t.costPerConversationUsd), `${usd(t.costUsd)} in all`, d.costPerConversation),
      card("Cost per bot resolution", usd(t.costPerResolutionUsd),
        t.costUsd ? `${SD.count(t.botResolved)} resolved by the bot` : "No AI cost yet: the offline bot is free.", d.costPerResolution));
  }

  function renderAgents(body) {
    const rows = document.getElementById("an-agents");
    rows.textContent = "";
    for (const a of body.agents) {
      rows.append(el("tr", {}, el("td", { text: a.name || a.oid, title: a.name || a.oid }), el("td", { text: SD.count(a.claimed) }),
        el("td", { text: SD.count(a.resolved) }),
        el("td", { text: a.firstReplies ? edgeDuration(a.firstReplyP50Ms, body.histogramEdgesMs.firstHumanReply) : "–" }),
        el("td", { text: a.csat.count ? `${a.csat.average.toFixed(2)} (${a.csat.count})` : "–" })));
    }
    const empty = document.getElementById("an-agents-empty");
    empty.hidden = body.agents.length > 0;
    empty.textContent = "No agent claimed a conversation in this period.";
    document.getElementById("an-agents-how").textContent = body.definitions.agents;
  }

  function empty(box, text) {
    box.textContent = "";
    box.append(el("p", { class: "an-empty muted", text }));
  }

  function chart(box, series, data, axis) {
    if (typeof uPlot === "undefined") { empty(box, "Chart library unavailable."); return; }
    box.textContent = "";
    const plot = new uPlot({
      width: Math.max(280, box.clientWidth || 600), height: 240,
      legend: { show: true, live: false },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(max, 1e-4) * 1.1] } },
      series: [{ label: "Period", value: (u, v) => (v === null ? "" : new Date(v * 1000).toISOString().slice(0, 10)) }, ...series],
      axes: [{ space: 60, values: (u, vals) => vals.map((v) => new Date(v * 1000).toISOString().slice(5, 10)) },
        { size: 70, values: (u, vals) => vals.map(axis) }],
    }, data, box);
    state.charts.push({ plot, box });
  }

  function renderCharts(body) {
    for (const { plot } of state.charts) plot.destroy();
    state.charts = [];
    const xs = body.buckets.map((b) => Date.parse(b.start + "T00:00:00Z") / 1000);
    const volume = document.getElementById("an-chart-volume");
    const cost = document.getElementById("an-chart-cost");
    if (!body.totals.conversations) {
      empty(volume, "No conversations in this period yet: a conversation counts once a visitor writes in the widget.");
    } else {
      chart(volume, [
        { label: "Conversations", stroke: "#2563eb", width: 2, value: (u, v) => SD.count(v) },
        { label: "Resolved by the bot", stroke: "#059669", width: 2, value: (u, v) => SD.count(v) },
        { label: "Handed to a person", stroke: "#d97706", width: 2, value: (u, v) => SD.count(v) },
      ], [xs, body.buckets.map((b) => b.conversations), body.buckets.map((b) => b.botResolved),
        body.buckets.map((b) => b.handoffs)], (v) => SD.count(v));
    }
    if (!body.totals.costUsd) {
      empty(cost, body.totals.conversations ? "No AI cost yet: the offline bot is free. With an AI provider, each answer's cost appears here."
        : "No AI cost yet: the offline bot is free, and no visitor has written in this period.");
    } else {
      chart(cost, [{ label: "AI cost (USD)", stroke: "#7c3aed", fill: "rgba(124,58,237,.15)", width: 2, value: (u, v) => SD.money(v) }],
        [xs, body.buckets.map((b) => b.costUsd)], (v) => "$" + v);
    }
  }

  function resize() {
    for (const { plot, box } of state.charts) {
      const width = Math.max(280, box.clientWidth);
      if (Math.abs(plot.width - width) > 2) plot.setSize({ width, height: 240 });
    }
  }

  function clearErrors() {
    for (const slot of document.querySelectorAll("#analytics-view [data-error-for]")) slot.textContent = "";
  }

  async function load() {
    clearErrors();
    const params = new URLSearchParams({ from: document.getElementById("an-from").value,
      to: document.getElementById("an-to").value, bucket: document.getElementById("an-bucket").value });
    const status = document.getElementById("an-status");
    status.textContent = "Loading…";
    const response = await fetch("/api/analytics?" + params.toString(), { credentials: "same-origin", headers: { Accept: "application/json" } });
    const data = await response.json().catch(() => null);
    if (response.status === 401) { SD.signedOut(); return; }
    if (response.status === 422 && data && Array.isArray(data.errors)) {
      status.textContent = "";
      for (const error of data.errors) {
        const slot = document.querySelector(`#analytics-view [data-error-for="${CSS.escape(String(error.field))}"]`);
        if (slot) slot.textContent = `${data.detail}`;
      }
      return;
    }
    if (!response.ok) throw new Error((data && data.detail) || "The analytics could not be loaded.");
    state.last = data;
    status.textContent = `${data.from} to ${data.to} (UTC), per ${data.bucket}. Each conversation counts on the day it started.`;
    renderCards(data);
    renderCharts(data);
    renderAgents(data);
  }

  SD.register("analytics", {
    async show() {
      const root = document.getElementById("analytics-view");
      if (!state.built) {
        build(root);
        state.built = true;
      }
      await load();
    },
  });
})();
