/* Agent console: replies the bot drafted that wait for an agent's approval (autonomy "approve").
 * Each card shows the visitor's question, the conversation before it, the draft in an edit box and
 * the sources behind it; Send (as edited), Dismiss, Rephrase and Tell AI (with an instruction).
 * Live through the console's SignalR connection (ApprovalCardCreated / ApprovalCardResolved),
 * polled every few seconds otherwise. All text from the API goes in through textContent.
 */
(() => {
  "use strict";

  const desk = window.supportDeskAgent;
  if (!desk) return;
  const POLL_MS = 5000;
  const RESOLVED = {
    sent: "Sent", edited: "Sent (edited)", "auto-sent": "Sent automatically", dismissed: "Dismissed",
    rephrased: "Drafted again", told: "Drafted again", superseded: "The visitor wrote again",
  };
  const $ = (id) => document.getElementById(id);
  const ui = { panel: $("approvals"), list: $("cards"), empty: $("approvals-empty"), count: $("approvals-count"),
    handled: $("handled"), handledList: $("handled-list") };
  const cards = new Map(); // card id -> element
  let timer = 0;
  let started = false;


  function render() {
    ui.empty.hidden = cards.size > 0;
    ui.count.textContent = cards.size ? String(cards.size) : "";
  }

  function sourcesNode(list) {
    const box = desk.el("div", "card-sources");
    box.append(desk.el("span", "label", "Sources: "));
    if (!list || !list.length) box.append(desk.el("span", "none", "none cited"));
    (list || []).forEach((c, i) => {
      if (i) box.append(", ");
      const url = c.url && desk.safeUrl(c.url);
      const node = url ? desk.el("a", "", c.title || c.sourceId) : desk.el("span", "", c.title || c.sourceId);
      if (url) { node.href = url; node.target = "_blank"; node.rel = "noopener noreferrer"; }
      box.append(node);
    });
    return box;
  }

  function cardNode(card) {
    const li = desk.el("li", "card");
    li.dataset.cardId = card.id;
    li.dataset.sessionId = card.sessionId;
    const head = desk.el("div", "card-head");
    head.append(desk.el("strong", "", "Conversation " + String(card.sessionId).slice(0, 8)));
    head.append(desk.el("span", "sub", desk.ago(card.createdAt)));
    if (card.autoSendAt) head.append(desk.el("span", "sub", "sent by itself at " + new Date(card.autoSendAt).toLocaleTimeString()));
    li.append(head);
    const context = desk.el("ol", "card-context");
    context.setAttribute("aria-label", "Conversation so far");
    (card.context || []).forEach((m) => {
      const item = desk.el("li", "ctx " + m.sender);
      item.append(desk.el("span", "who", m.sender === "visitor" ? "Visitor: " : m.sender === "agent" ? "Agent: " : "Bot: "));
      item.append(desk.el("span", "", m.text));
      context.append(item);
    });
    li.append(context);
    if (card.instruction) li.append(desk.el("p", "sub", "Drafted again: " + card.instruction));
    const id = "draft-" + card.id.replace(/[^A-Za-z0-9-]/g, "-");
    const label = desk.el("label", "", "Reply to approve");
    label.htmlFor = id;
    const box = desk.el("textarea", "card-text");
    box.id = id;
    box.rows = 3;
    box.maxLength = 4000;
    box.value = card.text;
    li.append(label, box, sourcesNode(card.citations));
    const instructionId = id + "-instruction";
    const ilabel = desk.el("label", "", "Instruction for the AI");
    ilabel.htmlFor = instructionId;
    const instruction = desk.el("input", "card-instruction");
    instruction.id = instructionId;
    instruction.maxLength = 1000;
    instruction.placeholder = "e.g. shorter, or: always mention express shipping";
    li.append(ilabel, instruction);
    const actions = desk.el("div", "card-actions");
    const button = (text, cls, run) => {
      const b = desk.el("button", cls, text);
      b.type = "button";
      b.addEventListener("click", () => act(li, run));
      actions.append(b);
      return b;
    };
    button("Send", "primary", () => {
      const text = box.value;
      return ["send", text !== card.text ? { text } : {}];
    });
    button("Dismiss", "ghost", () => ["dismiss", {}]);
    button("Rephrase", "ghost", () => ["rephrase", { instruction: instruction.value }]);
    button("Tell AI", "ghost", () => ["tell-ai", { instruction: instruction.value }]);
    li.append(actions);
    const note = desk.el("p", "form-error");
    note.setAttribute("role", "alert");
    li.append(note);
    return li;
  }

  async function act(li, run) {
    const [action, body] = run();
    const note = li.querySelector(".form-error");
    note.textContent = "";
    if ((action === "rephrase" || action === "tell-ai") && !String(body.instruction || "").trim()) {
      note.textContent = "Write an instruction for the AI first.";
      li.querySelector(".card-instruction").focus();
      return;
    }
    li.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    try {
      const answer = await desk.api("POST", "/agent/approvals/" + encodeURIComponent(li.dataset.cardId) + "/" + action, body);
      remove(li.dataset.cardId);
      if (answer && answer.card) add(answer.card);
    } catch (err) {
      li.querySelectorAll("button").forEach((b) => { b.disabled = false; });
      if (err.status === 409) {
        note.textContent = "Someone already handled this reply.";
        setTimeout(() => remove(li.dataset.cardId), 3000);
      } else {
        note.textContent = desk.problemText(err, "That did not work; try again.");
      }
    }
  }

  function add(card) {
    if (!card || cards.has(card.id)) return;
    const li = cardNode(card);
    cards.set(card.id, li);
    ui.list.append(li);
    render();
  }

  function remove(id, resolution) {
    const li = cards.get(id);
    if (!li) return;
    cards.delete(id);
    if (resolution && RESOLVED[resolution]) li.setAttribute("aria-label", RESOLVED[resolution]);
    li.remove();
    render();
  }

  async function refresh() {
    let body;
    try {
      body = await desk.api("GET", "/agent/approvals?status=pending&limit=200");
    } catch (_) { return; }
    const listed = new Set((body.approvals || []).map((c) => c.id));
    [...cards.keys()].forEach((id) => {
      const li = cards.get(id);
      // Keep a card someone is editing until it is resolved for sure.
      if (!listed.has(id) && !li.contains(document.activeElement)) remove(id);
    });
    (body.approvals || []).forEach(add);
  }

  function poll() {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      if (!desk.isLive()) await refresh();
      poll();
    }, POLL_MS);
  }

  // --- recently handled: what became of the last cards (loaded when opened) ----------------------
  const by = (who) => who === "system:auto-send" ? "automatically" : who === "visitor" ? "by the visitor's message"
    : who && String(who).startsWith("agent:") ? "by an agent" : "";
  function handledNode(card) {
    const li = desk.el("li");
    li.append(desk.el("div", "sub", [RESOLVED[card.resolution] || card.resolution, by(card.resolvedBy),
      desk.ago(card.resolvedAt), "conversation " + String(card.sessionId).slice(0, 8)].filter(Boolean).join(" \u00b7 ")));
    if (card.question) li.append(desk.el("div", "", "Visitor: " + card.question));
    li.append(desk.el("div", "", card.message ? "Sent: " + card.message.text : "Not sent: " + (card.text || "")));
    return li;
  }
  async function loadHandled() {
    if (!ui.handled.open) return;
    try {
      const body = await desk.api("GET", "/agent/approvals?status=resolved&limit=10");
      const items = (body.approvals || []).map(handledNode);
      ui.handledList.replaceChildren(...(items.length ? items : [desk.el("li", "sub", "Nothing handled yet.")]));
    } catch (err) {
      ui.handledList.replaceChildren(desk.el("li", "sub", "Couldn't load: " + desk.problemText(err, "error")));
    }
  }
  ui.handled.addEventListener("toggle", loadHandled);
  let handledTimer = 0;
  // The resolved list is written from the outbox just after the event: read it a moment later.
  const handledSoon = () => { clearTimeout(handledTimer); handledTimer = setTimeout(loadHandled, 1500); };

  desk.on("ApprovalCardCreated", (card) => add(card));
  desk.on("ApprovalCardResolved", (r) => { remove(r.id, r.resolution); handledSoon(); });
  desk.onReady(() => {
    ui.panel.hidden = false;
    render();
    if (!started) { started = true; refresh(); poll(); }
  });
})();
