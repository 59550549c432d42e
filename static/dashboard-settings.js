// The dashboard's Settings view: the runtime configuration as a form, presets, and what to do when
// someone else changed the settings meanwhile (412). Saving sends only what changed, as a JSON merge
// patch with If-Match. Every value reaches the page through textContent or an input's value.
(() => {
  "use strict";

  const SD = window.SupportDesk;
  if (!SD) return;
  const { el, when } = SD;

  const WEEKDAYS = [["mon", "Monday"], ["tue", "Tuesday"], ["wed", "Wednesday"], ["thu", "Thursday"],
    ["fri", "Friday"], ["sat", "Saturday"], ["sun", "Sunday"]];
  const CAPS = [
    ["perSessionPerDayUsd", "USD per conversation per day", "0.01"],
    ["perDayUsd", "USD per day", "0.01"],
    ["perMonthUsd", "USD per month", "0.01"],
    ["aiCallsPerSessionPerDay", "AI calls per conversation per day", "1"],
    ["aiCallsPerDay", "AI calls per day", "1"],
  ];
  const PRESETS = [
    ["conservative", "Conservative", "Every reply approved by a person; hands over at once when unsure; small budgets"],
    ["balanced", "Balanced", "Replies go out unless stopped within a minute; offers a person when unsure"],
    ["aggressive", "Aggressive", "The bot answers on its own; larger budgets"],
  ];
  // What the product acts on today; the rest is stored for approvals and office hours in the widget.
  const IN_EFFECT = new Set(["botEnabled", "costCaps"]);
  const SOURCES = { stored: "set here", setting: "app setting", default: "built-in default" };

  const state = { etag: "", config: null, built: false, pending: null };
  const inputs = {};

  async function call(path, { method = "GET", body, headers = {} } = {}) {
    const all = { Accept: "application/json", ...headers };
    if (method !== "GET") {
      if (body !== undefined) all["Content-Type"] = "application/merge-patch+json";
      const csrf = SD.csrf();
      if (csrf) all["X-CSRF-Token"] = csrf;
    }
    const response = await fetch("/api" + path, {
      method, headers: all, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
    });
    const type = response.headers.get("content-type") || "";
    const data = type.includes("json") ? await response.json() : null;
    if (response.status === 401) {
      SD.signedOut();
      throw new Error("Signed out");
    }
    return { status: response.status, etag: response.headers.get("etag") || "", data };
  }

  // --- building the form once ------------------------------------------------------------------------

  function errorSlot(field) {
    return el("p", { class: "field-error", "data-error-for": field, role: "alert" });
  }

  function hint(field) {
    return el("span", { class: "hint muted", "data-hint-for": field });
  }

  function row(field, label, control, note) {
    const id = "cfg-" + field.replace(/\./g, "-");
    control.id = id;
    inputs[field] = control;
    const line = el("div", { class: "field" }, el("label", { for: id, text: label }), control, hint(field));
    if (note) line.append(el("span", { class: "note muted", text: note }));
    line.append(errorSlot(field));
    return line;
  }

  function select(options) {
    const node = el("select");
    for (const [value, text] of options) node.append(el("option", { value, text }));
    return node;
  }

  function number(min, max, step) {
    return el("input", { type: "number", min: String(min), max: String(max), step, inputmode: "decimal" });
  }

  function build(root) {
    const presets = el("div", { class: "row presets" }, el("span", { class: "muted", text: "Presets:" }));
    for (const [name, label, title] of PRESETS) {
      presets.append(el("button", { type: "button", class: "secondary", "data-preset": name, title, text: label,
        onclick: () => applyPreset(name).catch(SD.report) }));
    }
    const zones = el("datalist", { id: "cfg-zones" });
    for (const zone of (Intl.supportedValuesOf ? Intl.supportedValuesOf("timeZone") : [])) zones.append(el("option", { value: zone }));

    const hours = el("fieldset", { id: "cfg-hours" }, el("legend", { text: "Office hours" }));
    const useHours = el("input", { type: "checkbox" });
    hours.append(row("officeHours", "Use office hours", useHours, "Off: the team is always in."), errorSlot("officeHours.weekly"));
    const timezone = el("input", { type: "text", list: "cfg-zones", maxlength: "64", placeholder: "Europe/Madrid" });
    hours.append(row("officeHours.timezone", "Time zone (IANA)", timezone), zones);
    for (const [day, name] of WEEKDAYS) {
      hours.append(row(`officeHours.weekly.${day}`, name, el("input", { type: "text", placeholder: "09:00-13:00, 15:00-18:00" })));
    }
    hours.append(row("officeHours.closedDates", "Closed dates", el("textarea", { rows: "2", placeholder: "2026-12-25, 2027-01-01" })));
    useHours.addEventListener("change", () => toggleHours(useHours.checked));

    const caps = el("fieldset", {}, el("legend", { text: "Cost caps (empty: the app setting, or no cap)" }));
    for (const [name, label, step] of CAPS) caps.append(row(`costCaps.${name}`, label, number(0, 1000000000, step)));
    caps.append(errorSlot("costCaps"));

    const form = el("form", { id: "settings-form", novalidate: "" },
      el("fieldset", {}, el("legend", { text: "The bot" }),
        row("botEnabled", "The bot answers visitors", el("input", { type: "checkbox" }),
          "Off: the kill switch, every conversation goes to a person."),
        row("autonomy", "Autonomy", select([["auto", "Sends its replies"], ["approve", "A person approves each reply"],
          ["auto-after", "Sends unless a person acts first"]])),
        row("autoSendAfterSeconds", "Send after (seconds)", number(5, 86400, "1")),
        row("handoffThreshold", "Hand-off threshold (0-1)", number(0, 1, "0.05")),
        row("handoffMode", "Below the threshold", select([["offer", "Offer a person"], ["immediate", "Hand over at once"]]))),
      caps, hours,
      el("fieldset", {}, el("legend", { text: "Visitors" }),
        row("visitorChoice", "Offer \"the assistant\" or \"a person\" up front", el("input", { type: "checkbox" })),
        row("awayMessage", "Away message", el("textarea", { rows: "3", maxlength: "500" }))),
      el("div", { class: "row" }, el("p", { id: "settings-status", class: "muted", "aria-live": "polite" }),
        el("button", { type: "submit", id: "settings-save", text: "Save" })),
      errorSlot("body"));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      save().catch(SD.report);
    });

    const conflict = el("div", { id: "settings-conflict", class: "conflict", role: "alert", hidden: "" },
      el("p", { id: "settings-conflict-text" }),
      el("div", { class: "row" },
        el("button", { type: "button", class: "secondary", id: "settings-reload", text: "Load the latest settings",
          onclick: () => load().catch(SD.report) }),
        el("button", { type: "button", id: "settings-overwrite", text: "Save my changes over them",
          onclick: () => overwrite().catch(SD.report) })));

    root.append(el("section", { class: "card" },
      el("div", { class: "row" }, el("h2", { text: "Settings" }), presets),
      el("p", { class: "muted", text: "Changes apply on every worker within seconds. Fields marked \"stored\" are kept for "
        + "features that use them (approvals, office hours in the widget); the kill switch and the cost caps act today." }),
      conflict, form));
  }

  function toggleHours(on) {
    for (const [field, input] of Object.entries(inputs)) {
      if (field.startsWith("officeHours.")) input.disabled = !on;
    }
  }

  // --- config <-> form ---------------------------------------------------------------------------------

  function show(config) {
    state.config = config;
    inputs.botEnabled.checked = config.botEnabled;
    inputs.autonomy.value = config.autonomy;
    inputs.autoSendAfterSeconds.value = String(config.autoSendAfterSeconds);
    inputs.handoffThreshold.value = String(config.handoffThreshold);
    inputs.handoffMode.value = config.handoffMode;
    for (const [name] of CAPS) {
      const value = config.costCaps[name];
      inputs[`costCaps.${name}`].value = value === null || value === undefined ? "" : String(value);
    }
    const hours = config.officeHours;
    inputs.officeHours.checked = Boolean(hours);
    inputs["officeHours.timezone"].value = hours ? hours.timezone : "";
    for (const [day] of WEEKDAYS) inputs[`officeHours.weekly.${day}`].value = hours ? (hours.weekly[day] || []).join(", ") : "";
    inputs["officeHours.closedDates"].value = hours ? hours.closedDates.join(", ") : "";
    toggleHours(Boolean(hours));
    inputs.visitorChoice.checked = config.visitorChoice;
    inputs.awayMessage.value = config.awayMessage;
    for (const slot of document.querySelectorAll("#settings-view [data-hint-for]")) {
      const field = slot.dataset.hintFor;
      const head = field.split(".")[0];
      const source = config.sources[field] || config.sources[head] || "";
      const parts = [];
      if (source) parts.push(SOURCES[source] || source);
      if (!field.includes(".") || field.startsWith("costCaps.")) parts.push(IN_EFFECT.has(head) ? "acts today" : "stored");
      slot.textContent = parts.length ? `(${parts.join(", ")})` : "";
    }
    const changed = config.updatedAt ? `Last changed ${when(config.updatedAt)} by ${config.updatedBy || "someone"}.` : "";
    document.getElementById("settings-status").textContent = changed;
  }

  const list = (text) => text.split(/[,\n]/).map((part) => part.trim()).filter(Boolean);

  function numberOrNull(input) {
    const text = input.value.trim();
    if (text === "") return null;
    const value = Number(text);
    return Number.isFinite(value) ? value : text; // the server names a field that isn't a number
  }

  function formDocument() {
    const doc = {
      botEnabled: inputs.botEnabled.checked,
      autonomy: inputs.autonomy.value,
      autoSendAfterSeconds: numberOrNull(inputs.autoSendAfterSeconds),
      handoffThreshold: numberOrNull(inputs.handoffThreshold),
      handoffMode: inputs.handoffMode.value,
      costCaps: {},
      officeHours: null,
      visitorChoice: inputs.visitorChoice.checked,
      awayMessage: inputs.awayMessage.value,
    };
    for (const [name] of CAPS) doc.costCaps[name] = numberOrNull(inputs[`costCaps.${name}`]);
    if (inputs.officeHours.checked) {
      const weekly = {};
      for (const [day] of WEEKDAYS) weekly[day] = list(inputs[`officeHours.weekly.${day}`].value);
      doc.officeHours = { timezone: inputs["officeHours.timezone"].value.trim(), weekly,
        closedDates: list(inputs["officeHours.closedDates"].value) };
    }
    return doc;
  }

  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

  // Only what differs from the configuration as loaded; members of the caps one by one.
  function patchOf(before, after) {
    const patch = {};
    for (const [name, value] of Object.entries(after)) {
      if (name === "costCaps") {
        const caps = {};
        for (const [cap, capValue] of Object.entries(value)) if (!same(before.costCaps[cap], capValue)) caps[cap] = capValue;
        if (Object.keys(caps).length) patch.costCaps = caps;
      } else if (name === "officeHours" && value && before.officeHours) {
        const weekly = {};
        for (const [day] of WEEKDAYS) weekly[day] = value.weekly[day];
        if (!same({ ...before.officeHours, weekly: { ...emptyWeek(), ...before.officeHours.weekly } }, { ...value, weekly })) {
          patch.officeHours = value;
        }
      } else if (!same(before[name], value)) {
        patch[name] = value;
      }
    }
    return patch;
  }

  function emptyWeek() {
    return Object.fromEntries(WEEKDAYS.map(([day]) => [day, []]));
  }

  function clearErrors() {
    for (const slot of document.querySelectorAll("#settings-view [data-error-for]")) slot.textContent = "";
    document.getElementById("settings-conflict").hidden = true;
  }

  function showErrors(errors) {
    for (const error of errors || []) {
      const parts = String(error.field || "body").split(".");
      let slot = null;
      while (parts.length && !slot) {
        slot = document.querySelector(`#settings-view [data-error-for="${CSS.escape(parts.join("."))}"]`);
        parts.pop();
      }
      slot = slot || document.querySelector('#settings-view [data-error-for="body"]');
      const text = `${error.field}: ${error.message}`;
      slot.textContent = slot.textContent ? `${slot.textContent} · ${text}` : text;
    }
  }

  function showConflict() {
    document.getElementById("settings-conflict-text").textContent =
      "Someone changed these settings after you opened them, so your changes were not saved. " +
      "Load the latest settings (your changes are dropped), or save your changes over theirs.";
    document.getElementById("settings-conflict").hidden = false;
  }

  // --- talking to the API ------------------------------------------------------------------------------

  async function load() {
    clearErrors();
    const { status, etag, data } = await call("/config");
    if (status !== 200) throw new Error((data && data.detail) || "The settings could not be loaded.");
    state.etag = etag;
    state.pending = null;
    show(data);
  }

  async function send(patch, etag) {
    const { status, etag: newEtag, data } = await call("/config", { method: "PATCH", body: patch, headers: { "If-Match": etag } });
    if (status === 200) {
      state.etag = newEtag;
      state.pending = null;
      show(data);
      document.getElementById("settings-status").textContent = "Saved. " + document.getElementById("settings-status").textContent;
    } else if (status === 412) {
      state.pending = patch;
      showConflict();
    } else if (status === 422 || status === 400) {
      showErrors(data && data.errors);
    } else {
      throw new Error((data && data.detail) || `Saving failed (${status}).`);
    }
  }

  async function save() {
    clearErrors();
    const patch = patchOf(state.config, formDocument());
    if (!Object.keys(patch).length) {
      document.getElementById("settings-status").textContent = "Nothing changed.";
      return;
    }
    await send(patch, state.etag);
  }

  async function overwrite() {
    const patch = state.pending || patchOf(state.config, formDocument());
    clearErrors();
    const { etag } = await call("/config");
    await send(patch, etag);
  }

  async function applyPreset(name) {
    clearErrors();
    const { status, etag, data } = await call(`/config/presets/${encodeURIComponent(name)}`, { method: "POST",
      headers: { "If-Match": state.etag } });
    if (status === 200) {
      state.etag = etag;
      show(data);
      document.getElementById("settings-status").textContent = `Preset "${name}" applied.`;
    } else if (status === 412) {
      state.pending = null;
      showConflict();
    } else {
      throw new Error((data && data.detail) || `The preset could not be applied (${status}).`);
    }
  }

  SD.register("settings", {
    async show() {
      const root = document.getElementById("settings-view");
      if (!state.built) {
        build(root);
        state.built = true;
      }
      await load();
    },
  });
})();
