// The dashboard's Channels view: one card per way visitors reach the desk (the web widget, SMS and
// WhatsApp through ACS, WhatsApp through Meta, Twilio, Telegram, email), each saying whether it is
// connected or which app settings are missing (names only, never values), the URL to paste into the
// provider with a copy button, how to set it up there, and the last event received.
// Everything comes from GET /api/channels (and the newest sessions for the widget); all text is set as
// text. The ACS URL carries the token that lets Event Grid post, so it is masked until revealed.
(() => {
  "use strict";

  const SD = window.SupportDesk;
  const { el } = SD;
  const state = { built: false, loading: null };

  const KINDS = { sms: "SMS message", whatsapp: "WhatsApp message", telegram: "Telegram message", email: "Email",
    web: "Widget conversation" };
  const kindLabel = (kind) => KINDS[kind] || String(kind || "Event");
  const code = (text) => el("code", { text });

  // The setup text of each card: strings and code fragments, in order.
  const ACS_SUBSCRIPTION = (event) => [
    "On the Communication Services resource's Events blade, create an Event Grid subscription (Web Hook) for ",
    code(event), " with this URL; Event Grid checks it with a validation handshake. SMS and WhatsApp can share one " +
    "subscription. The token in the URL is what lets Event Grid post here: keep it private.",
  ];
  const CARDS = [
    { id: "web", title: "Web widget", hint: (host) => [
      "Put this tag on every page of your site and add the site's origin (", code("https://www.example.com"),
      ") to ", code("ALLOWED_ORIGINS"), `. It is served from ${host}.`] },
    { id: "acs-sms", provider: "acs", title: "SMS (ACS)", needs: "ACS_PHONE_NUMBER",
      hint: () => ACS_SUBSCRIPTION("SMS Received") },
    { id: "acs-whatsapp", provider: "acs", title: "WhatsApp (ACS)", needs: "ACS_WHATSAPP_CHANNEL_ID",
      hint: () => ACS_SUBSCRIPTION("Advanced Message Received") },
    { id: "whatsapp", provider: "whatsapp", title: "WhatsApp (Meta)", hint: () => [
      "In the Meta app's WhatsApp > Configuration, set the callback URL to this URL and the verify token to the " +
      "value of ", code("META_VERIFY_TOKEN"), ", then subscribe to ", code("messages"),
      ". Free text goes out only within 24 hours of the contact's last message."] },
    { id: "twilio", provider: "twilio", title: "Twilio (SMS, WhatsApp)", hint: () => [
      "Set the number's (or WhatsApp sender's) \u201cA message comes in\u201d webhook to this URL with HTTP POST, " +
      "and ", code("PUBLIC_HOST"), " to this host: Twilio's signature is checked against that address."] },
    { id: "telegram", provider: "telegram", title: "Telegram", hint: (host, url) => [
      "Register this URL with the Bot API's setWebhook and your ", code("TELEGRAM_SECRET_TOKEN"),
      " as secret_token (Telegram then sends it with every update):",
      el("code", { class: "ch-block", text: "https://api.telegram.org/bot<TELEGRAM_BOT_TOKEN>/setWebhook?url=" +
        encodeURIComponent(url) + "&secret_token=<TELEGRAM_SECRET_TOKEN>" })] },
    { id: "email", provider: "email", title: "Email (SendGrid)", hint: () => [
      "Point the receiving domain's MX at SendGrid and add an Inbound Parse setting with this URL (not \u201csend " +
      "raw\u201d). Create a security policy with signature verification, attach it, and put its public key in ",
      code("SENDGRID_INBOUND_PUBLIC_KEY"), "."] },
  ];

  // What one card shows, from the channel the API lists (ACS is split into its SMS and WhatsApp halves).
  function cardState(card, listed) {
    const channel = listed.find((c) => c.id === card.provider);
    if (!channel) return null;
    let missing = Array.isArray(channel.missing) ? channel.missing.map(String) : [];
    let connected = Boolean(channel.connected);
    if (card.provider === "acs") {
      const other = card.needs === "ACS_PHONE_NUMBER" ? "ACS_WHATSAPP_CHANNEL_ID" : "ACS_PHONE_NUMBER";
      missing = missing.filter((name) => name !== other);
      connected = connected && !missing.includes(card.needs);
    }
    return { connected, missing, url: String(channel.webhookUrl || ""), last: channel.lastEvent || null,
      shared: card.provider === "acs" };
  }

  function masked(url) {
    try {
      const parsed = new URL(url);
      if (!parsed.searchParams.get("token")) return url;
      return url.slice(0, url.indexOf("?")) + "?token=" + "\u2022".repeat(12);
    } catch (_) { return url; }
  }

  function say(node, text) {
    node.textContent = text;
    clearTimeout(node.timer);
    node.timer = setTimeout(() => { node.textContent = ""; }, 4000);
  }

  async function copy(text, status, shown) {
    try {
      await navigator.clipboard.writeText(text);
      say(status, "Copied.");
    } catch (_) {  // no clipboard (an insecure origin, a refused permission): select it to copy by hand
      const range = document.createRange();
      range.selectNodeContents(shown);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      say(status, "Select and copy it by hand (the clipboard is not available here).");
    }
  }

  // The URL (or tag) to paste, a copy button and, when it carries a token, a reveal button.
  function pasteBox(cardId, label, value) {
    const secret = value.includes("token=");
    const shown = el("code", { class: "ch-url", id: `ch-${cardId}-url`, text: secret ? masked(value) : value });
    const status = el("span", { class: "ch-status muted", role: "status", "aria-live": "polite" });
    const copyButton = el("button", { type: "button", class: "secondary", "data-action": "copy",
      "aria-describedby": shown.id, text: "Copy", onclick: () => copy(value, status, shown) });
    const actions = el("div", { class: "ch-actions" }, copyButton);
    if (secret) {
      const reveal = el("button", { type: "button", class: "secondary", "data-action": "reveal",
        "aria-pressed": "false", "aria-controls": shown.id, text: "Show token" });
      reveal.addEventListener("click", () => {
        const showing = reveal.getAttribute("aria-pressed") !== "true";
        reveal.setAttribute("aria-pressed", String(showing));
        reveal.textContent = showing ? "Hide token" : "Show token";
        shown.textContent = showing ? value : masked(value);
      });
      actions.append(reveal);
    }
    actions.append(status);
    return el("div", { class: "ch-paste" }, el("p", { class: "ch-label", text: label }), shown, actions);
  }

  function lastLine(last, shared) {
    if (!last || !last.at) return el("p", { class: "ch-last muted", text: "No event received yet." });
    const time = el("time", { datetime: String(last.at), text: SD.when(last.at) });
    const line = el("p", { class: "ch-last" }, "Last event: ", time, ` \u00b7 ${kindLabel(last.kind)}`);
    if (shared) line.append(el("span", { class: "muted", text: " (ACS keeps one last event for SMS and WhatsApp)" }));
    return line;
  }

  function renderCard(card, shown, host) {
    const heading = el("h3", { id: `ch-${card.id}-title`, text: card.title });
    const badge = el("span", { class: `ch-badge ${shown.connected ? "on" : "off"}`,
      text: card.id === "web" ? "Always on" : shown.connected ? "Connected" : "Not connected" });
    const node = el("section", { class: "card ch-card", "data-channel": card.id, "aria-labelledby": heading.id,
      "data-connected": String(shown.connected) }, el("div", { class: "ch-head" }, heading, badge));
    if (!shown.connected && shown.missing.length) {
      const list = el("ul", { class: "ch-missing" });
      for (const name of shown.missing) list.append(el("li", {}, code(name)));
      node.append(el("p", { class: "ch-need", text: "Missing app settings:" }), list);
    }
    node.append(pasteBox(card.id, card.id === "web" ? "Tag to paste on your site" : "Webhook URL to paste", shown.url));
    node.append(el("p", { class: "ch-hint" }, ...card.hint(host, shown.url)));
    node.append(lastLine(shown.last, shown.shared));
    return node;
  }

  // The widget has no webhook: its last event is the newest web conversation among the latest sessions.
  async function widgetLast() {
    const body = await SD.api("/sessions?sortBy=lastActivity&limit=50");
    const found = (body.sessions || []).find((s) => (s.channel || "web") === "web");
    return found ? { at: found.lastActivityAt, kind: "web" } : null;
  }

  async function load() {
    const root = document.getElementById("channels-view");
    const grid = root.querySelector("#ch-cards");
    const note = root.querySelector("#ch-note");
    const [listed, web] = await Promise.all([SD.api("/channels"), widgetLast().catch(() => null)]);
    const channels = Array.isArray(listed.channels) ? listed.channels : [];
    const host = window.location.host;
    grid.textContent = "";
    for (const card of CARDS) {
      const shown = card.id === "web"
        ? { connected: true, missing: [], last: web, shared: false,
          url: `<script src="${window.location.origin}/api/widget.js" async></script>` }
        : cardState(card, channels);
      if (shown) grid.append(renderCard(card, shown, host));
    }
    const on = grid.querySelectorAll('[data-connected="true"]').length - 1;
    note.textContent = `${on} of ${CARDS.length - 1} messaging channels connected. Credentials are app settings ` +
      "(Key Vault references in Azure); a channel that is not connected answers 404 at its webhook URL.";
  }

  function build(root) {
    const refresh = el("button", { type: "button", class: "secondary", id: "ch-refresh", text: "Refresh" });
    refresh.addEventListener("click", () => show().catch(SD.report));
    root.append(
      el("section", { class: "card ch-intro" },
        el("div", { class: "row" }, el("h2", { text: "Channels" }), refresh),
        el("p", { id: "ch-note", class: "muted", "aria-live": "polite" })),
      el("div", { id: "ch-cards", class: "ch-cards" }));
  }

  async function show() {
    const root = document.getElementById("channels-view");
    if (!state.built) {
      build(root);
      state.built = true;
    }
    if (!state.loading) state.loading = load().finally(() => { state.loading = null; });
    await state.loading;
  }

  SD.register("channels", { show });
})();
