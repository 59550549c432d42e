/* Agent console (a Teams tab): sign-in, queue, claim, live chat, close. No framework.
 * Inside Teams the token comes from Teams SSO; elsewhere from the Development-only dev sign-in.
 * All text from the API goes in through textContent.
 */
(() => {
  "use strict";

  const script = document.currentScript;
  const apiBase = (document.documentElement.dataset.api ||
    (script && script.src ? new URL(".", script.src).href : new URL(".", location.href).href)).replace(/\/+$/, "");
  const POLL_MS = 3000;
  const TEAMS_INIT_MS = 2000;
  const DEV_TOKEN_KEY = "supportdesk-agent-dev-token";
  const TABS = {
    waiting: { status: "human_requested" },
    mine: { status: "claimed", claimedBy: "me" },
    bot: { status: "open" },
    all: {},
  };
  const STATUS_TEXT = { open: "Bot", human_requested: "Waiting", claimed: "Claimed", closed: "Closed" };

  const $ = (id) => document.getElementById(id);
  const ui = {
    live: $("live"), me: $("me"), signout: $("signout"), banners: $("banners"),
    signin: $("signin"), signinNote: $("signin-note"), signinForm: $("signin-form"),
    signinName: $("signin-name"), signinEmail: $("signin-email"), signinError: $("signin-error"),
    console: $("console"), refresh: $("refresh"), sessions: $("sessions"), empty: $("queue-empty"),
    more: $("more"), queueList: $("queue-list"), waitingCount: $("waiting-count"),
    back: $("back"), chatTitle: $("chat-title"), chatSub: $("chat-sub"), chatPage: $("chat-page"), claim: $("claim"), close: $("close"),
    transcript: $("transcript"), typing: $("typing"), composer: $("composer"), reply: $("reply"), send: $("send"),
    mute: $("mute"), toasts: $("toasts"), transfer: $("transfer"), transferForm: $("transfer-form"),
    transferTo: $("transfer-to"), transferError: $("transfer-error"), picker: $("picker"),
    noteBox: $("note-box"), noteForm: $("note-form"), noteText: $("note-text"),
    search: $("search"), searchQ: $("search-q"), searchResults: $("search-results"), searchList: $("search-list"),
    searchClear: $("search-clear"),
  };
  const tabs = [...document.querySelectorAll('[role="tab"]')];

  const state = {
    mode: null, // "teams" | "dev"
    token: null,
    tokenExpires: 0,
    me: null,
    tab: "waiting",
    rows: new Map(), // sessionId -> session summary
    pushed: new Map(), // sessionId -> {row, at}: live updates the listing may not show yet
    cursor: null,
    current: null, // the open session: {sessionId, status, claimedBy, claimedByName, ...}
    seen: new Map(), // seq -> element, for the open transcript
    lastSeq: 0,
    unread: new Set(),
    live: false,
    knownWaiting: null, // session ids seen waiting (null until the first load: no alert for those)
    notes: new Map(), // note id -> element, for the open transcript
    replies: null, // saved replies, loaded on first "/"
    owners: new Map(), // sessionId -> the owner last seen, to tell a transfer to me from my own claim
    claimedHere: new Set(),
  };

  // --- small helpers --------------------------------------------------------------------------
  const el = (tag, cls, text) => {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text != null) node.textContent = String(text);
    return node;
  };
  const shortId = (id) => String(id || "").slice(0, 8);
  const ago = (iso) => {
    const t = Date.parse(iso || "");
    if (!t) return "";
    const s = Math.max(0, Math.round((Date.now() - t) / 1000));
    if (s < 60) return "just now";
    if (s < 3600) return Math.floor(s / 60) + " min ago";
    if (s < 86400) return Math.floor(s / 3600) + " h ago";
    return new Date(t).toLocaleDateString();
  };
  const safeUrl = (u) => {
    try {
      const url = new URL(String(u), location.href);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (_) { return null; }
  };
  // A visitor without an email gets a name that stays the same for their session: "Amber Otter".
  const ADJECTIVES = ["Amber", "Brave", "Calm", "Clever", "Coral", "Eager", "Gentle", "Golden", "Happy", "Jolly",
    "Kind", "Lively", "Lucky", "Mellow", "Misty", "Noble", "Olive", "Quiet", "Rosy", "Sunny", "Swift", "Teal",
    "Witty", "Zesty"];
  const ANIMALS = ["Badger", "Beaver", "Crane", "Dolphin", "Falcon", "Fox", "Gecko", "Heron", "Koala", "Lark",
    "Lynx", "Marten", "Moose", "Otter", "Owl", "Panda", "Puffin", "Quail", "Robin", "Seal", "Swan", "Tiger",
    "Walrus", "Wren"];
  const friendlyName = (id) => {
    let h = 2166136261; // FNV-1a
    for (const ch of String(id || "")) { h ^= ch.charCodeAt(0); h = Math.imul(h, 16777619) >>> 0; }
    return ADJECTIVES[h % ADJECTIVES.length] + " " + ANIMALS[Math.floor(h / ADJECTIVES.length) % ANIMALS.length];
  };
  const visitorLabel = (s) => {
    const h = (s && s.handoff) || {};
    if (h.email) return h.email;
    if (s && s.channel === "email" && s.address) return s.address;
    return friendlyName(s && s.sessionId);
  };
  const CHANNEL_TEXT = { web: "Web", sms: "SMS", whatsapp: "WhatsApp", telegram: "Telegram", email: "Email" };
  // What the visitor asked: the handoff summary, their question, or their own last message.
  const visitorPreview = (s) => {
    const h = s.handoff || {};
    return (h.summary && h.summary.wants) || h.question || s.visitorPreview || s.preview || "(no messages yet)";
  };
  const waitingSince = (s) => s.status === "human_requested"
    ? (Date.parse(s.handoffRequestedAt || "") || (typeof s.waitingSeconds === "number" && s.loadedAt
      ? s.loadedAt - s.waitingSeconds * 1000 : 0)) : 0;
  const waitingText = (since) => {
    const sec = Math.max(0, Math.round((Date.now() - since) / 1000));
    return "waiting " + (sec < 60 ? "under a minute" : sec < 3600 ? Math.floor(sec / 60) + " min"
      : Math.floor(sec / 3600) + " h " + Math.floor((sec % 3600) / 60) + " min");
  };
  const debounce = (fn, ms) => {
    let t = 0;
    return () => { clearTimeout(t); t = setTimeout(fn, ms); };
  };

  // --- banners --------------------------------------------------------------------------------
  function banner(key, text, { kind = "warn", link = null, linkText = "" } = {}) {
    let node = ui.banners.querySelector(`[data-key="${key}"]`);
    if (!node) {
      node = el("div", "banner");
      node.dataset.key = key;
      ui.banners.append(node);
    }
    node.className = "banner" + (kind === "error" ? " error" : "");
    node.setAttribute("role", kind === "error" ? "alert" : "status");
    node.replaceChildren();
    const p = el("p", "", text);
    const href = link && safeUrl(link);
    if (href) {
      p.append(" ");
      const a = el("a", "", linkText || "Upgrade");
      a.href = href;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      p.append(a);
    }
    const x = el("button", "", "\u00d7");
    x.type = "button";
    x.setAttribute("aria-label", "Dismiss");
    x.addEventListener("click", () => node.remove());
    node.append(p, x);
  }
  const clearBanner = (key) => { const n = ui.banners.querySelector(`[data-key="${key}"]`); if (n) n.remove(); };
  const problemText = (err, fallback) => (err && (err.detail || err.title)) || fallback;

  // --- HTTP -----------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, body) {
      const b = body && typeof body === "object" ? body : {};
      super(b.detail || b.title || "HTTP " + status);
      this.status = status;
      this.title = typeof b.title === "string" ? b.title : "";
      this.detail = typeof b.detail === "string" ? b.detail : "";
      this.body = b;
    }
  }

  async function rawFetch(method, path, body, token) {
    let res;
    try {
      res = await fetch(apiBase + path, {
        method,
        headers: {
          Accept: "application/json",
          ...(body !== undefined ? { "Content-Type": "application/json" } : {}),
          ...(token ? { Authorization: "Bearer " + token } : {}),
        },
        body: body !== undefined ? JSON.stringify(body) : undefined,
      });
    } catch (_) {
      throw new ApiError(0, { title: "Network error", detail: "The support desk can't be reached. Check your connection." });
    }
    let json = null;
    try { json = await res.json(); } catch (_) { /* no body */ }
    if (!res.ok) throw new ApiError(res.status, json);
    return json || {};
  }

  // Authenticated call; one 401 gets a fresh token (Teams) or sends the agent to sign in (dev).
  async function api(method, path, body) {
    for (let attempt = 0; ; attempt++) {
      const token = await getToken(attempt > 0);
      try {
        return await rawFetch(method, path, body, token);
      } catch (err) {
        if (err.status !== 401 || attempt > 0) throw err;
      }
    }
  }

  // --- authentication -------------------------------------------------------------------------
  function loadScript(src) {
    return new Promise((resolve, reject) => {
      const s = document.createElement("script");
      s.src = src;
      s.onload = resolve;
      s.onerror = () => reject(new Error("failed to load " + src));
      document.head.append(s);
    });
  }
  const withTimeout = (promise, ms) => Promise.race([
    promise, new Promise((_, reject) => setTimeout(() => reject(new Error("timeout")), ms))]);

  async function tryTeams() {
    // A plain browser tab (top level, no Teams user agent) is not Teams: skip the wait.
    if (window.self === window.top && !/Teams|Electron/i.test(navigator.userAgent)) return false;
    try {
      await withTimeout(loadScript(apiBase + "/vendor/teams.js"), TEAMS_INIT_MS);
      const teams = window.microsoftTeams;
      if (!teams || !teams.app) return false;
      await withTimeout(teams.app.initialize(), TEAMS_INIT_MS);
      try {
        const ctx = await teams.app.getContext();
        applyTheme(ctx && ctx.app && ctx.app.theme);
        teams.app.registerOnThemeChangeHandler(applyTheme);
      } catch (_) { /* the theme is cosmetic */ }
      return true;
    } catch (_) {
      return false;
    }
  }

  function applyTheme(theme) {
    const root = document.documentElement;
    root.classList.toggle("dark", theme === "dark");
    root.classList.toggle("contrast", theme === "contrast");
  }

  async function getToken(forceFresh) {
    if (state.mode === "teams") {
      if (!forceFresh && state.token && state.tokenExpires - Date.now() > 60000) return state.token;
      const token = await window.microsoftTeams.authentication.getAuthToken();
      state.token = token;
      state.tokenExpires = jwtExpiry(token);
      return token;
    }
    if (forceFresh || !state.token || state.tokenExpires - Date.now() < 30000) {
      signOut("Your sign-in expired. Please sign in again.");
      throw new ApiError(401, { title: "Signed out", detail: "Please sign in again." });
    }
    return state.token;
  }

  function jwtExpiry(token) {
    try {
      const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const exp = JSON.parse(atob(part)).exp;
      return typeof exp === "number" ? exp * 1000 : Date.now() + 3600000;
    } catch (_) {
      return Date.now() + 3600000;
    }
  }

  function showSignIn(note) {
    ui.console.hidden = true;
    ui.signin.hidden = false;
    ui.me.hidden = true;
    ui.signout.hidden = true;
    setLive("off");
    if (note) ui.signinNote.textContent = note;
    ui.signinName.focus();
  }

  async function devSignIn(event) {
    event.preventDefault();
    const name = ui.signinName.value.trim();
    const email = ui.signinEmail.value.trim();
    ui.signinError.textContent = "";
    if (!name || !/^[^@\s]+@[^@\s]+$/.test(email)) {
      ui.signinError.textContent = "Enter your name and a valid email address.";
      return;
    }
    const button = ui.signinForm.querySelector("button");
    button.disabled = true;
    try {
      const body = await rawFetch("POST", "/dev/token", { name, email });
      const token = body.accessToken || body.token;
      if (!token) throw new ApiError(500, { detail: "The sign-in answer had no token." });
      state.mode = "dev";
      state.token = token;
      state.tokenExpires = body.expiresAt ? Date.parse(body.expiresAt)
        : body.expiresIn ? Date.now() + body.expiresIn * 1000 : jwtExpiry(token);
      try { sessionStorage.setItem(DEV_TOKEN_KEY, JSON.stringify({ token, expires: state.tokenExpires })); } catch (_) { /* ok */ }
      await start();
    } catch (err) {
      ui.signinError.textContent = err.status === 404
        ? "The development sign-in is not available on this deployment. Open the console as a tab in Microsoft Teams."
        : problemText(err, "Sign-in failed.");
    } finally {
      button.disabled = false;
    }
  }

  function signOut(note) {
    try { sessionStorage.removeItem(DEV_TOKEN_KEY); } catch (_) { /* ok */ }
    state.token = null;
    state.tokenExpires = 0;
    state.me = null;
    stopRealtime();
    clearTimeout(pollTimer);
    if (state.mode === "teams") {
      banner("auth", note || "Signed out.", { kind: "error" });
      return;
    }
    showSignIn(note || "Outside Microsoft Teams, use the development sign-in.");
  }

  // --- start ----------------------------------------------------------------------------------
  async function boot() {
    ui.signinForm.addEventListener("submit", devSignIn);
    if (await tryTeams()) {
      state.mode = "teams";
      try {
        await getToken(true);
      } catch (err) {
        banner("auth", "Teams single sign-on failed: " + (err && err.message ? err.message : "unknown error") +
          ". Ask your admin to grant the app consent.", { kind: "error" });
        return;
      }
      await start();
      return;
    }
    try {
      const saved = JSON.parse(sessionStorage.getItem(DEV_TOKEN_KEY) || "null");
      if (saved && saved.token && saved.expires - Date.now() > 60000) {
        state.mode = "dev";
        state.token = saved.token;
        state.tokenExpires = saved.expires;
        await start();
        return;
      }
    } catch (_) { /* no saved sign-in */ }
    showSignIn();
  }

  async function start() {
    try {
      state.me = await api("GET", "/agent/me");
    } catch (err) {
      if (err.status === 401) return;
      if (state.mode === "dev") showSignIn(problemText(err, "Sign-in failed."));
      else banner("auth", problemText(err, "You can't use the agent console."), { kind: "error" });
      return;
    }
    clearBanner("auth");
    ui.signin.hidden = true;
    ui.console.hidden = false;
    ui.me.hidden = false;
    ui.me.textContent = "Signed in as " + (state.me.name || state.me.upn || state.me.email || "agent");
    ui.me.title = state.me.upn || state.me.email || "";
    ui.signout.hidden = state.mode !== "dev";
    api("GET", "/agent/colleagues").catch(() => {}); // puts this agent in the directory transfers pick from
    await refreshQueue();
    connect();
    extensions.ready.forEach((fn) => fn());
  }

  // --- queue ----------------------------------------------------------------------------------
  function queueQuery(tab, cursor) {
    const q = new URLSearchParams({ ...TABS[tab], limit: "50" });
    if (cursor) q.set("cursor", cursor);
    return "/agent/sessions?" + q.toString();
  }

  let queueBusy = false;
  let queueAgain = false;
  async function refreshQueue() {
    if (!state.me) return;
    if (queueBusy) { queueAgain = true; return; } // an event arrived mid-refresh: run once more after
    queueBusy = true;
    queueAgain = false;
    try {
      const tab = state.tab;
      const body = await api("GET", queueQuery(tab));
      if (tab !== state.tab) return;
      const loadedAt = Date.now();
      state.rows = new Map((body.sessions || []).map((s) => [s.sessionId, { ...s, loadedAt }]));
      keepRecentPushes(tab);
      state.cursor = body.nextCursor || null;
      renderQueue();
      if (tab === "waiting") {
        setWaitingCount(state.rows.size, !!state.cursor);
        noticeWaiting(body.sessions || []);
      } else {
        const waiting = await api("GET", queueQuery("waiting"));
        setWaitingCount((waiting.sessions || []).length, !!waiting.nextCursor);
        noticeWaiting(waiting.sessions || []);
      }
      clearBanner("queue");
    } catch (err) {
      if (err.status !== 401) banner("queue", "The queue couldn't be loaded: " + problemText(err, "error"), { kind: "error" });
    } finally {
      queueBusy = false;
      if (queueAgain) refreshSoon();
    }
  }
  const refreshSoon = debounce(refreshQueue, 300);

  // The listing is an ordering the server updates a moment after each change, so a session just
  // pushed may not be in it yet: keep what a push told us for a few seconds, newest wins.
  const PUSH_KEPT_MS = 15000;
  function keepRecentPushes(tab) {
    const now = Date.now();
    for (const [id, { row, at }] of state.pushed) {
      if (now - at > PUSH_KEPT_MS) { state.pushed.delete(id); continue; }
      const listed = state.rows.get(id);
      if (listed && (listed.messageCount || 0) >= (row.messageCount || 0)) continue;
      if (rowMatchesTab(row, tab)) state.rows.set(id, { ...(listed || {}), ...row });
      else state.rows.delete(id);
    }
  }

  async function loadMore() {
    if (!state.cursor) return;
    try {
      const body = await api("GET", queueQuery(state.tab, state.cursor));
      for (const s of body.sessions || []) state.rows.set(s.sessionId, s);
      state.cursor = body.nextCursor || null;
      renderQueue();
    } catch (err) {
      banner("queue", problemText(err, "More sessions couldn't be loaded."), { kind: "error" });
    }
  }

  function setWaitingCount(n, more) {
    ui.waitingCount.textContent = n ? String(n) + (more ? "+" : "") : "";
    document.title = (n ? "(" + n + ") " : "") + "Support desk - Agent console";
  }

  function rowMatchesTab(s, tab = state.tab) {
    const f = TABS[tab];
    if (f.status && s.status !== f.status) return false;
    if (f.claimedBy === "me" && (!state.me || s.claimedBy !== state.me.oid)) return false;
    return true;
  }

  function renderQueue() {
    const focusedId = document.activeElement && document.activeElement.dataset
      ? document.activeElement.dataset.sessionId : null;
    const items = [...state.rows.values()].filter((s) => rowMatchesTab(s))
      .sort((a, b) => Date.parse(b.lastActivityAt || 0) - Date.parse(a.lastActivityAt || 0));
    ui.sessions.replaceChildren(...items.map(renderRow));
    ui.empty.hidden = items.length > 0;
    ui.more.hidden = !state.cursor;
    if (focusedId) {
      const again = ui.sessions.querySelector(`[data-session-id="${CSS.escape(focusedId)}"]`);
      if (again) again.focus();
    }
  }

  function renderRow(s) {
    const li = el("li");
    const b = el("button", "row" + (state.unread.has(s.sessionId) ? " unread" : ""));
    b.type = "button";
    b.dataset.sessionId = s.sessionId;
    if (state.current && state.current.sessionId === s.sessionId) b.setAttribute("aria-current", "true");
    const line1 = el("span", "line1");
    line1.append(el("span", "label", visitorLabel(s)),
      el("span", "chip channel", CHANNEL_TEXT[s.channel || "web"] || String(s.channel)),
      el("span", "chip " + s.status, STATUS_TEXT[s.status] || s.status));
    const preview = el("span", "preview", visitorPreview(s));
    const line2 = el("span", "line2");
    const owner = s.claimedBy ? (state.me && s.claimedBy === state.me.oid ? "you" : s.claimedByName || "another agent") : "";
    const since = waitingSince(s);
    if (since) {
      const w = el("span", "wait", waitingText(since));
      w.dataset.since = String(since);
      line2.append(w);
    } else line2.append(el("span", "", ago(s.lastActivityAt)));
    line2.append(el("span", "", (s.messageCount || 0) + " msgs"));
    const page = pageName(s.page);
    if (page) line2.append(el("span", "page", "on " + page));
    if (owner) line2.append(el("span", "", "with " + owner));
    if (typeof s.costUsd === "number" && s.costUsd > 0) line2.append(el("span", "", "$" + s.costUsd.toFixed(4)));
    b.append(line1, preview, line2);
    b.addEventListener("click", () => openSession(s.sessionId));
    li.append(b);
    return li;
  }

  function selectTab(name, focus) {
    state.tab = name;
    for (const t of tabs) {
      const on = t.dataset.tab === name;
      t.setAttribute("aria-selected", String(on));
      t.tabIndex = on ? 0 : -1;
      if (on) {
        ui.queueList.setAttribute("aria-labelledby", t.id);
        if (focus) t.focus();
      }
    }
    state.rows = new Map();
    state.cursor = null;
    renderQueue();
    refreshQueue();
  }

  // --- the open conversation ------------------------------------------------------------------
  const isMine = (s) => !!(s && state.me && s.status === "claimed" && s.claimedBy === state.me.oid);

  async function openSession(id) {
    stopTyping();
    const summary = state.rows.get(id) || { sessionId: id };
    state.current = { ...summary };
    state.seen = new Map();
    state.notes = new Map();
    state.lastSeq = 0;
    state.unread.delete(id);
    ui.transferForm.hidden = true;
    ui.transcript.replaceChildren();
    ui.typing.hidden = true;
    ui.console.classList.add("viewing");
    renderQueue();
    renderHeader();
    await loadTranscript(true);
    loadNotes(state.current);
    if (isMine(state.current)) ui.reply.focus();
    else ui.transcript.focus();
  }

  async function loadTranscript(first) {
    const cur = state.current;
    if (!cur) return;
    try {
      const body = await api("GET", `/agent/sessions/${encodeURIComponent(cur.sessionId)}/messages?after=${state.lastSeq}`);
      if (state.current !== cur) return;
      if (body.session) Object.assign(cur, body.session);
      if (body.handoff) cur.handoff = body.handoff;
      else if (body.status) cur.status = body.status;
      (body.messages || []).slice().sort((a, b) => a.seq - b.seq).forEach(renderMessage);
      if (first && !state.seen.size) ui.transcript.replaceChildren(el("p", "empty", "No messages yet."));
      renderHeader();
    } catch (err) {
      if (first && err.status !== 401) banner("chat", "The transcript couldn't be loaded: " + problemText(err, "error"), { kind: "error" });
    }
  }

  // The bot's handoff summary, the email a visitor left while the team was away, how long they waited.
  const waited = (sec) => sec < 60 ? "under a minute" : sec < 3600 ? Math.floor(sec / 60) + " min"
    : Math.floor(sec / 3600) + " h " + Math.floor((sec % 3600) / 60) + " min";
  const handoffBox = el("div", "handoff");
  handoffBox.hidden = true;
  ui.transcript.before(handoffBox);
  function renderHandoff(s) {
    const h = s.handoff || {};
    const sum = h.summary || {};
    const wait = typeof s.waitedSeconds === "number" ? s.waitedSeconds : s.waitingSeconds;
    const lines = [["Summary", sum.text], ["Reply by email", h.email],
      ["Waited", typeof wait === "number" ? waited(wait) : ""]].filter(([, v]) => v);
    handoffBox.replaceChildren(...lines.map(([k, v]) => {
      const p = el("p");
      p.append(el("strong", "", k + ": "), String(v));
      return p;
    }));
    handoffBox.hidden = !lines.length;
  }
  // Closing: how it ended and what the bot should have answered (both optional; the note becomes a draft Q&A).
  const closeForm = el("div", "close-form");
  const outcome = el("select");
  outcome.setAttribute("aria-label", "Outcome");
  for (const [v, t] of [["", "Outcome (optional)"], ["resolved", "Resolved"], ["unresolved", "Unresolved"]]) {
    const o = el("option", "", t);
    o.value = v;
    outcome.append(o);
  }
  const learning = el("textarea");
  learning.maxLength = 4000;
  learning.rows = 2;
  learning.placeholder = "What should the bot have answered? (optional; an admin reviews it as a draft Q&A)";
  learning.setAttribute("aria-label", "Learning note");
  closeForm.append(outcome, learning);
  closeForm.hidden = true;
  ui.composer.after(closeForm);

  function renderHeader() {
    const s = state.current;
    if (!s) return;
    renderHandoff(s);
    const mine = isMine(s);
    ui.chatTitle.textContent = visitorLabel(s);
    const owner = s.status === "claimed"
      ? (mine ? "claimed by you" : "claimed by " + (s.claimedByName || "another agent")) : "";
    ui.chatSub.textContent = [STATUS_TEXT[s.status] || s.status || "", CHANNEL_TEXT[s.channel || "web"] || s.channel, owner,
      s.createdAt ? "started " + ago(s.createdAt) : "", "#" + shortId(s.sessionId)]
      .filter(Boolean).join(" \u00b7 ");
    renderPage(s.page);
    ui.claim.hidden = !(s.status === "human_requested" || s.status === "open");
    ui.close.hidden = closeForm.hidden = !mine;
    ui.transfer.hidden = !mine;
    if (!mine) { ui.transferForm.hidden = true; ui.transfer.setAttribute("aria-expanded", "false"); }
    ui.noteBox.hidden = false;
    const hadFocus = document.activeElement === ui.reply;
    ui.composer.hidden = !mine;
    if (!mine) { ui.typing.hidden = true; if (hadFocus) ui.transcript.focus(); }
  }

  // The sources a bot answer cited: links only for http(s) URLs, titles always as text.
  const httpUrl = (u) => {
    try { const x = new URL(String(u)); return /^https?:$/.test(x.protocol) ? x.href : null; } catch (_) { return null; }
  };
  // The page the visitor is on, by its title (or its path), linked when it is a web address.
  const pageName = (p) => {
    if (!p || typeof p !== "object" || !p.url) return "";
    let path = String(p.url);
    try { path = new URL(path).pathname; } catch (_) { /* shown as given */ }
    return String(p.title || path).slice(0, 120);
  };
  function renderPage(p) {
    ui.chatPage.replaceChildren();
    const name = pageName(p);
    ui.chatPage.hidden = !name;
    if (!name) return;
    const href = httpUrl(p.url);
    const link = href ? el("a", "", name) : el("span", "", name);
    if (href) { link.href = href; link.target = "_blank"; link.rel = "noopener noreferrer"; link.title = href; }
    ui.chatPage.append("On ", link);
  }
  function sourcesNode(list) {
    if (!Array.isArray(list) || !list.length) return null;
    const box = el("div", "sources", "Sources: ");
    box.style.fontSize = "12px";
    box.style.marginTop = "4px";
    list.slice(0, 10).forEach((c, i) => {
      if (!c || typeof c !== "object") return;
      if (i) box.append(" \u00b7 ");
      const href = c.url ? httpUrl(c.url) : null;
      const text = String(c.title || href || "Source").slice(0, 200);
      if (!href) { box.append(text); return; }
      const a = el("a", "", text);
      a.href = href;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      box.append(a);
    });
    return box;
  }

  function renderMessage(m) {
    if (!m || typeof m.seq !== "number" || state.seen.has(m.seq)) return;
    const empty = ui.transcript.querySelector(".empty");
    if (empty) empty.remove();
    const sender = ["visitor", "bot", "agent", "system"].includes(m.sender) ? m.sender : "system";
    const node = el("div", "msg " + sender);
    node.dataset.seq = String(m.seq);
    node.dataset.at = String(Date.parse(m.createdAt || "") || 0);
    const whoText = sender === "visitor" ? "Visitor" : sender === "bot" ? "Bot"
      : sender === "agent" ? (m.agentName || "Agent") : "";
    if (whoText) node.append(el("span", "who", whoText + (m.createdAt ? " \u00b7 " + new Date(m.createdAt).toLocaleTimeString() : "")));
    node.append(document.createTextNode(String(m.text ?? "")));
    if (sender === "bot") { const src = sourcesNode(m.citations); if (src) node.append(src); }
    let later = null;
    for (const [s, n] of state.seen) if (s > m.seq && (!later || s < later[0])) later = [s, n];
    ui.transcript.insertBefore(node, later ? later[1] : null);
    state.seen.set(m.seq, node);
    if (m.seq > state.lastSeq) state.lastSeq = m.seq;
    if (sender === "visitor") ui.typing.hidden = true;
    ui.transcript.scrollTop = ui.transcript.scrollHeight;
  }

  async function claim() {
    const s = state.current;
    if (!s) return;
    ui.claim.disabled = true;
    try {
      state.claimedHere.add(s.sessionId);
      const body = await api("POST", `/agent/sessions/${encodeURIComponent(s.sessionId)}/claim`);
      clearBanner("claim");
      const { quotaStatus: q, alreadyClaimed: _, ...claimed } = body;
      Object.assign(s, claimed);
      if (q && q.exceeded) {
        banner("quota", `Your plan's agent seats are used up (${q.seatsUsed}/${q.seatQuota}); ` +
          `${q.graceDaysLeft ?? "a few"} grace day(s) left before new agents are refused.`,
        { link: q.upgradeUrl, linkText: "Upgrade the plan" });
      }
      updateRow(s);
      renderHeader();
      await loadTranscript(false);
      ui.reply.focus();
    } catch (err) {
      if (err.status === 403 && err.body.error === "seat-quota-exceeded") {
        banner("quota", "Every agent seat of your plan is in use and the grace period is over, so you can't claim conversations.",
          { kind: "error", link: err.body.upgradeUrl, linkText: "Upgrade the plan" });
      } else if (err.status === 409) {
        const who = err.body.agentName ? " (" + err.body.agentName + ")" : "";
        banner("claim", String(err.body.type || "").endsWith("/session-closed") || /closed/i.test(err.detail)
          ? "This conversation is already closed." : "This conversation was already claimed by someone else" + who + ".",
        { kind: "error" });
        await loadTranscript(false);
        refreshSoon();
      } else if (err.status !== 401) {
        banner("claim", "Couldn't claim: " + problemText(err, "error"), { kind: "error" });
      }
    } finally {
      ui.claim.disabled = false;
    }
  }

  async function sendReply(event) {
    if (event) event.preventDefault();
    const s = state.current;
    const content = ui.reply.value;
    if (!s || !content.trim() || ui.send.disabled) return;
    ui.send.disabled = true;
    stopTyping();
    try {
      const body = await api("POST", `/agent/sessions/${encodeURIComponent(s.sessionId)}/message`, { content });
      if (ui.reply.value === content) ui.reply.value = "";
      clearBanner("chat");
      if (state.current === s) renderMessage(body.message);
    } catch (err) {
      // The text stays in the box so the agent can retry.
      if (err.status === 403) banner("chat", "Only the agent who claimed this conversation can reply.", { kind: "error" });
      else if (err.status === 409) banner("chat", "This conversation is closed.", { kind: "error" });
      else if (err.status !== 401) banner("chat", "Not sent: " + problemText(err, "error"), { kind: "error" });
      if (err.status === 403 || err.status === 409) loadTranscript(false);
    } finally {
      ui.send.disabled = false;
    }
  }

  async function closeSession() {
    const s = state.current;
    if (!s) return;
    ui.close.disabled = true;
    try {
      const ending = {};
      if (outcome.value) ending.resolution = outcome.value;
      if (learning.value.trim()) ending.note = learning.value.trim();
      const body = await api("POST", `/agent/sessions/${encodeURIComponent(s.sessionId)}/close`, ending);
      outcome.value = learning.value = "";
      Object.assign(s, body.sessionId ? body : { status: "closed" });
      updateRow(s);
      renderHeader();
      await loadTranscript(false);
      ui.transcript.focus();
    } catch (err) {
      if (err.status !== 401) banner("chat", "Couldn't close: " + problemText(err, "error"), { kind: "error" });
    } finally {
      ui.close.disabled = false;
    }
  }

  // Typing: tell the visitor at most every few seconds, and stop after a pause.
  let typingSent = false;
  let typingIdle = 0;
  function noteTyping() {
    const s = state.current;
    if (!isMine(s)) return;
    clearTimeout(typingIdle);
    typingIdle = setTimeout(stopTyping, 2500);
    if (!typingSent) {
      typingSent = true;
      api("POST", `/agent/sessions/${encodeURIComponent(s.sessionId)}/typing`, { isTyping: true }).catch(() => {});
    }
  }
  function stopTyping() {
    clearTimeout(typingIdle);
    if (!typingSent || !state.current) return;
    typingSent = false;
    api("POST", `/agent/sessions/${encodeURIComponent(state.current.sessionId)}/typing`, { isTyping: false }).catch(() => {});
  }

  function updateRow(update) {
    const id = update.sessionId;
    const existing = state.rows.get(id);
    if (existing) {
      Object.assign(existing, update);
      renderQueue();
    } else if (rowMatchesTab(update) && update.lastActivityAt) {
      state.rows.set(id, { ...update });
      renderQueue();
    }
  }

  // --- real time and polling ------------------------------------------------------------------
  let conn = null;
  let pollTimer = 0;
  // Panels in modules of their own (agent-approvals.js) hook in here: hub events, and sign-in done.
  const extensions = { handlers: [], ready: [] };
  window.supportDeskAgent = {
    api, el, safeUrl, ago, visitorLabel, friendlyName,
    on: (name, fn) => extensions.handlers.push([name, fn]),
    onReady: (fn) => extensions.ready.push(fn),
    isLive: () => state.live,
    problemText: (err, fallback) => problemText(err, fallback),
  };

  function setLive(mode) {
    state.live = mode === "on";
    ui.live.className = "live" + (mode === "on" ? " on" : mode === "poll" ? " poll" : "");
    ui.live.textContent = mode === "on" ? "Live" : mode === "poll" ? "Updating every few seconds" : "Offline";
  }

  async function connect() {
    try {
      if (!window.signalR) await loadScript(apiBase + "/vendor/signalr.js");
      const sr = window.signalR;
      const c = new sr.HubConnectionBuilder()
        .withUrl(apiBase + "/agent", { accessTokenFactory: () => getToken(false) })
        .withAutomaticReconnect()
        .configureLogging(sr.LogLevel.None)
        .build();
      conn = c;
      c.on("SessionUpdated", onSessionUpdated);
      c.on("ChatMessageReceived", onMessage);
      c.on("TypingIndicator", onTyping);
      extensions.handlers.forEach(([name, fn]) => c.on(name, fn)); // e.g. the approval cards panel
      c.onreconnecting(() => { setLive("poll"); poll(); });
      c.onreconnected(() => { setLive("on"); refreshQueue(); loadTranscript(false); });
      c.onclose(() => { if (conn === c) { conn = null; setLive("poll"); poll(); } });
      await c.start();
      if (conn !== c) return;
      setLive("on");
      refreshQueue();
      loadTranscript(false);
    } catch (_) {
      conn = null;
      setLive("poll");
      poll();
    }
  }

  function stopRealtime() {
    const c = conn;
    conn = null;
    if (c) c.stop().catch(() => {});
  }

  function poll() {
    clearTimeout(pollTimer);
    if (state.live || !state.me) return;
    pollTimer = setTimeout(async () => {
      await Promise.all([refreshQueue(), loadTranscript(false)]);
      poll();
    }, POLL_MS);
  }

  function onSessionUpdated(u) {
    if (!u || !u.sessionId) return;
    const update = { ...u };
    if (u.agentName && !u.claimedByName) update.claimedByName = u.agentName;
    delete update.agentName;
    const wasWaiting = state.rows.has(u.sessionId);
    const before = state.rows.get(u.sessionId) || (state.current && state.current.sessionId === u.sessionId ? state.current : null);
    // Owned by me now, and not through a claim made here: a colleague handed it over.
    if (state.me && u.status === "claimed" && u.claimedBy === state.me.oid && state.owners.get(u.sessionId) !== state.me.oid &&
        !state.claimedHere.has(u.sessionId)) {
      alertAgent("A conversation was handed to you", visitorLabel({ ...(before || {}), ...update }), u.sessionId);
    }
    state.owners.set(u.sessionId, u.claimedBy || null);
    state.pushed.set(u.sessionId, { row: { ...(state.rows.get(u.sessionId) || {}), ...update }, at: Date.now() });
    updateRow(update);
    if (state.current && state.current.sessionId === u.sessionId) {
      Object.assign(state.current, update);
      renderHeader();
    }
    if (!wasWaiting || u.status === "human_requested" || state.tab === "waiting") refreshSoon();
  }

  function onMessage(m) {
    if (!m || !m.sessionId) return;
    const known = state.rows.get(m.sessionId) || (state.current && state.current.sessionId === m.sessionId ? state.current : null);
    if (m.sender === "visitor") {
      if (known) known.visitorPreview = String(m.text || "").slice(0, 200);
      const looking = state.current && state.current.sessionId === m.sessionId && document.visibilityState === "visible" &&
        document.hasFocus();
      if (known && isMine(known) && !looking) alertAgent("New message", visitorLabel(known) + ": " + String(m.text || "").slice(0, 80), m.sessionId);
    }
    if (state.current && state.current.sessionId === m.sessionId) {
      renderMessage(m);
    } else {
      state.unread.add(m.sessionId);
    }
    const row = state.rows.get(m.sessionId);
    if (row) {
      row.preview = m.sender === "system" ? row.preview : String(m.text || "").slice(0, 120);
      row.lastActivityAt = m.createdAt || row.lastActivityAt;
      row.messageCount = Math.max(row.messageCount || 0, m.seq || 0);
      renderQueue();
    }
  }

  function onTyping(t) {
    if (!t || t.sender !== "visitor" || !state.current || state.current.sessionId !== t.sessionId) return;
    ui.typing.hidden = !t.isTyping;
    clearTimeout(onTyping.timer);
    if (t.isTyping) onTyping.timer = setTimeout(() => { ui.typing.hidden = true; }, 8000);
  }

  // --- alerts: a new waiting visitor, a message in a conversation you own, a transfer to you --------
  // A Teams tab shows no title, so: a short sound, a desktop notification when allowed, and an
  // in-page toast (the fallback, always shown); the tab title counts too. Muting is kept per browser.
  const MUTE_KEY = "supportdesk-agent-muted";
  let muted = false;
  try { muted = localStorage.getItem(MUTE_KEY) === "1"; } catch (_) { /* storage blocked: not muted */ }
  function renderMute() {
    ui.mute.setAttribute("aria-pressed", String(muted));
    ui.mute.textContent = muted ? "Sound off" : "Sound on";
  }
  ui.mute.addEventListener("click", () => {
    muted = !muted;
    try { localStorage.setItem(MUTE_KEY, muted ? "1" : "0"); } catch (_) { /* ok */ }
    renderMute();
    // Asking for permission needs a click: this is the agent's first one on the alerts control.
    if (!muted && window.Notification && Notification.permission === "default") Notification.requestPermission().catch(() => {});
  });
  renderMute();

  let audio = null;
  function beep() {
    try {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return;
      audio = audio || new Ctx();
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.15, audio.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.35);
      osc.connect(gain).connect(audio.destination);
      osc.start();
      osc.stop(audio.currentTime + 0.35);
    } catch (_) { /* no audio: the toast still shows */ }
  }

  function toast(title, body, sessionId) {
    const t = el("div", "toast");
    const open = el("button", "toast-open");
    open.type = "button";
    open.append(el("strong", "", title), el("span", "", body));
    open.addEventListener("click", () => { t.remove(); if (sessionId) openSession(sessionId); });
    const x = el("button", "toast-x", "\u00d7");
    x.type = "button";
    x.setAttribute("aria-label", "Dismiss");
    x.addEventListener("click", () => t.remove());
    t.append(open, x);
    ui.toasts.append(t);
    while (ui.toasts.children.length > 3) ui.toasts.firstChild.remove();
    setTimeout(() => t.remove(), 12000);
  }

  function alertAgent(title, body, sessionId) {
    toast(title, body, sessionId);
    if (muted) return;
    beep();
    try {
      if (window.Notification && Notification.permission === "granted") {
        const n = new Notification(title, { body, tag: "supportdesk-" + (sessionId || "") });
        n.onclick = () => { window.focus(); if (sessionId) openSession(sessionId); };
      }
    } catch (_) { /* notifications unavailable in this host */ }
  }

  let unlistedTimer = 0;
  function noticeWaiting(list) {
    const ids = new Set(list.map((s) => s.sessionId));
    if (state.knownWaiting) {
      const fresh = list.filter((s) => !state.knownWaiting.has(s.sessionId));
      if (fresh.length === 1) alertAgent("New visitor waiting", visitorLabel(fresh[0]) + ": " + visitorPreview(fresh[0]), fresh[0].sessionId);
      else if (fresh.length > 1) alertAgent(fresh.length + " new visitors waiting", fresh.map(visitorLabel).join(", "), null);
    }
    state.knownWaiting = ids;
    // Pushed as waiting but not listed yet (the listing lags a push): look again shortly, so the
    // alert still comes, with the listing's handoff question. Pushes expire after PUSH_KEPT_MS.
    const unlisted = [...state.pushed].some(([id, { row }]) => row.status === "human_requested" && !ids.has(id));
    clearTimeout(unlistedTimer);
    if (unlisted) unlistedTimer = setTimeout(refreshQueue, 1000);
  }

  // --- private notes --------------------------------------------------------------------------
  function renderNote(n) {
    if (!n || !n.id || state.notes.has(n.id) || !state.current || n.sessionId !== state.current.sessionId) return;
    const empty = ui.transcript.querySelector(".empty");
    if (empty) empty.remove();
    const node = el("div", "msg note");
    node.dataset.noteId = n.id;
    const at = Date.parse(n.createdAt || "") || Date.now();
    node.dataset.at = String(at);
    node.append(el("span", "who", "Private note \u00b7 " + (n.agentName || "Agent") + " \u00b7 " + new Date(at).toLocaleTimeString()),
      document.createTextNode(String(n.text ?? "")));
    const later = [...ui.transcript.children].find((c) => Number(c.dataset.at || 0) > at);
    ui.transcript.insertBefore(node, later || null);
    state.notes.set(n.id, node);
    ui.transcript.scrollTop = ui.transcript.scrollHeight;
  }
  async function loadNotes(cur) {
    if (!cur) return;
    try {
      const body = await api("GET", `/agent/sessions/${encodeURIComponent(cur.sessionId)}/notes`);
      if (state.current === cur) (body.notes || []).forEach(renderNote);
    } catch (_) { /* notes are extra: the transcript stands without them */ }
  }
  ui.noteForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const s = state.current;
    const text = ui.noteText.value.trim();
    if (!s || !text) return;
    const button = ui.noteForm.querySelector("button");
    button.disabled = true;
    try {
      const note = await api("POST", `/agent/sessions/${encodeURIComponent(s.sessionId)}/notes`, { text });
      ui.noteText.value = "";
      renderNote(note);
      clearBanner("note");
    } catch (err) {
      if (err.status !== 401) banner("note", "Note not saved: " + problemText(err, "error"), { kind: "error" });
    } finally { button.disabled = false; }
  });

  // --- saved replies: "/" in the composer ------------------------------------------------------
  let pickIndex = 0;
  async function loadReplies() {
    if (state.replies) return state.replies;
    try { state.replies = (await api("GET", "/replies")).replies || []; } catch (_) { state.replies = []; }
    return state.replies;
  }
  const slashQuery = () => {
    const m = /^\/(\S*)$/.exec(ui.reply.value);
    return m ? m[1].toLowerCase() : null;
  };
  function pickerMatches(q) {
    return (state.replies || []).filter((r) => !q || String(r.shortcut || "").toLowerCase().startsWith(q) ||
      String(r.title || "").toLowerCase().includes(q) || String(r.text || "").toLowerCase().includes(q)).slice(0, 8);
  }
  function closePicker() { ui.picker.hidden = true; ui.reply.removeAttribute("aria-activedescendant"); }
  async function updatePicker() {
    const q = slashQuery();
    if (q === null) { closePicker(); return; }
    await loadReplies();
    if (slashQuery() === null) return;
    const found = pickerMatches(slashQuery());
    pickIndex = Math.min(pickIndex, Math.max(0, found.length - 1));
    ui.picker.replaceChildren(...(found.length ? found.map((r, i) => {
      const li = el("li", "pick");
      li.id = "pick-" + i;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", String(i === pickIndex));
      li.append(el("strong", "", r.title), r.shortcut ? el("span", "sub", " /" + r.shortcut) : "",
        el("span", "pick-text", String(r.text).slice(0, 120)));
      li.addEventListener("mousedown", (e) => { e.preventDefault(); insertReply(r); });
      return li;
    }) : [el("li", "empty", state.replies.length ? "No saved reply matches." : "No saved replies yet (an admin adds them).")]));
    ui.picker.hidden = false;
    if (found.length) ui.reply.setAttribute("aria-activedescendant", "pick-" + pickIndex);
  }
  function insertReply(r) {
    ui.reply.value = String(r.text || "");
    closePicker();
    ui.reply.focus();
    noteTyping();
  }
  ui.reply.addEventListener("input", () => { pickIndex = 0; updatePicker(); });
  ui.reply.addEventListener("keydown", (e) => {
    if (ui.picker.hidden) return;
    const found = pickerMatches(slashQuery());
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      pickIndex = (pickIndex + (e.key === "ArrowDown" ? 1 : -1) + found.length) % Math.max(1, found.length);
      updatePicker();
    } else if ((e.key === "Enter" || e.key === "Tab") && found.length) {
      e.preventDefault();
      e.stopImmediatePropagation(); // Enter picks, it doesn't send "/..."
      insertReply(found[pickIndex]);
    } else if (e.key === "Escape") {
      e.stopPropagation();
      closePicker();
    }
  }, true);
  ui.reply.addEventListener("blur", () => setTimeout(closePicker, 150));

  // --- transfer -------------------------------------------------------------------------------
  ui.transfer.addEventListener("click", async () => {
    const open = ui.transferForm.hidden;
    ui.transferForm.hidden = !open;
    ui.transfer.setAttribute("aria-expanded", String(open));
    if (!open) return;
    ui.transferError.textContent = "";
    try {
      const body = await api("GET", "/agent/colleagues");
      const people = body.agents || [];
      ui.transferTo.replaceChildren(...people.map((p) => {
        const o = el("option", "", (p.name || p.email) + (p.email ? " (" + p.email + ")" : ""));
        o.value = p.agentId;
        return o;
      }));
      if (!people.length) ui.transferError.textContent = "No colleague has opened the console yet.";
      ui.transferTo.focus();
    } catch (err) {
      ui.transferError.textContent = problemText(err, "Colleagues couldn't be loaded.");
    }
  });
  ui.transferForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const s = state.current;
    if (!s || !ui.transferTo.value) return;
    const button = ui.transferForm.querySelector("button");
    button.disabled = true;
    ui.transferError.textContent = "";
    try {
      const body = await api("POST", `/agent/sessions/${encodeURIComponent(s.sessionId)}/transfer`, { agentId: ui.transferTo.value });
      Object.assign(s, body);
      ui.transferForm.hidden = true;
      ui.transfer.setAttribute("aria-expanded", "false");
      updateRow(s);
      renderHeader();
      await loadTranscript(false);
      toast("Transferred", "Now with " + (body.claimedByName || "your colleague") + ".", null);
    } catch (err) {
      ui.transferError.textContent = err.status === 403 && err.body.error === "seat-quota-exceeded"
        ? "Your colleague has no seat and the plan's seats are used up." : problemText(err, "Couldn't transfer.");
    } finally { button.disabled = false; }
  });

  // --- search your conversations --------------------------------------------------------------
  // The API escapes the snippet and wraps matches in <mark>; rebuild it as text nodes and <mark>s,
  // never by parsing it as HTML.
  const ENTITIES = { "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#x27;": "'" };
  const snippetNode = (snippet) => {
    const node = el("span", "preview");
    let mark = null;
    for (const part of String(snippet || "").split(/(<mark>|<\/mark>)/)) {
      if (part === "<mark>") { mark = el("mark"); node.append(mark); }
      else if (part === "</mark>") mark = null;
      else if (part) (mark || node).append(document.createTextNode(part.replace(/&(amp|lt|gt|quot|#x27);/g, (e) => ENTITIES[e])));
    }
    return node;
  };
  ui.search.addEventListener("submit", async (e) => {
    e.preventDefault();
    const q = ui.searchQ.value.trim();
    if (!q) return;
    try {
      const body = await api("GET", "/agent/search?q=" + encodeURIComponent(q));
      const rows = body.sessions || [];
      ui.searchList.replaceChildren(...(rows.length ? rows.map((s) => {
        const li = el("li");
        const b = el("button", "row");
        b.type = "button";
        b.dataset.sessionId = s.sessionId;
        const line1 = el("span", "line1");
        line1.append(el("span", "label", visitorLabel(s)), el("span", "chip " + s.status, STATUS_TEXT[s.status] || s.status));
        b.append(line1, snippetNode(s.snippet), el("span", "line2", ago(s.matchedAt || s.lastActivityAt)));
        b.addEventListener("click", () => { state.rows.set(s.sessionId, state.rows.get(s.sessionId) || s); openSession(s.sessionId); });
        li.append(b);
        return li;
      }) : [el("li", "empty", "Nothing found in your conversations or the queue.")]));
      ui.searchResults.hidden = false;
    } catch (err) {
      if (err.status !== 401) banner("search", "Search failed: " + problemText(err, "error"), { kind: "error" });
    }
  });
  extensions.handlers.push(["AgentNoteAdded", renderNote]);
  ui.searchClear.addEventListener("click", () => { ui.searchResults.hidden = true; ui.searchQ.value = ""; ui.searchQ.focus(); });

  // --- wiring ---------------------------------------------------------------------------------
  tabs.forEach((t, i) => {
    t.addEventListener("click", () => selectTab(t.dataset.tab, false));
    t.addEventListener("keydown", (e) => {
      let j = null;
      if (e.key === "ArrowRight") j = (i + 1) % tabs.length;
      else if (e.key === "ArrowLeft") j = (i - 1 + tabs.length) % tabs.length;
      else if (e.key === "Home") j = 0;
      else if (e.key === "End") j = tabs.length - 1;
      if (j !== null) { e.preventDefault(); selectTab(tabs[j].dataset.tab, true); }
    });
  });
  ui.refresh.addEventListener("click", refreshQueue);
  ui.more.addEventListener("click", loadMore);
  ui.claim.addEventListener("click", claim);
  ui.close.addEventListener("click", closeSession);
  ui.composer.addEventListener("submit", sendReply);
  ui.reply.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); sendReply(); }
  });
  ui.reply.addEventListener("input", noteTyping);
  ui.back.addEventListener("click", () => {
    ui.console.classList.remove("viewing");
    const row = state.current && ui.sessions.querySelector(`[data-session-id="${CSS.escape(state.current.sessionId)}"]`);
    if (row) row.focus();
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && ui.console.classList.contains("viewing") && getComputedStyle(ui.back).display !== "none") {
      ui.back.click();
    }
  });
  ui.signout.addEventListener("click", () => signOut());
  if (window.matchMedia && matchMedia("(prefers-color-scheme: dark)").matches) applyTheme("dark");
  setInterval(() => { if (state.me) renderQueue(); }, 60000); // keep "n min ago" fresh
  setInterval(() => { // the waiting timers tick without re-rendering the rows (focus and scroll stay put)
    for (const w of document.querySelectorAll(".wait[data-since]")) w.textContent = waitingText(Number(w.dataset.since));
  }, 15000);

  boot();
})();
