// The dashboard's Activity view: the audit log with its filters, counts over 24 h / 7 d, and a
// conversation's timeline (messages and events in one list). Text reaches the page through textContent.
(() => {
  "use strict";

  const SD = window.SupportDesk;
  if (!SD) return;
  const { el, when, count } = SD;

  const EVENTS = ["status:*", "status:open", "status:human_requested", "status:claimed", "status:closed", "guard:*",
    "guard:bot-off", "guard:session-cap", "guard:deployment-cap", "guard:monthly-cap", "bot:failed", "config:changed",
    "kill-switch:*", "kill-switch:engaged", "kill-switch:released", "key:rotated", "seat:*", "seat:taken",
    "seat:over-quota", "seat:within-quota"];
  const state = { built: false, window: "24h", cursor: null, filters: {}, timelineId: "", timelineCursor: null };

  async function call(path) {
    const response = await fetch("/api" + path, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    const type = response.headers.get("content-type") || "";
    const data = type.includes("json") ? await response.json() : null;
    if (response.status === 401) {
      SD.signedOut();
      throw new Error("Signed out");
    }
    return { status: response.status, data };
  }

  // --- building the view once --------------------------------------------------------------------------

  function field(id, label, control) {
    control.id = id;
    return el("div", { class: "field" }, el("label", { for: id, text: label }), control);
  }

  function build(root) {
    const events = el("datalist", { id: "activity-events" });
    for (const name of EVENTS) events.append(el("option", { value: name }));
    const form = el("form", { id: "activity-form", class: "filters", novalidate: "" },
      field("activity-session", "Conversation", el("input", { type: "text", maxlength: "64", placeholder: "session id" })),
      field("activity-event", "Event", el("input", { type: "text", list: "activity-events", maxlength: "100",
        placeholder: "guard:* or status:closed" })),
      field("activity-actor", "Actor", el("input", { type: "text", maxlength: "200", placeholder: "admin, visitor, agent:<oid>" })),
      field("activity-from", "From", el("input", { type: "datetime-local" })),
      field("activity-to", "To", el("input", { type: "datetime-local" })),
      el("div", { class: "row" }, el("button", { type: "submit", text: "Filter" }),
        el("button", { type: "button", class: "secondary", text: "Clear", onclick: clearFilters })),
      events);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      state.filters = readFilters();
      loadEvents(false).catch(SD.report);
    });

    const toggle = el("div", { class: "toggle", role: "group", "aria-label": "Window" });
    for (const [value, text] of [["24h", "24 hours"], ["7d", "7 days"]]) {
      toggle.append(el("button", { type: "button", "data-activity-window": value, "aria-pressed": String(value === state.window),
        text, onclick: () => { state.window = value; loadStats().catch(SD.report); } }));
    }

    root.append(
      el("section", { class: "card" },
        el("div", { class: "row" }, el("h2", { text: "Activity" }), toggle),
        el("dl", { class: "totals" },
          el("div", {}, el("dt", { text: "Events" }), el("dd", { id: "activity-total", text: "–" })),
          el("div", {}, el("dt", { text: "Refusals (guards)" }), el("dd", { id: "activity-refusals", text: "–" })),
          el("div", {}, el("dt", { text: "Errors" }), el("dd", { id: "activity-errors", text: "–" }))),
        el("ul", { id: "activity-counts", class: "counts" })),
      el("section", { class: "card" },
        el("h2", { text: "Audit log" }), form,
        el("p", { id: "activity-error", class: "error", role: "alert" }),
        el("table", { class: "audit" },
          el("thead", {}, el("tr", {}, ...["Time", "Event", "Actor", "Conversation", "Details", "Correlation id"]
            .map((text) => el("th", { text })))),
          el("tbody", { id: "activity-body" })),
        el("p", { id: "activity-empty", class: "muted", hidden: "", text: "No events match." }),
        el("button", { id: "activity-more", type: "button", class: "secondary", hidden: "", text: "More",
          onclick: () => loadEvents(true).catch(SD.report) })),
      el("section", { id: "activity-timeline", class: "card", hidden: "" },
        el("div", { class: "row" }, el("h2", { id: "activity-timeline-title", text: "Timeline" }),
          el("button", { type: "button", class: "secondary", text: "Close",
            onclick: () => { document.getElementById("activity-timeline").hidden = true; } })),
        el("ol", { id: "activity-timeline-items", class: "messages" }),
        el("button", { id: "activity-timeline-more", type: "button", class: "secondary", hidden: "", text: "More",
          onclick: () => loadTimeline(true).catch(SD.report) })));
  }

  function isoOf(local) {
    return local ? new Date(local).toISOString() : "";
  }

  function readFilters() {
    const value = (id) => document.getElementById(id).value.trim();
    return { sessionId: value("activity-session"), event: value("activity-event"), actor: value("activity-actor"),
      from: isoOf(value("activity-from")), to: isoOf(value("activity-to")) };
  }

  function clearFilters() {
    for (const id of ["activity-session", "activity-event", "activity-actor", "activity-from", "activity-to"]) {
      document.getElementById(id).value = "";
    }
    state.filters = {};
    loadEvents(false).catch(SD.report);
  }

  // --- stats -------------------------------------------------------------------------------------------

  async function loadStats() {
    document.querySelectorAll("[data-activity-window]").forEach((b) =>
      b.setAttribute("aria-pressed", String(b.dataset.activityWindow === state.window)));
    const { status, data } = await call(`/audit/stats?window=${state.window}`);
    if (status !== 200) throw new Error((data && data.detail) || "The counts could not be loaded.");
    document.getElementById("activity-total").textContent = count(data.total);
    document.getElementById("activity-refusals").textContent = count(data.refusals.total);
    document.getElementById("activity-errors").textContent = count(data.errors.total);
    const list = document.getElementById("activity-counts");
    list.textContent = "";
    for (const [name, n] of Object.entries(data.byEvent)) {
      list.append(el("li", {}, el("button", { type: "button", class: "link", text: eventLabel(name), title: "Show these events",
        onclick: () => { document.getElementById("activity-event").value = name; state.filters = readFilters();
          loadEvents(false).catch(SD.report); } }), ` ${count(n)}`));
    }
  }

  // --- the list ----------------------------------------------------------------------------------------

  // A status change in words, with its code (what the filter takes).
  const eventLabel = (name) => (String(name).startsWith("status:") ? `${SD.statusLabel(name.slice(7))} · ${name}` : name);

  function details(event) {
    const d = { ...(event.details || {}) };
    if (String(event.event).startsWith("status:") && d.previous) d.previous = SD.statusLabel(d.previous);
    if (Array.isArray(d.changes)) {
      const changes = d.changes.map((c) => `${c.field}: ${JSON.stringify(c.before)} → ${JSON.stringify(c.after)}`);
      return (d.preset ? `preset ${d.preset}; ` : "") + changes.join("; ");
    }
    return Object.entries(d).filter(([, v]) => v !== "" && v !== null)
      .map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`).join("; ");
  }

  async function loadEvents(more) {
    const params = new URLSearchParams({ limit: "50" });
    for (const [name, value] of Object.entries(state.filters)) if (value) params.set(name, value);
    if (more && state.cursor) params.set("cursor", state.cursor);
    const { status, data } = await call("/audit?" + params.toString());
    const problem = document.getElementById("activity-error");
    problem.textContent = "";
    if (status === 422) {
      problem.textContent = (data.errors || []).map((e) => `${e.field}: ${e.message}`).join(" · ") || data.detail;
      return;
    }
    if (status !== 200) throw new Error((data && data.detail) || "The audit log could not be loaded.");
    const body = document.getElementById("activity-body");
    if (!more) body.textContent = "";
    for (const event of data.events) {
      const session = event.sessionId
        ? el("button", { type: "button", class: "link", text: event.sessionId, title: "Open the timeline",
          onclick: () => openTimeline(event.sessionId).catch(SD.report) })
        : "";
      const text = details(event);
      body.append(el("tr", {}, el("td", { text: when(event.at) }), el("td", { text: eventLabel(event.event), title: event.event }),
        el("td", { text: event.actor }), el("td", {}, session), el("td", { class: "details", text, title: text }),
        el("td", { class: "muted", text: event.correlationId || "" })));
    }
    state.cursor = data.nextCursor;
    document.getElementById("activity-more").hidden = !data.nextCursor;
    document.getElementById("activity-empty").hidden = body.children.length > 0;
  }

  // --- a conversation's timeline -----------------------------------------------------------------------

  async function openTimeline(id) {
    state.timelineId = id;
    state.timelineCursor = null;
    document.getElementById("activity-timeline-items").textContent = "";
    document.getElementById("activity-timeline-title").textContent = "Timeline " + id;
    document.getElementById("activity-timeline").hidden = false;
    await loadTimeline(false);
    document.getElementById("activity-timeline").scrollIntoView({ block: "nearest" });
  }

  async function loadTimeline(more) {
    const params = new URLSearchParams({ limit: "200" });
    if (more && state.timelineCursor) params.set("cursor", state.timelineCursor);
    const { status, data } = await call(`/sessions/${encodeURIComponent(state.timelineId)}/timeline?${params}`);
    if (status !== 200) throw new Error((data && data.detail) || "The timeline could not be loaded.");
    const list = document.getElementById("activity-timeline-items");
    for (const item of data.items) {
      if (item.type === "message") {
        list.append(el("li", { class: item.sender },
          el("div", { class: "meta" }, el("strong", { class: "sender", text: item.agentName || item.sender }), " · " + when(item.at)),
          el("div", { class: "text", text: item.text })));
      } else {
        list.append(el("li", { class: "event" },
          el("div", { class: "meta" }, el("strong", { text: eventLabel(item.event) }), ` · ${item.actor} · ${when(item.at)}`),
          el("div", { class: "text muted", text: details(item) })));
      }
    }
    state.timelineCursor = data.nextCursor;
    document.getElementById("activity-timeline-more").hidden = !data.nextCursor;
  }

  SD.register("activity", {
    async show() {
      if (!state.built) {
        build(document.getElementById("activity-view"));
        state.built = true;
      }
      await Promise.all([loadStats(), loadEvents(false)]);
    },
  });
})();
