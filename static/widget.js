/*! Support desk chat widget. No framework, no build step.
 * Snippet: <script src="https://<app>/api/widget.js" async></script>
 * Optional attributes: data-title, data-color, data-greeting, data-position (right|left),
 * data-api (API base; default: the folder this script was loaded from, i.e. <origin>/api).
 * Everything renders inside a shadow root, and all message text goes in through textContent.
 */
(() => {
  "use strict";
  if (window.__supportDeskWidget) return;
  window.__supportDeskWidget = true;

  const MAX_CHARS = 4000;
  const COUNTER_FROM = 3600;
  const POLL_MS = 3000;
  const POLL_ERROR_MS = 10000;
  const RENEW_MARGIN_MS = 60000;
  const TYPING_IDLE_MS = 2500;
  const GAP_MS = 300000; // a time label above a message written more than 5 minutes after the previous one
  const QUEUE_MS = 20000; // while waiting for a person (and live): re-read the queue position this often
  const CLOCK_MS = 15000; // "waiting N minutes" refreshes this often
  const PAGE_CHECK_MS = 5000; // a single-page site's new address is told to the agents within this

  // --- configuration from the snippet ------------------------------------------------------
  const script = document.currentScript ||
    [...document.querySelectorAll("script[src]")].find((s) => /\/widget\.js(\?|#|$)/.test(s.src));
  const data = (script && script.dataset) || {};
  const apiBase = (data.api || (script && script.src ? new URL(".", script.src).href : location.origin + "/api/"))
    .replace(/\/+$/, "");
  const apiOrigin = new URL(apiBase, location.href).origin;
  const storeKey = "supportdesk-widget:" + apiOrigin;
  const openKey = storeKey + ":open";

  const isColor = (c) => typeof c === "string" && c.length < 64 && !!window.CSS && CSS.supports("color", c);
  const config = {
    title: data.title || "Chat with us",
    greeting: data.greeting || "Hi! How can we help you today?",
    color: isColor(data.color) ? data.color : "#2563eb",
    position: data.position === "left" ? "left" : "right",
  };
  // Server config fills in only what the snippet did not set explicitly.
  const applyServerConfig = (c) => {
    if (!c) return;
    if (!data.title && c.title) config.title = String(c.title);
    if (!data.greeting && c.greeting) config.greeting = String(c.greeting);
    if (!data.color && isColor(c.color)) config.color = c.color;
    if (!data.position && (c.position === "left" || c.position === "right")) config.position = c.position;
    config.choice = c.visitorChoice === true;
    config.replyIn = typeof c.replyIn === "string" ? c.replyIn : "";
    setAway(c.away);
    applyConfig();
  };

  // Where the visitor is, for the agents: the address up to its path (a query string or fragment may
  // carry tokens or personal data) and the page's title.
  const pageNow = () => /^https?:$/.test(location.protocol)
    ? { url: (location.origin + location.pathname).slice(0, 2048), title: Array.from(String(document.title || "")).slice(0, 200).join("") }
    : undefined;

  // --- storage (may be unavailable: private mode, sandboxed frames) -----------------------
  const store = {
    get(kind, key) {
      try { return JSON.parse(window[kind].getItem(key) || "null"); } catch (_) { return null; }
    },
    set(kind, key, value) {
      try {
        if (value == null) window[kind].removeItem(key);
        else window[kind].setItem(key, JSON.stringify(value));
      } catch (_) { /* storage full or blocked: the session lives for this page only */ }
    },
  };

  // --- state ----------------------------------------------------------------------------------
  const saved = store.get("localStorage", storeKey) || {};
  const state = {
    sessionId: saved.sessionId || null,
    token: saved.token || null,
    expiresAt: saved.expiresAt || null,
    page: saved.page || null, // the address the agents were last told the visitor is on
    status: "open",
    agentName: "",
    lastSeq: 0,
    open: false,
    opened: false, // the panel has been opened at least once on this page
    sending: false,
    unread: 0,
    queue: null, // {position, waitingSince} while waiting for a person
    skew: 0, // server clock minus this clock (ms), from messages the server just created
  };
  const seen = new Map(); // seq -> element
  let pending = null; // {text, el}: the visitor's message while its request is in flight
  let retry = null; // {text, key}: the Idempotency-Key to reuse when the same text is sent again
  let sessionPromise = null;

  const saveSession = () => store.set("localStorage", storeKey,
    state.sessionId ? { sessionId: state.sessionId, token: state.token, expiresAt: state.expiresAt, page: state.page } : null);

  // --- DOM ------------------------------------------------------------------------------------
  const CSS_TEXT = `
.root{all:initial;position:fixed;bottom:20px;right:20px;z-index:2147483000;display:block;
 font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1f2937;
 --accent:#2563eb;--on:#fff;--ink:#2563eb;text-align:left;direction:ltr}
.root.left{right:auto;left:20px}
.root *,.root *::before,.root *::after{box-sizing:border-box;font:inherit;color:inherit;letter-spacing:normal;
 text-transform:none;text-shadow:none;margin:0;padding:0}
[hidden]{display:none!important}
.vh{position:absolute!important;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
button{cursor:pointer;border:0;background:none}
button:focus-visible,textarea:focus-visible,a:focus-visible,input:focus-visible{outline:3px solid #111827;
 outline-offset:2px;box-shadow:0 0 0 2px #fff}
.log:focus-visible{outline:3px solid #111827;outline-offset:-3px}
.launcher{display:flex;align-items:center;justify-content:center;width:56px;height:56px;border-radius:50%;
 background:var(--accent);color:var(--on);margin-left:auto;box-shadow:0 4px 14px rgba(0,0,0,.25);position:relative;
 transition:transform .15s}
.launcher:hover{transform:scale(1.06)}
.launcher svg{width:26px;height:26px;fill:var(--on)}
.left .launcher{margin-left:0}
.peek{display:block;max-width:260px;margin:0 0 10px auto;padding:10px 12px;border-radius:12px;background:#fff;
 color:#1f2937;border:1px solid #d1d5db;box-shadow:0 6px 20px rgba(0,0,0,.18);text-align:left;
 overflow-wrap:anywhere}
.left .peek{margin:0 auto 10px 0}
.peek-who{display:block;font-size:12px;font-weight:700;color:#374151}
.badge{position:absolute;top:-2px;right:-2px;min-width:20px;height:20px;padding:0 5px;border-radius:10px;
 background:#dc2626;color:#fff;font-size:12px;font-weight:700;line-height:20px;text-align:center}
.panel{position:absolute;bottom:72px;right:0;width:370px;max-width:calc(100vw - 40px);height:560px;
 max-height:calc(100vh - 110px);display:flex;flex-direction:column;background:#fff;border-radius:14px;
 overflow:hidden;box-shadow:0 12px 40px rgba(0,0,0,.25);border:1px solid #e5e7eb}
.left .panel{right:auto;left:0}
.head{display:flex;align-items:center;gap:8px;padding:6px 6px 6px 14px;background:var(--accent);color:var(--on)}
.head .t{flex:1;min-width:0}
.head h2{font-size:16px;font-weight:600;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.head .sub{font-size:12px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.x{width:44px;height:44px;flex:none;border-radius:8px;color:var(--on);font-size:24px;line-height:44px}
.x:hover{background:rgba(127,127,127,.2)}
.banner{padding:8px 14px;font-size:13px;background:#fef3c7;color:#78350f;border-bottom:1px solid #fde68a;
 display:flex;gap:8px;align-items:center;flex-wrap:wrap}
.banner.agent{background:#ecfdf5;color:#065f46;border-color:#a7f3d0}
.banner.closed{background:#f3f4f6;color:#374151;border-color:#e5e7eb}
.banner.wait{background:#eff6ff;color:#1e3a8a;border-color:#bfdbfe}
.bt{flex:1 1 170px}
.bh{font-weight:600}
.wq{display:block;font-size:12px;margin-top:2px}
.pulse{display:inline-block;width:9px;height:9px;border-radius:50%;background:#16a34a;margin-right:6px;
 animation:p 1.6s infinite}
@keyframes p{50%{opacity:.35}}
.log{flex:1;overflow-y:auto;padding:14px;display:flex;flex-direction:column;gap:8px;background:#f9fafb}
.msg{max-width:85%;padding:8px 12px;border-radius:14px;background:#fff;border:1px solid #e5e7eb;
 align-self:flex-start;white-space:pre-wrap;overflow-wrap:anywhere;word-break:break-word}
.msg .who{display:flex;align-items:center;gap:6px;font-size:11px;font-weight:600;color:#4b5563;margin-bottom:2px}
.av{display:inline-flex;align-items:center;justify-content:center;width:24px;height:24px;border-radius:50%;
 background:#4338ca;color:#fff;font-size:11px;font-weight:700;flex:none}
.time{align-self:center;font-size:11px;color:#4b5563;margin:4px 0 -2px}
.msg.visitor{align-self:flex-end;background:var(--accent);color:var(--on);border-color:transparent}
.msg.agent{background:#eef2ff;border-color:#c7d2fe}
.msg.system{align-self:center;background:none;border:0;color:#4b5563;font-size:12px;text-align:center;
 max-width:95%}
.msg.pending{opacity:.65}
.msg .st{display:block;font-size:11px;opacity:.85;margin-top:3px}
.src{margin-top:6px;padding-top:5px;border-top:1px solid #e5e7eb;font-size:12px;color:#4b5563;list-style:none}
.src li{display:inline}.src li+li::before{content:" \u00b7 "}
.src a{color:var(--ink);text-decoration:underline;display:inline-flex;align-items:center;min-height:44px}
.typing{align-self:flex-start;padding:8px 12px;color:#4b5563;font-size:13px;font-style:italic}
.dots span{display:inline-block;width:6px;height:6px;margin-right:3px;border-radius:50%;background:#9ca3af;
 animation:b 1.2s infinite}
.dots span:nth-child(2){animation-delay:.2s}.dots span:nth-child(3){animation-delay:.4s}
@keyframes b{0%,80%,100%{opacity:.3}40%{opacity:1}}
@media (prefers-reduced-motion:reduce){.dots span,.pulse{animation:none}.launcher{transition:none}}
.error{margin:0 14px 8px;padding:8px 10px;border-radius:8px;background:#fef2f2;color:#991b1b;
 border:1px solid #fecaca;font-size:13px;display:flex;gap:8px;align-items:flex-start}
.error p{flex:1}
.error button{color:#991b1b;font-size:18px;line-height:1;min-width:44px;min-height:44px;margin:-8px -8px -8px 0}
.foot{border-top:1px solid #e5e7eb;padding:10px 12px;background:#fff}
.row{display:flex;gap:8px;align-items:flex-end}
textarea{flex:1;resize:none;min-height:44px;max-height:120px;padding:9px 10px;border:1px solid #6b7280;
 border-radius:10px;background:#fff;color:#111827;white-space:pre-wrap}
.root textarea,.root input{font-size:16px}
textarea:disabled{background:#f3f4f6}
.send{height:44px;min-width:44px;padding:0 16px;border-radius:10px;background:var(--accent);color:var(--on);font-weight:600}
.send:disabled{opacity:.5;cursor:default}
.meta{display:flex;justify-content:space-between;align-items:center;margin-top:2px;min-height:18px}
.link{color:var(--ink);font-size:13px;text-decoration:underline;min-height:44px;padding:0 4px}
.count{font-size:12px;color:#4b5563}
.count.over{color:#b91c1c;font-weight:600}
.btn2{min-height:44px;padding:6px 14px;border-radius:8px;background:#fff;color:#1f2937;border:1px solid #6b7280;
 font-size:13px;font-weight:600}
.btn2:hover{background:#f3f4f6}
.btn2[aria-disabled=true]{opacity:.6;cursor:progress}
.away{padding:8px 14px;font-size:13px;background:#fff7ed;color:#7c2d12;border-bottom:1px solid #fed7aa}
.away form{display:flex;gap:6px;margin-top:6px}
.away input{flex:1;min-width:0;min-height:44px;padding:6px 8px;border:1px solid #6b7280;border-radius:8px;font-size:16px}
.choice{display:flex;gap:8px;flex-wrap:wrap;align-self:flex-start}
.csat{align-self:stretch;padding:10px 12px;border-radius:12px;background:#fff;border:1px solid #d1d5db}
.csat fieldset{border:0}.csat legend{font-weight:600;margin-bottom:6px}
.stars{display:flex;gap:6px;flex-wrap:wrap}
.stars button{width:44px;height:44px;border-radius:8px;border:1px solid #6b7280;background:#fff;font-weight:700}
.stars button[aria-pressed=true]{background:#1f2937;color:#fff;border-color:#1f2937}
.csat textarea{width:100%;margin:8px 0;min-height:60px}
@media (max-width:480px){.root{bottom:12px;right:12px}.root.left{left:12px}
 .panel{width:calc(100vw - 24px);max-width:none;height:calc(100vh - 96px);max-height:none}
 .root.open{top:0;right:0;bottom:0;left:0}
 .root.open .launcher{display:none}
 .root.open .panel{position:fixed;top:0;right:0;bottom:0;left:0;width:auto;height:auto;border-radius:0;border:0;
  padding:env(safe-area-inset-top) env(safe-area-inset-right) env(safe-area-inset-bottom) env(safe-area-inset-left)}}
`;

  const el = (tag, attrs, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === false || v == null) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  };

  const host = document.createElement("support-desk-widget");
  // Inline !important beats any page rule aimed at the host element itself.
  host.style.cssText = "all:initial!important;display:block!important;position:static!important;";
  const shadow = host.attachShadow({ mode: "open" });
  try {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS_TEXT);
    shadow.adoptedStyleSheets = [sheet]; // not subject to the page's style-src CSP
  } catch (_) {
    shadow.append(el("style", { text: CSS_TEXT }));
  }

  const svgNS = "http://www.w3.org/2000/svg";
  const icon = document.createElementNS(svgNS, "svg");
  icon.setAttribute("viewBox", "0 0 24 24");
  icon.setAttribute("aria-hidden", "true");
  const iconPath = document.createElementNS(svgNS, "path");
  const CHAT_ICON = "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z";
  const CLOSE_ICON = "M6.4 5 12 10.6 17.6 5 19 6.4 13.4 12l5.6 5.6-1.4 1.4-5.6-5.6L6.4 19 5 17.6l5.6-5.6L5 6.4z";
  iconPath.setAttribute("d", CHAT_ICON);
  icon.append(iconPath);

  const ui = {};
  ui.badge = el("span", { class: "badge", hidden: true, "aria-hidden": "true" });
  ui.launcher = el("button", { type: "button", class: "launcher", "aria-expanded": "false",
    "aria-controls": "sdw-panel" }, icon, ui.badge);
  ui.title = el("h2", { id: "sdw-title" });
  ui.sub = el("div", { class: "sub" });
  ui.close = el("button", { type: "button", class: "x", "aria-label": "Close chat", text: "\u00d7" });
  ui.bannerText = el("span", { class: "bh" });
  ui.pulse = el("span", { class: "pulse", hidden: true, "aria-hidden": "true" });
  ui.wait = el("span", { class: "wq", hidden: true });
  ui.restart = el("button", { type: "button", class: "btn2", hidden: true, text: "Start new conversation" });
  ui.cont = el("button", { type: "button", class: "btn2", hidden: true, text: "Continue with the assistant" });
  ui.banner = el("div", { class: "banner", hidden: true },
    el("div", { class: "bt" }, ui.pulse, ui.bannerText, ui.wait), ui.restart, ui.cont);
  // The one live region for status changes (always in the DOM, so screen readers hear each change once).
  ui.live = el("div", { class: "vh", role: "status", "aria-live": "polite", "aria-atomic": "true" });
  ui.log = el("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": "Messages",
    tabindex: "0" });
  ui.typingText = el("span", { class: "vh" });
  ui.typing = el("div", { class: "typing", hidden: true },
    el("span", { class: "dots", "aria-hidden": "true" }, el("span"), el("span"), el("span")), ui.typingText);
  ui.errorText = el("p");
  ui.errorClose = el("button", { type: "button", "aria-label": "Dismiss error", text: "\u00d7" });
  ui.error = el("div", { class: "error", role: "alert", hidden: true }, ui.errorText, ui.errorClose);
  ui.input = el("textarea", { id: "sdw-input", rows: "1", maxlength: String(MAX_CHARS),
    placeholder: "Type your message\u2026", autocomplete: "off", "aria-describedby": "sdw-count" });
  ui.send = el("button", { type: "button", class: "send", text: "Send" });
  ui.handoff = el("button", { type: "button", class: "link", text: "Talk to a person" });
  ui.count = el("span", { class: "count", id: "sdw-count", "aria-live": "polite" });
  // Outside office hours: the away message, when the team is back, and a form to leave an email address.
  ui.awayText = el("p");
  ui.email = el("input", { type: "email", maxlength: "254", autocomplete: "email", placeholder: "you@example.com",
    "aria-label": "Your email address" });
  ui.emailForm = el("form", { hidden: true }, ui.email, el("button", { type: "submit", class: "btn2", text: "Send" }));
  ui.emailNote = el("p", { hidden: true });
  ui.away = el("div", { class: "away", hidden: true }, ui.awayText, ui.emailForm, ui.emailNote);
  // visitorChoice: the assistant or a person, up front.
  ui.choice = el("div", { class: "choice", hidden: true },
    el("button", { type: "button", class: "btn2", text: "Chat with the assistant" }),
    el("button", { type: "button", class: "btn2", text: "Talk to a person" }));
  ui.panel = el("div", { class: "panel", id: "sdw-panel", role: "dialog", "aria-labelledby": "sdw-title",
    hidden: true },
  el("div", { class: "head" }, el("div", { class: "t" }, ui.title, ui.sub), ui.close),
  ui.live, ui.banner, ui.away, ui.log, ui.error,
  el("div", { class: "foot" },
    el("label", { for: "sdw-input", class: "vh", text: "Your message" }),
    el("div", { class: "row" }, ui.input, ui.send),
    el("div", { class: "meta" }, ui.handoff, ui.count)));
  // Closed with unread messages: the latest one, as a button that opens the chat.
  ui.peekWho = el("span", { class: "peek-who" }); // a span, not <b>: tests count <b> to prove message markup stays text
  ui.peekText = el("span");
  ui.peek = el("button", { type: "button", class: "peek", hidden: true }, ui.peekWho, ui.peekText);
  ui.root = el("div", { class: "root" }, ui.panel, ui.peek, ui.launcher);
  shadow.append(ui.root);

  // --- colours: text on the accent is black or white, whichever contrasts more; links and the
  // accent used as text on white are darkened until they reach 4.5:1 ------------------------------
  const rgbOf = (c) => {
    const ctx = document.createElement("canvas").getContext("2d");
    if (!ctx) return null;
    ctx.fillStyle = "#000";
    ctx.fillStyle = c; // the browser normalises any CSS colour to #rrggbb or rgba(...)
    const v = ctx.fillStyle;
    if (v[0] === "#") return [1, 3, 5].map((i) => parseInt(v.slice(i, i + 2), 16));
    const n = v.match(/[\d.]+/g);
    return n ? n.slice(0, 3).map(Number) : null;
  };
  const lum = (rgb) => {
    const [r, g, b] = rgb.map((x) => { x /= 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const contrast = (a, b) => (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  function palette(color) {
    const rgb = rgbOf(color);
    if (!rgb) return { on: "#fff", ink: "#1d4ed8" };
    const l = lum(rgb);
    const on = contrast(l, 1) >= contrast(l, 0) ? "#fff" : "#111827";
    let ink = rgb;
    for (let i = 0; i < 20 && contrast(lum(ink), 1) < 4.6; i++) ink = ink.map((x) => Math.round(x * 0.85));
    return { on, ink: "rgb(" + ink.join(",") + ")" };
  }

  // Full screen on a phone: the page behind must not scroll; its own overflow comes back on close.
  const small = window.matchMedia ? window.matchMedia("(max-width: 480px)") : null;
  let locked = null;
  function lockScroll() {
    const want = state.open && !!small && small.matches && !!document.body;
    const els = [document.documentElement, document.body];
    if (want && !locked) {
      locked = els.map((e) => [e.style.getPropertyValue("overflow"), e.style.getPropertyPriority("overflow")]);
      els.forEach((e) => e.style.setProperty("overflow", "hidden", "important"));
    } else if (!want && locked) {
      els.forEach((e, i) => e.style.setProperty("overflow", locked[i][0], locked[i][1]));
      locked = null;
    }
  }
  if (small && small.addEventListener) small.addEventListener("change", lockScroll);

  function applyConfig() {
    ui.root.classList.toggle("left", config.position === "left");
    ui.root.classList.toggle("open", state.open);
    ui.root.style.setProperty("--accent", config.color);
    const colours = palette(config.color);
    ui.root.style.setProperty("--on", colours.on);
    ui.root.style.setProperty("--ink", colours.ink);
    iconPath.setAttribute("d", state.open ? CLOSE_ICON : CHAT_ICON);
    lockScroll();
    ui.title.textContent = config.title;
    ui.panel.setAttribute("aria-label", config.title);
    ui.launcher.setAttribute("aria-label", (state.open ? "Close chat: " : "Open chat: ") + config.title +
      (!state.open && state.unread ? " (" + state.unread + " unread)" : ""));
    if (greetingEl) greetingEl.lastChild.textContent = config.greeting;
  }

  // --- messages -------------------------------------------------------------------------------
  let greetingEl = null;
  const who = (m) => {
    if (m.sender === "visitor") return "You";
    if (m.sender === "agent") return m.agentName || state.agentName || "Agent";
    if (m.sender === "bot") return "Assistant";
    return "";
  };

  function showGreeting() {
    if (greetingEl || !config.greeting) return;
    greetingEl = el("div", { class: "msg bot" }, el("span", { class: "who", text: "Assistant" }),
      document.createTextNode(config.greeting));
    ui.log.prepend(greetingEl);
  }

  function renderMessage(m) {
    if (!m || typeof m.seq !== "number" || seen.has(m.seq)) return false;
    let node;
    if (pending && m.sender === "visitor" && m.text === pending.text) {
      node = pending.el; // the optimistic bubble becomes the stored message
      node.classList.remove("pending");
      pending = null;
    } else {
      const sender = ["visitor", "bot", "agent", "system"].includes(m.sender) ? m.sender : "system";
      node = el("div", { class: "msg " + sender });
      const label = who(m);
      if (label) {
        const tag = el("span", { class: sender === "visitor" ? "who vh" : "who" });
        if (sender === "agent") tag.append(el("span", { class: "av", "aria-hidden": "true", text: initials(label) }));
        tag.append(label);
        node.append(tag);
      }
      node.append(document.createTextNode(String(m.text ?? "")));
      if (sender === "bot") node.append(sourcesNode(m.citations) || "");
    }
    if (m.createdAt) {
      node.title = new Date(m.createdAt).toLocaleString();
      node.dataset.t = String(Date.parse(m.createdAt));
    }
    dropDraft(m.id, m.sender === "bot");
    node.dataset.seq = String(m.seq);
    if (m.id) node.dataset.id = String(m.id);
    // Keep seq order even when a push, a poll and a response race; unsent text stays last.
    let later = null;
    for (const [s, n] of seen) if (s > m.seq && (!later || s < later[0])) later = [s, n];
    if (later) ui.log.insertBefore(node, later[1]);
    else if (pending) ui.log.insertBefore(node, pending.el);
    else if (node.parentNode !== ui.log) ui.log.insertBefore(node, ui.typing.parentNode === ui.log ? ui.typing : null);
    seen.set(m.seq, node);
    if (m.seq > state.lastSeq) state.lastSeq = m.seq;
    if (m.sender === "agent" && m.agentName) setAgent(m.agentName);
    if (m.sender !== "visitor" && m.sender !== "system") hideTyping("agent");
    if (!state.open && m.sender !== "visitor" && m.sender !== "system") {
      state.unread += 1;
      ui.badge.textContent = String(state.unread);
      ui.badge.hidden = false;
      ui.peekWho.textContent = who(m);
      const text = String(m.text ?? "");
      ui.peekText.textContent = text.length > 140 ? text.slice(0, 139) + "\u2026" : text;
      ui.peek.hidden = false;
      applyConfig();
    }
    stampTimes();
    scrollDown();
    return true;
  }

  const initials = (name) => String(name).trim().split(/\s+/).slice(0, 2).map((w) => w[0] || "").join("")
    .toUpperCase() || "?";

  // A time label above the first message, and above any written more than GAP_MS after the one before.
  const timeFmt = { hour: "numeric", minute: "2-digit" };
  function stampTimes() {
    ui.log.querySelectorAll(".time").forEach((n) => n.remove());
    let prev = 0;
    for (const node of ui.log.querySelectorAll(".msg[data-t]")) {
      const t = Number(node.dataset.t);
      if (!isFinite(t)) continue;
      if (!prev || t - prev > GAP_MS) {
        const d = new Date(t);
        const today = d.toDateString() === new Date().toDateString();
        const label = today ? d.toLocaleTimeString([], timeFmt)
          : d.toLocaleString([], { weekday: "short", month: "short", day: "numeric", ...timeFmt });
        node.before(el("div", { class: "time", text: label }));
      }
      prev = t;
    }
  }

  // --- a reply streamed while it is written (ChatMessageDelta): text only, replaced by the stored one ----
  const drafts = new Map(); // messageId -> {el, text, next}
  function onDelta(d) {
    if (!mine(d) || typeof d.messageId !== "string" || typeof d.delta !== "string" || !state.open) return;
    for (const n of seen.values()) if (n.dataset.id === d.messageId) return; // the stored one is here
    let draft = drafts.get(d.messageId);
    if (!draft) {
      if (d.index !== 0) return; // joined mid-reply: wait for the whole message
      draft = { text: document.createTextNode(""), next: 0 };
      draft.el = el("div", { class: "msg bot draft" }, el("span", { class: "who", text: "Assistant" }), draft.text);
      drafts.set(d.messageId, draft);
      hideTyping("bot");
      ui.log.setAttribute("aria-busy", "true"); // read the reply once, when it is complete
      ui.log.insertBefore(draft.el, ui.typing.parentNode === ui.log ? ui.typing : null);
    }
    if (d.index !== draft.next) { draft.next = -1; return; } // a gap: the stored message fills it in
    draft.next++;
    draft.text.appendData(d.delta);
    scrollDown();
  }
  function dropDraft(id, all) {
    for (const [key, draft] of drafts) {
      if (all || key === id) { draft.el.remove(); drafts.delete(key); }
    }
    if (!drafts.size) ui.log.removeAttribute("aria-busy");
  }

  // A bot answer's sources, as links only when they are http(s); a title is always text.
  const httpUrl = (u) => {
    try { const x = new URL(String(u)); return /^https?:$/.test(x.protocol) ? x.href : null; } catch (_) { return null; }
  };
  function sourcesNode(list) {
    if (!Array.isArray(list) || !list.length) return null;
    const ul = el("ul", { class: "src", "aria-label": "Sources" });
    for (const c of list.slice(0, 10)) {
      if (!c || typeof c !== "object") continue;
      const href = c.url ? httpUrl(c.url) : null;
      const text = String(c.title || href || "Source").slice(0, 200);
      ul.append(el("li", null, href ? el("a", { href, target: "_blank", rel: "noopener noreferrer", text }) : text));
    }
    return ul;
  }

  const renderAll = (list) => (list || []).slice().sort((a, b) => a.seq - b.seq).forEach(renderMessage);
  const scrollDown = () => { ui.log.scrollTop = ui.log.scrollHeight; };

  function clearMessages() {
    dropDraft(null, true);
    seen.clear();
    pending = null;
    greetingEl = null;
    state.lastSeq = 0;
    ui.log.replaceChildren();
  }

  // --- typing indicator -----------------------------------------------------------------------
  let typingWho = null;
  let typingTimer = 0;
  function showTyping(kind) {
    typingWho = kind;
    ui.typingText.textContent = kind === "agent" ? (state.agentName || "The agent") + " is typing\u2026"
      : kind === "prepare" ? "A reply is being prepared\u2026" : "The assistant is typing\u2026";
    ui.typingText.className = kind === "prepare" ? "" : "vh"; // a reply awaiting approval: say so
    ui.typing.hidden = false;
    ui.log.append(ui.typing);
    scrollDown();
    clearTimeout(typingTimer);
    if (kind === "agent") typingTimer = setTimeout(() => hideTyping("agent"), 8000);
  }
  function hideTyping(kind) {
    if (kind && typingWho !== kind) return;
    typingWho = null;
    ui.typing.hidden = true;
    if (ui.typing.parentNode) ui.typing.remove();
  }

  // --- status -------------------------------------------------------------------------------
  function setAgent(name) {
    if (name && name !== state.agentName) {
      state.agentName = String(name);
      setStatus(state.status);
    }
  }

  let statusGen = 0; // bumped by every status the server tells us first-hand, so an older read can't undo it
  function setStatus(status) {
    if (status === "queued-for-agent") status = "claimed";
    if (!["open", "human_requested", "claimed", "closed"].includes(status)) return;
    const was = state.status;
    const active = shadow.activeElement; // before anything is hidden (hiding it drops the focus)
    state.status = status;
    const closed = status === "closed";
    const waiting = status === "human_requested";
    ui.banner.className = "banner";
    ui.restart.hidden = !closed;
    ui.cont.hidden = ui.pulse.hidden = ui.wait.hidden = !waiting;
    ui.banner.hidden = status === "open";
    ui.input.placeholder = waiting ? "Add details for our team\u2026" : "Type your message\u2026";
    if (waiting) {
      ui.banner.classList.add("wait");
      ui.bannerText.textContent = "A person from our team is on the way.";
      ui.sub.textContent = "Waiting for a person";
      hideTyping("bot");
      renderWait();
    } else if (status === "claimed") {
      ui.banner.classList.add("agent");
      ui.bannerText.textContent = state.agentName ? "You're chatting with " + state.agentName + "."
        : "An agent has joined the conversation.";
      ui.sub.textContent = state.agentName ? "Chatting with " + state.agentName : "Chatting with an agent";
      announce(state.agentName ? state.agentName + " has joined the conversation." : ui.bannerText.textContent);
    } else if (closed) {
      ui.banner.classList.add("closed");
      ui.bannerText.textContent = "This conversation is closed.";
      ui.sub.textContent = "Conversation closed";
      announce(ui.bannerText.textContent);
      hideTyping();
      showRating();
    } else {
      ui.sub.textContent = presence();
      if (was === "human_requested") announce("You're chatting with the assistant again.");
    }
    if (waiting !== (was === "human_requested")) {
      clearInterval(clockTimer);
      clockTimer = waiting ? setInterval(renderWait, CLOCK_MS) : 0;
      if (!waiting) state.queue = null;
      scheduleQueue(waiting && !state.queue ? 0 : QUEUE_MS);
    }
    ui.handoff.hidden = status !== "open";
    setAway();
    showChoice();
    ui.input.disabled = closed;
    updateComposer();
    // Never strand focus on a button that just went away.
    if ((active === ui.handoff || active === ui.cont) && active.hidden) ui.input.focus();
    if (closed && shadow.activeElement === ui.input) ui.restart.focus();
    scrollDown();
  }

  // --- office hours ---------------------------------------------------------------------------
  // The header's line while the assistant answers: when the team replies (office hours).
  function presence() {
    const a = state.away;
    if (!a || a.open !== false) return "The team usually replies in " + (config.replyIn || "a few minutes");
    return a.when ? "The team is away \u00b7 back " + String(a.when) : "The team is away \u00b7 we'll reply by email";
  }

  function setAway(a) {
    if (a && typeof a === "object") state.away = a;
    if (state.status === "open") ui.sub.textContent = presence();
    const away = state.away && state.away.open === false ? state.away : null;
    ui.away.hidden = !away;
    if (!away) return;
    const back = Date.parse(away.backAt);
    const mine = isFinite(back) ? new Date(back).toLocaleString([], { weekday: "short", hour: "numeric",
      minute: "2-digit" }) : "";
    ui.awayText.textContent = String(away.message || "") + (mine ? " (Your time: " + mine + ".)" : "");
    const email = away.email ? String(away.email) : "";
    ui.emailForm.hidden = !!email || state.status !== "human_requested";
    ui.emailNote.hidden = !email;
    ui.emailNote.textContent = email ? "We'll reply to " + email + "." : "";
    if (state.status === "human_requested") ui.bannerText.textContent = "Our team is away right now.";
  }

  // --- rating a closed conversation (CSAT): 1 to 5 and an optional comment, once ----------------
  const ratedKey = storeKey + ":rated";
  const WORDS = ["very poor", "poor", "okay", "good", "very good"];
  let ratingFor = null;
  function showRating() {
    const id = state.sessionId;
    if (!id || ratingFor === id || store.get("localStorage", ratedKey) === id || !seen.size) return;
    ratingFor = id;
    let score = 0;
    const submit = el("button", { type: "submit", class: "btn2", text: "Send rating", disabled: true });
    const stars = el("div", { class: "stars" });
    WORDS.forEach((word, i) => {
      const b = el("button", { type: "button", "aria-pressed": "false", "aria-label": i + 1 + " of 5, " + word,
        text: String(i + 1) });
      b.addEventListener("click", () => {
        score = i + 1;
        for (const x of stars.children) x.setAttribute("aria-pressed", String(x === b));
        submit.disabled = false;
      });
      stars.append(b);
    });
    const comment = el("textarea", { rows: "2", maxlength: "1000", "aria-label": "Comment (optional)",
      placeholder: "Anything to add? (optional)" });
    const form = el("form", { class: "csat", "aria-label": "Rate this conversation" },
      el("fieldset", null, el("legend", { text: "How was this conversation?" }), stars), comment, submit);
    const thank = () => {
      store.set("localStorage", ratedKey, id);
      form.replaceChildren(el("p", { text: "Thank you for your feedback!" }));
      announce("Thank you for your feedback!");
    };
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!score || submit.disabled) return;
      submit.disabled = true;
      try {
        await api("POST", "/chat/rating", () => ({ sessionId: id, score, comment: comment.value.trim() }));
        thank();
      } catch (err) {
        if (err.status === 409) thank(); // already rated (another tab), or reopened: nothing to fix here
        else { submit.disabled = false; showError(err); }
      }
    });
    ui.log.append(form);
    scrollDown();
  }

  async function leaveEmail(e) {
    e.preventDefault();
    hideError();
    try {
      const res = await api("POST", "/chat/email", () => ({ sessionId: state.sessionId, email: ui.email.value }));
      setAway(res.body.away);
      announce(ui.emailNote.textContent);
    } catch (err) {
      showError(err);
    }
  }

  function showChoice() {
    ui.choice.hidden = !(config.choice && state.status === "open" && !seen.size);
    if (!ui.choice.hidden) ui.log.append(ui.choice);
  }

  // --- waiting for a person -----------------------------------------------------------------
  let clockTimer = 0;
  let queueTimer = 0;
  let announced = "";
  function announce(text) {
    if (text === announced) return; // the same words again would be read out again
    announced = ui.live.textContent = text;
  }

  const SUFFIX = ["th", "st", "nd", "rd"];
  const ordinal = (n) => n + (SUFFIX[(n % 100 - 20) % 10] || SUFFIX[n % 100] || "th");
  function setQueue(q) {
    if (!q || typeof q !== "object") q = null;
    const pos = q && typeof q.position === "number" ? Math.floor(q.position) : -1;
    const since = q && Date.parse(q.waitingSince);
    state.queue = q && { position: pos >= 0 ? pos : null, since: isFinite(since) ? since : null };
    renderWait();
  }
  function noteClock(m) {
    const t = m && Date.parse(m.createdAt);
    if (isFinite(t)) state.skew = t - Date.now();
  }

  function renderWait() {
    if (state.status !== "human_requested") return;
    const q = state.queue || {};
    const place = q.position == null ? ""
      : q.position <= 1 ? "You're next" : "You're " + ordinal(q.position) + " in line";
    let waited = "";
    if (q.since != null) {
      const min = Math.max(0, Math.floor((Date.now() + state.skew - q.since) / 60000));
      waited = min < 1 ? "waiting less than a minute" : min < 60 ? "waiting " + min + (min > 1 ? " minutes" : " minute")
        : "waiting " + Math.floor(min / 60) + " h " + (min % 60) + " min";
    }
    const line = place && waited ? place + " \u00b7 " + waited : place || waited;
    const text = line ? line.charAt(0).toUpperCase() + line.slice(1) : "We'll show your place in line here.";
    if (ui.wait.textContent !== text) ui.wait.textContent = text;
    // The minutes are shown, not read out: only the place in line goes to the live region.
    announce(ui.bannerText.textContent + (place ? " " + place + "." : ""));
  }

  // Live (SignalR) sessions hear nothing about the queue, so re-read it while waiting; polling already does.
  function scheduleQueue(delay) {
    clearTimeout(queueTimer);
    queueTimer = 0;
    if (state.status !== "human_requested" || !state.open || !live) return;
    queueTimer = setTimeout(() => {
      const read = document.visibilityState === "hidden" ? Promise.resolve() : catchUp();
      read.catch(() => {}).finally(() => scheduleQueue());
    }, delay ?? QUEUE_MS);
  }

  function updateComposer() {
    const len = ui.input.value.length;
    ui.count.textContent = len >= COUNTER_FROM ? len + " / " + MAX_CHARS : "";
    ui.count.classList.toggle("over", len >= MAX_CHARS);
    ui.send.disabled = state.sending || state.status === "closed" || !ui.input.value.trim();
  }

  // --- errors ---------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, title, detail, body) {
      super(detail || title);
      this.status = status;
      this.title = title;
      this.detail = detail;
      this.body = body || {};
    }
  }

  function showError(err) {
    let text;
    if (!err || !err.status) text = "We couldn't reach the chat service. Check your connection and try again.";
    else if (err.status === 429) text = (err.detail || "You're sending messages quickly.") + " Please wait a moment and try again.";
    else if (err.status >= 500) text = err.detail || "Something went wrong on our side. Please try again in a moment.";
    else text = err.detail || err.title || "Something went wrong. Please try again.";
    ui.errorText.textContent = text;
    ui.error.hidden = false;
  }
  const hideError = () => { ui.error.hidden = true; };

  // --- HTTP -----------------------------------------------------------------------------------
  async function request(method, path, body, headers) {
    let res;
    try {
      res = await fetch(apiBase + path, {
        method,
        mode: "cors",
        credentials: "omit",
        headers: { Accept: "application/json", ...(body ? { "Content-Type": "application/json" } : {}), ...headers },
        body: body ? JSON.stringify(body) : undefined,
      });
    } catch (_) {
      throw new ApiError(0, "Network error", "");
    }
    let json = null;
    try { json = await res.json(); } catch (_) { /* empty or not JSON */ }
    if (!res.ok) {
      const p = json && typeof json === "object" ? json : {};
      throw new ApiError(res.status, typeof p.title === "string" ? p.title : res.statusText,
        typeof p.detail === "string" ? p.detail : "", p);
    }
    return { status: res.status, body: json || {} };
  }

  // An authenticated call; one 401 renews the token (or starts over) and retries.
  async function api(method, path, makeBody, headers) {
    await ensureSession();
    for (let attempt = 0; ; attempt++) {
      const body = typeof makeBody === "function" ? makeBody() : makeBody;
      try {
        return await request(method, path.replace("{id}", encodeURIComponent(state.sessionId)), body,
          { Authorization: "Bearer " + state.token, ...headers });
      } catch (err) {
        if (err.status !== 401 || attempt > 0) throw err;
        state.expiresAt = null;
        await ensureSession();
      }
    }
  }

  function ensureSession() {
    const valid = state.token && state.expiresAt && Date.parse(state.expiresAt) - Date.now() > RENEW_MARGIN_MS;
    if (valid) return Promise.resolve();
    if (!sessionPromise) {
      sessionPromise = obtainSession().finally(() => { sessionPromise = null; });
    }
    return sessionPromise;
  }

  async function obtainSession() {
    let res = null;
    const page = pageNow();
    if (state.sessionId && state.token) {
      try {
        res = await request("POST", "/widget/session", { sessionId: state.sessionId, page },
          { Authorization: "Bearer " + state.token });
      } catch (err) {
        if (![400, 401, 403, 404, 409, 422].includes(err.status)) throw err; // 409: it closed; start anew
      }
    }
    const renewed = res && res.body.sessionId === state.sessionId;
    if (!res) res = await request("POST", "/widget/session", { page });
    const b = res.body;
    state.sessionId = b.sessionId;
    state.token = b.token;
    state.expiresAt = b.expiresAt;
    state.page = page ? page.url : null;
    saveSession();
    applyServerConfig(b.config);
    if (!renewed) {
      clearMessages();
      state.agentName = "";
      showGreeting();
      restartRealtime();
    }
    if (b.status) setStatus(b.status);
  }

  // --- history and polling --------------------------------------------------------------------
  async function catchUp() {
    if (!state.sessionId) return;
    const gen = statusGen;
    const res = await api("GET", "/chat/{id}/messages?after=" + state.lastSeq);
    const b = res.body;
    if (b.agentName) state.agentName = String(b.agentName);
    renderAll(b.messages);
    if (gen !== statusGen) return; // a newer status arrived while this read was out (e.g. the visitor cancelled)
    if (b.queue !== undefined) setQueue(b.queue);
    if (b.away) state.away = b.away;
    if (b.status) setStatus(b.status);
    if (b.replyPending) showTyping("prepare"); else hideTyping("prepare");
  }

  let pollTimer = 0;
  function schedulePoll(delay) {
    clearTimeout(pollTimer);
    pollTimer = 0;
    if (!state.open || live || state.status === "closed" || !state.sessionId) return;
    pollTimer = setTimeout(async () => {
      let next = POLL_MS;
      try { await catchUp(); } catch (_) { next = POLL_ERROR_MS; }
      schedulePoll(next);
    }, delay ?? POLL_MS);
  }

  // --- real time ------------------------------------------------------------------------------
  let conn = null;
  let live = false;
  let signalrPromise = null;

  function loadSignalR() {
    if (window.signalR) return Promise.resolve(window.signalR);
    if (!signalrPromise) {
      signalrPromise = new Promise((resolve, reject) => {
        const s = document.createElement("script");
        s.src = apiBase + "/vendor/signalr.js";
        s.async = true;
        s.onload = () => (window.signalR ? resolve(window.signalR) : reject(new Error("signalR missing")));
        s.onerror = () => reject(new Error("signalR failed to load"));
        document.head.append(s);
      });
    }
    return signalrPromise;
  }

  const mine = (p) => p && typeof p === "object" && (!p.sessionId || p.sessionId === state.sessionId);

  async function connect() {
    try {
      const sr = await loadSignalR();
      if (conn) return;
      const c = new sr.HubConnectionBuilder()
        .withUrl(apiBase, { accessTokenFactory: () => ensureSession().then(() => state.token) })
        .withAutomaticReconnect()
        .configureLogging(sr.LogLevel.None)
        .build();
      conn = c;
      c.on("ChatMessageDelta", onDelta);
      c.on("ChatMessageReceived", (m) => {
        if (mine(m)) { renderMessage(m); if (m.sender === "bot") hideTyping("prepare"); }
      });
      c.on("TypingIndicator", (t) => {
        if (!mine(t) || t.sender === "visitor") return;
        if (t.isTyping) showTyping("agent"); else hideTyping("agent");
      });
      c.on("SessionUpdated", (u) => {
        if (!mine(u)) return;
        if (u.agentName) state.agentName = String(u.agentName);
        if (u.queue !== undefined) setQueue(u.queue);
        if (u.status) { statusGen++; setStatus(u.status); }
        if (u.replyPending === false) hideTyping("prepare");
      });
      c.onreconnecting(() => { live = false; schedulePoll(0); scheduleQueue(); });
      c.onreconnected(() => { live = true; schedulePoll(); scheduleQueue(); catchUp().catch(() => {}); });
      c.onclose(() => { if (conn === c) { conn = null; live = false; schedulePoll(0); scheduleQueue(); } });
      await c.start();
      if (conn !== c) return;
      live = true;
      schedulePoll();
      scheduleQueue();
      catchUp().catch(() => {}); // anything sent between the history fetch and the connection
    } catch (_) {
      conn = null;
      live = false;
      schedulePoll(); // no real time here (blocked script, no SignalR configured): poll instead
    }
  }

  function restartRealtime() {
    const old = conn;
    conn = null;
    live = false;
    if (old) old.stop().catch(() => {});
    if (state.opened) connect();
  }

  // --- sending --------------------------------------------------------------------------------
  const uuid = () => (crypto.randomUUID ? crypto.randomUUID()
    : "10000000-1000-4000-8000-100000000000".replace(/[018]/g, (c) =>
      (c ^ (crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (c / 4)))).toString(16)));

  async function sendMessage() {
    const text = ui.input.value;
    if (state.sending || !text.trim() || state.status === "closed") return;
    if (text.length > MAX_CHARS) {
      showError(new ApiError(413, "", "Messages can be at most " + MAX_CHARS + " characters."));
      return;
    }
    const fresh = !(retry && retry.text === text); // a reused key may replay an old message (and its time)
    const key = fresh ? uuid() : retry.key;
    retry = { text, key };
    hideError();
    stopVisitorTyping();
    state.sending = true;
    ui.input.value = "";
    autoSize();
    updateComposer();
    const bubble = el("div", { class: "msg visitor pending" }, el("span", { class: "who vh", text: "You" }),
      document.createTextNode(text));
    pending = { text, el: bubble };
    ui.log.append(bubble);
    scrollDown();
    if (state.status === "open") showTyping("bot");
    try {
      const res = await api("POST", "/chat", () => ({ message: text, sessionId: state.sessionId }),
        { "Idempotency-Key": key });
      const b = res.body;
      retry = null;
      if (pending && pending.el === bubble && b.message) pending.text = b.message.text;
      if (b.agentName) state.agentName = String(b.agentName);
      if (fresh) noteClock(b.message);
      renderMessage(b.message);
      if (b.reply) renderMessage(b.reply);
      if (b.offerPerson && b.reply && seen.get(b.reply.seq)) {
        const offer = el("button", { type: "button", class: "link", text: "Talk to a person" });
        offer.addEventListener("click", () => { offer.remove(); requestHandoff(); });
        seen.get(b.reply.seq).append(offer);
      }
      if (b.away) state.away = b.away;
      const status = res.status === 202 ? b.sessionStatus || "claimed" : b.status;
      if (b.queue !== undefined) setQueue(b.queue);
      statusGen++;
      setStatus(status);
      if (b.replyPending) showTyping("prepare"); // autonomy "approve": an agent sends the reply
      const sent = b.message && seen.get(b.message.seq);
      if (status === "human_requested" && !b.reply && sent && !sent.querySelector(".st")) {
        sent.append(el("span", { class: "st", text: "Sent \u2014 our team will see it when they join" }));
      }
    } catch (err) {
      if (pending && pending.el === bubble) { bubble.remove(); pending = null; }
      // Give the text back so the visitor can retry without retyping.
      if (!ui.input.value) ui.input.value = text;
      else if (!ui.input.value.includes(text)) ui.input.value = text + "\n" + ui.input.value;
      autoSize();
      if (err.status === 409) {
        setStatus("closed");
        showError(new ApiError(409, "", err.detail || "This conversation is closed. Start a new one to keep chatting."));
      } else {
        showError(err);
      }
    } finally {
      state.sending = false;
      if (typingWho === "bot") hideTyping("bot");
      dropDraft(null, true); // the turn is over: what was streamed is either stored (shown) or dropped
      updateComposer();
      if (pending && pending.el === bubble) { pending.el.classList.remove("pending"); pending = null; }
    }
  }

  let handingOff = false;
  async function requestHandoff() {
    hideError();
    if (handingOff) return;
    handingOff = true;
    try {
      const res = await api("POST", "/chat/handoff", () => ({ sessionId: state.sessionId }));
      const b = res.body;
      noteClock(b.message);
      renderMessage(b.message);
      if (b.queue !== undefined) setQueue(b.queue);
      if (b.away) state.away = b.away;
      statusGen++;
      setStatus(b.status || "human_requested");
    } catch (err) {
      showError(err);
    } finally {
      handingOff = false;
    }
  }

  // "Continue with the assistant": withdraw the request for a person; the bot answers again.
  let cancelling = false;
  async function cancelHandoff() {
    hideError();
    if (cancelling) return;
    cancelling = true;
    ui.cont.setAttribute("aria-disabled", "true"); // not `disabled`: that would drop the keyboard focus
    try {
      const res = await api("DELETE", "/chat/handoff", () => ({ sessionId: state.sessionId }));
      renderMessage(res.body.message);
      statusGen++;
      setStatus(res.body.status || "open");
    } catch (err) {
      if (err.status === 409 && /already-claimed$/.test(String(err.body.type || ""))) {
        // Someone picked it up first: the agent has joined, which is what the visitor came for.
        if (err.body.agentName) state.agentName = String(err.body.agentName);
        statusGen++;
        setStatus("claimed");
        catchUp().catch(() => {}); // the agent's name and anything they wrote
      } else {
        showError(err);
        if (err.status === 409) catchUp().catch(() => {}); // closed meanwhile, or already back with the bot
      }
    } finally {
      cancelling = false;
      ui.cont.removeAttribute("aria-disabled");
    }
  }

  async function startOver() {
    hideError();
    state.sessionId = state.token = state.expiresAt = null;
    state.agentName = "";
    saveSession();
    clearMessages();
    setStatus("open");
    try {
      await ensureSession();
      ui.input.focus();
    } catch (err) {
      showError(err);
    }
  }

  // The agent sees "typing..." only while someone owns the conversation.
  let typingSent = false;
  let typingIdle = 0;
  function noteVisitorTyping() {
    if (state.status !== "claimed" || !state.sessionId) return;
    clearTimeout(typingIdle);
    typingIdle = setTimeout(stopVisitorTyping, TYPING_IDLE_MS);
    if (!typingSent) {
      typingSent = true;
      api("POST", "/chat/typing", () => ({ sessionId: state.sessionId, isTyping: true })).catch(() => {});
    }
  }
  function stopVisitorTyping() {
    clearTimeout(typingIdle);
    if (!typingSent) return;
    typingSent = false;
    api("POST", "/chat/typing", () => ({ sessionId: state.sessionId, isTyping: false })).catch(() => {});
  }

  // --- open / close ---------------------------------------------------------------------------
  async function openPanel(focus = true) {
    state.open = true;
    store.set("sessionStorage", openKey, true);
    ui.panel.hidden = false;
    ui.launcher.setAttribute("aria-expanded", "true");
    applyConfig();
    state.unread = 0;
    ui.badge.hidden = ui.peek.hidden = true;
    applyConfig();
    if (focus) ui.input.focus();
    scrollDown();
    const first = !state.opened;
    state.opened = true;
    try {
      if (first && !state.sessionId) await ensureSession();
      else await catchUp();
      showGreeting();
      if (first) connect(); else { schedulePoll(); scheduleQueue(); }
    } catch (err) {
      showGreeting();
      showError(err);
      if (first && state.sessionId) connect(); else schedulePoll(POLL_ERROR_MS);
    }
  }

  function closePanel(returnFocus = true) {
    state.open = false;
    store.set("sessionStorage", openKey, null);
    ui.panel.hidden = true;
    ui.launcher.setAttribute("aria-expanded", "false");
    applyConfig();
    schedulePoll();
    scheduleQueue();
    stopVisitorTyping();
    if (returnFocus) ui.launcher.focus();
  }

  function autoSize() {
    ui.input.style.height = "auto";
    ui.input.style.height = Math.min(ui.input.scrollHeight + 2, 120) + "px";
  }

  ui.launcher.addEventListener("click", () => (state.open ? closePanel() : openPanel()));
  ui.peek.addEventListener("click", () => openPanel());
  ui.close.addEventListener("click", () => closePanel());
  ui.panel.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      e.stopPropagation();
      closePanel();
    }
  });
  ui.input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      sendMessage();
    }
  });
  ui.input.addEventListener("input", () => { autoSize(); updateComposer(); noteVisitorTyping(); });
  ui.send.addEventListener("click", sendMessage);
  ui.handoff.addEventListener("click", requestHandoff);
  ui.emailForm.addEventListener("submit", leaveEmail);
  ui.choice.firstChild.addEventListener("click", () => { ui.choice.hidden = true; ui.input.focus(); });
  ui.choice.lastChild.addEventListener("click", () => { ui.choice.hidden = true; requestHandoff(); });
  ui.cont.addEventListener("click", cancelHandoff);
  ui.restart.addEventListener("click", startOver);
  ui.errorClose.addEventListener("click", () => { hideError(); ui.input.focus(); });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && state.open && state.sessionId) catchUp().catch(() => {});
  });

  // A page load inside a conversation tells the agents where the visitor is now (once per address).
  // A refusal (the conversation closed, the token too old) changes nothing here: the next message
  // starts again as it would have.
  let noting = false;
  function notePage() {
    const page = pageNow();
    if (noting || !page || !state.sessionId || !state.token || state.page === page.url) return;
    noting = true;
    request("POST", "/widget/session", { sessionId: state.sessionId, page }, { Authorization: "Bearer " + state.token })
      .then((res) => {
        if (res.body.sessionId !== state.sessionId) return;
        state.token = res.body.token;
        state.expiresAt = res.body.expiresAt;
        state.page = page.url;
        saveSession();
      })
      .catch(() => { if (state.sessionId) { state.page = page.url; saveSession(); } }) // not asked again here
      .finally(() => { noting = false; });
  }

  const mount = () => {
    document.body.append(host);
    applyConfig();
    setStatus("open");
    notePage();
    // A single-page site changes its address without loading a page: look every few seconds (by then
    // it has usually set the new page's title too).
    setInterval(notePage, PAGE_CHECK_MS);
    if (store.get("sessionStorage", openKey)) openPanel(false); // stay open across page navigations
  };
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
