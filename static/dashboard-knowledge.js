// The dashboard's Knowledge view: add sources (files by drag-and-drop or the file picker, a website or
// sitemap, Q&A pairs, pasted text); watch them index (the list is polled while a source is queued or
// indexing); switch them on and off, schedule, sync and delete them; try a question on the bot; and
// answer the questions it could not (content gaps) as new Q&A sources.
// Every title, text, URL and message from the server reaches the page through textContent or an
// attribute, never innerHTML.
(() => {
  "use strict";

  const SD = window.SupportDesk;
  if (!SD) return;
  const { el, when, count } = SD;

  const POLL_MS = 1500;
  const PAGE = 50;
  const GAP_PAGE = 20;
  const EXCERPT_CHARS = 400;
  const BUSY = new Set(["queued", "indexing"]);
  const STATUS = { queued: "Queued", indexing: "Indexing", ready: "Ready", failed: "Failed" };
  const TYPES = { text: "Pasted text", qa: "Q&A", url: "Website", sitemap: "Sitemap", file: "File" };
  const KINDS = { pdf: "PDF", docx: "Word", html: "HTML", markdown: "Markdown", text: "plain text" };
  const REFRESH = [["manual", "Manual"], ["daily", "Daily"], ["weekly", "Weekly"]];
  const FETCHED = new Set(["url", "sitemap"]);
  const SYNCABLE = new Set(["url", "sitemap", "file"]);
  const REASONS = {
    "no-match": "nothing in the knowledge covered it",
    unanswered: "the AI found no answer in the excerpts",
    handoff: "the visitor asked for a person next",
  };
  const ACCEPT = ".pdf,.docx,.html,.htm,.md,.markdown,.txt,application/pdf,text/html,text/markdown,text/plain,"
    + "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

  const state = { built: false, cursor: null, sources: new Map(), rows: new Map(), timer: 0, polling: false,
    gapCursor: null, asking: false };
  const $ = (id) => document.getElementById(id);

  // --- talking to the API ------------------------------------------------------------------------------

  function key() {
    return window.crypto && typeof window.crypto.randomUUID === "function" ? window.crypto.randomUUID() : "";
  }

  async function call(path, { method = "GET", body, headers = {} } = {}) {
    const all = { Accept: "application/json", ...headers };
    if (method !== "GET") {
      const csrf = SD.csrf();
      if (csrf) all["X-CSRF-Token"] = csrf;
    }
    if (body !== undefined) all["Content-Type"] = "application/json";
    const response = await fetch("/api" + path, {
      method, headers: all, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
    });
    const type = response.headers.get("content-type") || "";
    const data = type.includes("json") ? await response.json().catch(() => null) : null;
    if (response.status === 401) {
      SD.signedOut();
      throw new Error("Signed out");
    }
    return { status: response.status, data };
  }

  // A file upload as multipart/form-data, through XMLHttpRequest for its upload progress events.
  function send(file, title, progress) {
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/knowledge/sources");
      xhr.setRequestHeader("Accept", "application/json");
      const csrf = SD.csrf();
      if (csrf) xhr.setRequestHeader("X-CSRF-Token", csrf);
      const idempotency = key();
      if (idempotency) xhr.setRequestHeader("Idempotency-Key", idempotency);
      xhr.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) progress(event.loaded / event.total);
      });
      xhr.addEventListener("load", () => {
        let data = null;
        try { data = JSON.parse(xhr.responseText); } catch (_) { /* not JSON: a proxy's page */ }
        resolve({ status: xhr.status, data });
      });
      xhr.addEventListener("error", () => resolve({ status: 0, data: null }));
      xhr.addEventListener("abort", () => resolve({ status: 0, data: null }));
      const form = new FormData();
      form.append("file", file, file.name);
      if (title) form.append("title", title);
      xhr.send(form);
    });
  }

  function problemText(data, fallback) {
    if (data && Array.isArray(data.errors) && data.errors.length) {
      return data.errors.map((e) => `${e.field}: ${e.message}`).join(" · ");
    }
    return (data && (data.detail || data.title)) || fallback;
  }

  function size(bytes) {
    const n = Number(bytes || 0);
    if (n < 1024) return `${n} bytes`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10240 ? 1 : 0)} KB`;
    return `${(n / 1024 / 1024).toFixed(1)} MB`;
  }

  function safeHref(url) {
    try {
      const parsed = new URL(String(url));
      return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
    } catch (_) {
      return null;
    }
  }

  function link(url, text) {
    const href = safeHref(url);
    return href ? el("a", { href, target: "_blank", rel: "noopener noreferrer", text: text || href }) : (text || String(url || ""));
  }

  function plural(n, word) {
    return `${count(n)} ${word}${n === 1 ? "" : "s"}`;
  }

  function announce(text) {
    const live = $("kn-live");
    if (!live) return;
    live.textContent = "";
    setTimeout(() => { live.textContent = text; }, 50);  // a changed node is read out again
  }

  // Field errors: slots marked data-kn-error="<field>" inside a form; the rest go to its general slot.
  function clearErrors(form) {
    form.querySelectorAll("[data-kn-error]").forEach((slot) => { slot.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach((input) => input.removeAttribute("aria-invalid"));
  }

  function showErrors(form, data, fallback) {
    const general = form.querySelector("[data-kn-error='']");
    const errors = data && Array.isArray(data.errors) ? data.errors : [];
    const unplaced = [];
    for (const error of errors) {
      const slot = form.querySelector(`[data-kn-error="${CSS.escape(String(error.field))}"]`);
      if (slot) {
        slot.textContent = error.message;
        const input = form.querySelector(`[data-kn-field="${CSS.escape(String(error.field))}"]`);
        if (input) input.setAttribute("aria-invalid", "true");
      } else {
        unplaced.push(`${error.field}: ${error.message}`);
      }
    }
    if (unplaced.length || !errors.length) {
      general.textContent = unplaced.join(" · ") || (data && (data.detail || data.title)) || fallback;
    }
    const invalid = form.querySelector("[aria-invalid='true']");
    if (invalid) invalid.focus();
  }

  // --- building the view once ----------------------------------------------------------------------------

  let fieldCount = 0;
  function field(label, control, name, hint) {
    const id = control.id || `kn-f${++fieldCount}`;
    control.id = id;
    if (name) control.setAttribute("data-kn-field", name);
    const error = el("p", { class: "field-error", "data-kn-error": name || `-${id}`, id: `${id}-error`, role: "alert" });
    control.setAttribute("aria-describedby", `${id}-error` + (hint ? ` ${id}-hint` : ""));
    return el("div", { class: "kn-field" }, el("label", { for: id, text: label }), control,
      hint ? el("p", { class: "muted kn-hint", id: `${id}-hint`, text: hint }) : "", error);
  }

  function generalError() {
    return el("p", { class: "error kn-form-error", "data-kn-error": "", role: "alert" });
  }

  function build(root) {
    // Two columns on wide screens: adding and the list; trying a question and the gaps.
    const main = el("div", { class: "kn-main" });
    const side = el("div", { class: "kn-side" });
    root.append(el("p", { id: "kn-live", class: "kn-sr", "aria-live": "polite", role: "status" }), main, side);
    main.append(
      el("section", { class: "card", "aria-labelledby": "kn-add-title" },
        el("h2", { id: "kn-add-title", text: "Add knowledge" }),
        addTabs()),
      el("section", { class: "card", "aria-labelledby": "kn-sources-title" },
        el("div", { class: "row" }, el("h2", { id: "kn-sources-title", tabindex: "-1", text: "Sources" }),
          el("button", { type: "button", class: "secondary", id: "kn-reload", text: "Reload",
            onclick: () => loadSources(false).catch(SD.report) })),
        el("p", { id: "kn-summary", class: "muted" }),
        el("ul", { id: "kn-sources", class: "kn-sources" }),
        el("p", { id: "kn-empty", class: "muted", hidden: "", text: "No sources yet: add a file, a website or a few questions and answers above." }),
        el("button", { id: "kn-more", type: "button", class: "secondary", hidden: "", text: "Load more",
          onclick: () => loadSources(true).catch(SD.report) })));
    side.append(
      testCard(),
      draftsCard(),
      el("section", { class: "card", "aria-labelledby": "kn-gaps-title" },
        el("div", { class: "row" }, el("h2", { id: "kn-gaps-title", tabindex: "-1", text: "Content gaps" }),
          el("button", { type: "button", class: "secondary", id: "kn-gaps-reload", text: "Refresh",
            onclick: () => loadGaps(false).catch(SD.report) })),
        el("p", { class: "muted", text: "Questions visitors asked that the bot could not answer from the knowledge, "
          + "grouped by similarity, the most asked first. Answer one and the bot knows it from then on." }),
        el("p", { id: "kn-gaps-summary", class: "muted" }),
        el("ul", { id: "kn-gaps", class: "kn-gaps" }),
        el("button", { id: "kn-gaps-more", type: "button", class: "secondary", hidden: "", text: "Load more",
          onclick: () => loadGaps(true).catch(SD.report) })));
  }

  // The four ways to add a source, as tabs (arrow keys move between them).
  function addTabs() {
    const tabs = [["file", "Files", fileForm()], ["site", "Website", siteForm()], ["qa", "Q&A", qaForm()],
      ["text", "Text", textForm()]];
    const list = el("div", { class: "kn-tabs", role: "tablist", "aria-label": "Kind of source" });
    const panels = [];
    tabs.forEach(([name, label, form], i) => {
      const tab = el("button", { type: "button", role: "tab", id: `kn-tab-${name}`, "aria-controls": `kn-panel-${name}`,
        "aria-selected": String(i === 0), tabindex: i === 0 ? "0" : "-1", text: label });
      tab.addEventListener("click", () => select(name));
      tab.addEventListener("keydown", (event) => {
        const step = { ArrowRight: 1, ArrowLeft: -1, Home: -i, End: tabs.length - 1 - i }[event.key];
        if (step === undefined) return;
        event.preventDefault();
        const next = tabs[(i + step + tabs.length) % tabs.length][0];
        select(next);
        $(`kn-tab-${next}`).focus();
      });
      list.append(tab);
      const panel = el("div", { role: "tabpanel", id: `kn-panel-${name}`, "aria-labelledby": `kn-tab-${name}`,
        class: "kn-panel" }, form);
      if (i) panel.hidden = true;
      panels.push(panel);
    });
    function select(name) {
      for (const [other] of tabs) {
        const tab = $(`kn-tab-${other}`);
        tab.setAttribute("aria-selected", String(other === name));
        tab.tabIndex = other === name ? 0 : -1;
        $(`kn-panel-${other}`).hidden = other !== name;
      }
    }
    return el("div", {}, list, ...panels);
  }

  // --- files ---------------------------------------------------------------------------------------------

  function fileForm() {
    const input = el("input", { type: "file", id: "kn-file-input", multiple: "", accept: ACCEPT, class: "kn-sr",
      tabindex: "-1", "aria-hidden": "true" });
    const pick = el("button", { type: "button", id: "kn-file-pick", text: "Choose files…" });
    pick.addEventListener("click", () => input.click());
    input.addEventListener("change", () => {
      uploadAll([...input.files]);
      input.value = "";
    });
    const drop = el("div", { id: "kn-drop", class: "kn-drop" },
      el("p", { text: "Drop files here" }), el("p", { class: "muted", text: "or" }), pick,
      el("p", { class: "muted kn-hint", text: "PDF, Word (.docx), HTML, Markdown or plain text. Each file is read, "
        + "split into passages by its headings and indexed in the background." }),
      input);
    for (const name of ["dragenter", "dragover"]) {
      drop.addEventListener(name, (event) => {
        event.preventDefault();
        if (event.dataTransfer) event.dataTransfer.dropEffect = "copy";
        drop.classList.add("kn-over");
      });
    }
    drop.addEventListener("dragleave", (event) => {
      if (!drop.contains(event.relatedTarget)) drop.classList.remove("kn-over");
    });
    drop.addEventListener("drop", (event) => {
      event.preventDefault();
      drop.classList.remove("kn-over");
      const files = event.dataTransfer ? [...event.dataTransfer.files] : [];
      if (files.length) uploadAll(files);
    });
    const title = el("input", { type: "text", id: "kn-file-title", maxlength: "200", autocomplete: "off" });
    return el("div", { class: "kn-form" }, drop,
      field("Title (optional, for a single file)", title, "title", "Shown to visitors under answers that cite the file; "
        + "without one, the file's own title or name is used."),
      el("ul", { id: "kn-uploads", class: "kn-uploads", "aria-label": "Uploads" }));
  }

  async function uploadAll(files) {
    const titleInput = $("kn-file-title");
    const title = files.length === 1 ? titleInput.value.trim() : "";
    titleInput.value = "";
    for (const file of files) await uploadOne(file, title);  // one at a time: each gets the whole line
  }

  async function uploadOne(file, title) {
    const bar = el("progress", { max: "1", value: "0", "aria-label": `Upload of ${file.name}` });
    const status = el("span", { class: "kn-upload-status", text: "Uploading…" });
    const item = el("li", { class: "kn-upload" }, el("span", { class: "kn-upload-name", text: file.name }),
      el("span", { class: "muted", text: size(file.size) }), bar, status);
    $("kn-uploads").prepend(item);
    if (!file.size) {
      fail("The file is empty.");
      return;
    }
    const { status: code, data } = await send(file, title, (share) => { bar.value = share; });
    if (code === 201 && data) {
      bar.value = 1;
      item.classList.add("kn-ok");
      status.textContent = "Uploaded; indexing in the background (see Sources).";
      addSource(data);
      announce(`${file.name} uploaded; it is being indexed.`);
      return;
    }
    if (code === 401) {
      SD.signedOut();
      return;
    }
    const reason = problemText(data, "");
    if (code === 413) {
      // The API names the field; its message reads on from "The file" ("is 6007 bytes; the limit is ...").
      const named = data && Array.isArray(data.errors) && data.errors.length && data.errors[0].field === "file";
      fail(`Too large to add. ${named ? `The file ${data.errors[0].message}.` : "The server refused a file this size."} `
        + "Split it into smaller files, or shrink the PDF's images.");
    } else if (code === 415) {
      fail((data && data.detail) || "This kind of file can't be read.");
    } else if (code === 0) {
      fail("The upload did not reach the server (network error). Try again.");
    } else {
      fail(reason || `The upload failed (HTTP ${code}).`);
    }

    function fail(message) {
      item.classList.add("kn-failed");
      bar.hidden = true;
      status.textContent = message;
      status.setAttribute("role", "alert");
    }
  }

  // --- website, Q&A, text ------------------------------------------------------------------------------------

  async function create(form, body, button) {
    clearErrors(form);
    button.disabled = true;
    try {
      const headers = {};
      const idempotency = key();
      if (idempotency) headers["Idempotency-Key"] = idempotency;
      const { status, data } = await call("/knowledge/sources", { method: "POST", body, headers });
      if (status === 201 && data) {
        addSource(data);
        announce(`Added “${data.title}”.`);
        return data;
      }
      showErrors(form, data, `The source could not be added (HTTP ${status}).`);
      return null;
    } finally {
      button.disabled = false;
    }
  }

  function siteForm() {
    const url = el("input", { type: "url", id: "kn-site-url", required: "", maxlength: "2048",
      placeholder: "https://www.example.com/help", autocomplete: "url" });
    const crawl = el("input", { type: "radio", name: "kn-site-mode", id: "kn-site-crawl", value: "url", checked: "" });
    const sitemap = el("input", { type: "radio", name: "kn-site-mode", id: "kn-site-sitemap", value: "sitemap" });
    const pages = el("input", { type: "number", id: "kn-site-pages", min: "1", max: "10000", step: "1", value: "50",
      inputmode: "numeric" });
    const refresh = el("select", { id: "kn-site-refresh" });
    for (const [value, text] of REFRESH) refresh.append(el("option", { value, text }));
    const title = el("input", { type: "text", id: "kn-site-title", maxlength: "200", autocomplete: "off" });
    const submit = el("button", { type: "submit", id: "kn-site-submit", text: "Add website" });
    const form = el("form", { id: "kn-site-form", class: "kn-form", novalidate: "" },
      field("Address", url, "url", "A public page: the crawl stays on its site (same host) and honours robots.txt."),
      el("fieldset", { class: "kn-choice" }, el("legend", { text: "What to read" }),
        el("label", { for: "kn-site-crawl" }, crawl, " The whole site, following links from this page"),
        el("label", { for: "kn-site-sitemap" }, sitemap, " The pages a sitemap lists (the address is the sitemap's)"),
        el("p", { class: "field-error", "data-kn-error": "type", role: "alert" })),
      el("div", { class: "kn-pair" },
        field("At most this many pages", pages, "maxPages"),
        field("Read it again", refresh, "refresh")),
      field("Title (optional)", title, "title"),
      generalError(), el("div", { class: "kn-actions" }, submit));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form);
      if (!url.value.trim()) {
        showErrors(form, { errors: [{ field: "url", message: "Enter the address of a page or a sitemap." }] });
        return;
      }
      const body = { type: sitemap.checked ? "sitemap" : "url", url: url.value.trim(), refresh: refresh.value };
      if (pages.value.trim()) body.maxPages = Number(pages.value);
      if (title.value.trim()) body.title = title.value.trim();
      if (await create(form, body, submit)) {
        url.value = "";
        title.value = "";
      }
    });
    return form;
  }

  function pairRow(list, question = "", answer = "") {
    const row = el("fieldset", { class: "kn-qa-row" });
    const q = el("input", { type: "text", maxlength: "1000", required: "", autocomplete: "off" });
    q.value = question;
    const a = el("textarea", { rows: "3", maxlength: "10000", required: "" });
    a.value = answer;
    const remove = el("button", { type: "button", class: "secondary kn-remove", text: "Remove" });
    remove.addEventListener("click", () => {
      const next = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      renumber(list);
      if (next) next.querySelector("input").focus();
    });
    row.append(el("legend", {}), field("Question", q, "question"), field("Answer", a, "answer"), remove);
    list.append(row);
    renumber(list);
    return row;
  }

  // Rows are numbered as the API names them (pairs.0.question), so its errors land beside the field.
  function renumber(list) {
    const rows = [...list.children];
    rows.forEach((row, i) => {
      row.querySelector("legend").textContent = `Pair ${i + 1}`;
      const [question, answer] = row.querySelectorAll("[data-kn-field]");
      for (const [input, name] of [[question, "question"], [answer, "answer"]]) {
        input.setAttribute("data-kn-field", `pairs.${i}.${name}`);
        input.parentElement.querySelector(".field-error").setAttribute("data-kn-error", `pairs.${i}.${name}`);
      }
      const remove = row.querySelector(".kn-remove");
      remove.disabled = rows.length === 1;
      remove.setAttribute("aria-label", `Remove pair ${i + 1}`);
    });
  }

  function qaForm() {
    const title = el("input", { type: "text", id: "kn-qa-title", maxlength: "200", required: "", autocomplete: "off" });
    const list = el("div", { id: "kn-qa-rows", class: "kn-qa-rows" });
    pairRow(list);
    const add = el("button", { type: "button", class: "secondary", id: "kn-qa-add", text: "Add a pair" });
    add.addEventListener("click", () => pairRow(list).querySelector("input").focus());
    const submit = el("button", { type: "submit", id: "kn-qa-submit", text: "Add Q&A" });
    const form = el("form", { id: "kn-qa-form", class: "kn-form", novalidate: "" },
      field("Title", title, "title", "For example “Returns FAQ”; visitors see it under answers that cite it."),
      list, el("p", { class: "field-error", "data-kn-error": "pairs", role: "alert" }),
      generalError(), el("div", { class: "kn-actions" }, add, submit));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form);
      const pairs = [...list.children].map((row) => {
        const [q, a] = row.querySelectorAll("input, textarea");
        return { question: q.value.trim(), answer: a.value.trim() };
      });
      const missing = [];
      if (!title.value.trim()) missing.push({ field: "title", message: "Give the source a title." });
      pairs.forEach((pair, i) => {
        if (!pair.question) missing.push({ field: `pairs.${i}.question`, message: "Write the question." });
        if (!pair.answer) missing.push({ field: `pairs.${i}.answer`, message: "Write the answer." });
      });
      if (missing.length) {
        showErrors(form, { errors: missing });
        return;
      }
      if (await create(form, { type: "qa", title: title.value.trim(), pairs }, submit)) {
        title.value = "";
        list.textContent = "";
        pairRow(list);
      }
    });
    return form;
  }

  function textForm() {
    const title = el("input", { type: "text", id: "kn-text-title", maxlength: "200", required: "", autocomplete: "off" });
    const text = el("textarea", { id: "kn-text-body", rows: "8", required: "" });
    const submit = el("button", { type: "submit", id: "kn-text-submit", text: "Add text" });
    const form = el("form", { id: "kn-text-form", class: "kn-form", novalidate: "" },
      field("Title", title, "title"),
      field("Text", text, "text", "Markdown headings (#), lists and paragraphs are kept as structure. "
        + "Long documents: upload them as a file."),
      generalError(), el("div", { class: "kn-actions" }, submit));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form);
      const missing = [];
      if (!title.value.trim()) missing.push({ field: "title", message: "Give the text a title." });
      if (!text.value.trim()) missing.push({ field: "text", message: "Paste the text to add." });
      if (missing.length) {
        showErrors(form, { errors: missing });
        return;
      }
      if (await create(form, { type: "text", title: title.value.trim(), text: text.value }, submit)) {
        title.value = "";
        text.value = "";
      }
    });
    return form;
  }

  // --- the list of sources -------------------------------------------------------------------------------------

  async function loadSources(more) {
    const params = new URLSearchParams({ limit: String(PAGE) });
    if (more && state.cursor) params.set("cursor", state.cursor);
    const { status, data } = await call("/knowledge/sources?" + params.toString());
    if (status !== 200) throw new Error(problemText(data, "The sources could not be loaded."));
    if (!more) {
      state.sources.clear();
      state.rows.clear();
      $("kn-sources").textContent = "";
    }
    for (const source of data.sources) setSource(source);
    state.cursor = data.nextCursor;
    $("kn-more").hidden = !data.nextCursor;
    summarize();
    schedulePoll();
  }

  function summarize() {
    const all = [...state.sources.values()];
    $("kn-empty").hidden = all.length > 0;
    const busy = all.filter((s) => BUSY.has(s.status)).length;
    const failed = all.filter((s) => s.status === "failed").length;
    const chunks = all.filter((s) => s.enabled).reduce((sum, s) => sum + (s.chunks || 0), 0);
    const parts = [plural(all.length, "source") + (state.cursor ? " shown" : ""),
      `${plural(chunks, "passage")} in answers`];
    if (busy) parts.push(`${count(busy)} indexing`);
    if (failed) parts.push(`${count(failed)} failed`);
    $("kn-summary").textContent = all.length ? parts.join(" · ") : "";
  }

  // A source added here goes to the top of the list, where its status can be watched.
  function addSource(source) {
    setSource(source, true);
    summarize();
    schedulePoll();
  }

  function setSource(source, first = false) {
    const before = state.sources.get(source.id);
    state.sources.set(source.id, source);
    let row = state.rows.get(source.id);
    if (!row) {
      row = buildRow(source);
      state.rows.set(source.id, row);
      if (first) $("kn-sources").prepend(row.item);
      else $("kn-sources").append(row.item);
    }
    updateRow(row, source);
    if (before && BUSY.has(before.status) && !BUSY.has(source.status)) {
      announce(source.status === "ready" ? `“${source.title}” is ready: ${plural(source.chunks, "passage")}.`
        : `“${source.title}” failed: ${source.error || "see the list"}.`);
    }
  }

  function removeSource(id) {
    const row = state.rows.get(id);
    if (row) row.item.remove();
    state.rows.delete(id);
    state.sources.delete(id);
    summarize();
  }

  function buildRow(source) {
    const id = source.id;
    const r = { id };
    r.title = el("h3", { class: "kn-title", id: `kn-title-${id}` });
    r.badge = el("span", { class: "kn-badge" });
    r.off = el("span", { class: "kn-badge kn-off", text: "Off", hidden: "" });
    r.where = el("p", { class: "kn-where muted" });
    r.facts = el("p", { class: "kn-facts muted" });
    r.error = el("p", { class: "kn-error error", hidden: "" });
    r.warnings = el("ul", { class: "kn-warnings", hidden: "" });
    r.note = el("p", { class: "kn-note error", role: "alert" });
    r.enabled = el("input", { type: "checkbox", id: `kn-enabled-${id}`, class: "kn-enabled" });
    r.enabled.addEventListener("change", () => patch(r, { enabled: r.enabled.checked }));
    r.refresh = el("select", { id: `kn-refresh-${id}`, class: "kn-refresh" });
    for (const [value, text] of REFRESH) r.refresh.append(el("option", { value, text }));
    r.refresh.addEventListener("change", () => patch(r, { refresh: r.refresh.value }));
    r.refreshBox = el("span", { class: "kn-control" }, el("label", { for: `kn-refresh-${id}`, text: "Refresh" }), r.refresh);
    r.sync = el("button", { type: "button", class: "secondary kn-sync", text: "Sync now" });
    r.sync.addEventListener("click", () => sync(r));
    r.del = el("button", { type: "button", class: "secondary kn-delete", text: "Delete" });
    r.confirmText = el("span", {});
    r.confirmYes = el("button", { type: "button", class: "kn-danger kn-confirm-delete", text: "Delete source" });
    r.confirmNo = el("button", { type: "button", class: "secondary", text: "Keep it" });
    r.confirm = el("div", { class: "kn-confirm", role: "group", "aria-label": "Confirm deletion", hidden: "" },
      r.confirmText, el("span", { class: "kn-actions" }, r.confirmYes, r.confirmNo));
    r.del.addEventListener("click", () => askDelete(r));
    r.confirmNo.addEventListener("click", () => { r.confirm.hidden = true; r.del.focus(); });
    r.confirmYes.addEventListener("click", () => remove(r));
    r.confirm.addEventListener("keydown", (event) => {
      if (event.key === "Escape") { r.confirm.hidden = true; r.del.focus(); }
    });
    r.pages = el("details", { class: "kn-pages", hidden: "" }, el("summary", { text: "Pages" }),
      el("ul", { class: "kn-page-list" }),
      el("button", { type: "button", class: "secondary kn-pages-more", hidden: "", text: "More pages" }));
    r.pagesCursor = null;
    r.pages.addEventListener("toggle", () => { if (r.pages.open) loadPages(r, false).catch(SD.report); });
    r.pages.querySelector(".kn-pages-more").addEventListener("click", () => loadPages(r, true).catch(SD.report));
    r.item = el("li", { class: "kn-source", "data-source-id": id, "aria-labelledby": `kn-title-${id}` },
      el("div", { class: "kn-head" }, r.title, el("span", { class: "kn-badges" }, r.badge, r.off)),
      r.where, r.facts, r.error, r.warnings,
      el("div", { class: "kn-controls" },
        el("span", { class: "kn-control" }, r.enabled, el("label", { for: `kn-enabled-${id}`, text: "Used in answers" })),
        r.refreshBox, r.sync, r.del),
      r.confirm, r.note, r.pages);
    return r;
  }

  function updateRow(r, s) {
    const title = s.title || "(untitled)";
    r.title.textContent = title;
    r.badge.textContent = STATUS[s.status] || s.status;
    r.badge.className = `kn-badge kn-${s.status}`;
    r.off.hidden = s.enabled;
    r.item.classList.toggle("kn-disabled", !s.enabled);
    r.item.setAttribute("data-status", s.status);
    r.item.setAttribute("aria-busy", String(BUSY.has(s.status)));

    r.where.textContent = "";
    r.where.append(TYPES[s.type] || s.type);
    if (s.url) r.where.append(" · ", link(s.url));
    if (s.file) r.where.append(" · ", `${s.file.name} (${KINDS[s.file.kind] || s.file.kind}, ${size(s.file.bytes)})`);

    const facts = [plural(s.chunks || 0, "passage")];
    if (s.pages !== null && s.pages !== undefined) facts.push(plural(s.pages, "page"));
    facts.push(s.lastSyncedAt ? `last synced ${when(s.lastSyncedAt)}` : "not synced yet");
    if (FETCHED.has(s.type) && s.maxPages) facts.push(`at most ${count(s.maxPages)} pages`);
    const sync = s.lastSync;
    if (sync && typeof sync === "object" && FETCHED.has(s.type)) {
      const bits = [["added", sync.added], ["changed", sync.changed], ["unchanged", sync.unchanged],
        ["removed", sync.removed], ["failed", sync.failed]].filter(([, n]) => n).map(([w, n]) => `${count(n)} ${w}`);
      if (bits.length) facts.push(`last sync: ${bits.join(", ")}`);
    }
    r.facts.textContent = facts.join(" · ");

    const error = s.error || (s.status === "failed" ? "Indexing failed." : "");
    r.error.textContent = error;
    r.error.hidden = !error;
    r.warnings.textContent = "";
    for (const warning of s.warnings || []) r.warnings.append(el("li", { text: warning }));
    r.warnings.hidden = !(s.warnings || []).length;

    if (document.activeElement !== r.enabled) r.enabled.checked = Boolean(s.enabled);
    r.enabled.setAttribute("aria-describedby", `kn-title-${r.id}`);
    r.refreshBox.hidden = !FETCHED.has(s.type);
    if (document.activeElement !== r.refresh) r.refresh.value = s.refresh || "manual";
    r.refresh.setAttribute("aria-label", `Refresh: ${title}`);
    r.sync.hidden = !SYNCABLE.has(s.type);
    r.sync.disabled = BUSY.has(s.status);
    r.sync.textContent = BUSY.has(s.status) ? "Syncing…" : "Sync now";
    r.sync.setAttribute("aria-label", `${r.sync.textContent}: ${title}`);
    r.del.setAttribute("aria-label", `Delete: ${title}`);
    r.pages.hidden = !SYNCABLE.has(s.type) || !s.pages;
  }

  async function patch(r, change) {
    r.note.textContent = "";
    try {
      const { status, data } = await call(`/knowledge/sources/${encodeURIComponent(r.id)}`, { method: "PATCH", body: change });
      if (status === 200 && data) {
        setSource(data);
        summarize();
        return;
      }
      if (status === 404) {
        removeSource(r.id);
        announce("That source was deleted meanwhile.");
        return;
      }
      r.note.textContent = problemText(data, `The change was not saved (HTTP ${status}).`);
    } catch (error) {
      r.note.textContent = error.message;
    }
    updateRow(r, state.sources.get(r.id));  // put the control back as it is stored
  }

  async function sync(r) {
    r.note.textContent = "";
    r.sync.disabled = true;
    const { status, data } = await call(`/knowledge/sources/${encodeURIComponent(r.id)}/sync`, { method: "POST" })
      .catch((error) => ({ status: 0, data: { detail: error.message } }));
    if ((status === 202 || status === 200) && data) {
      setSource(data);
      summarize();
      schedulePoll();
      announce(`Syncing “${data.title}”.`);
      return;
    }
    if (status === 404) {
      removeSource(r.id);
      return;
    }
    r.note.textContent = problemText(data, `The sync did not start (HTTP ${status}).`);
    updateRow(r, state.sources.get(r.id));
  }

  function askDelete(r) {
    const s = state.sources.get(r.id);
    r.confirmText.textContent = `Delete “${s.title}”? Its ${plural(s.chunks || 0, "passage")} stop being used in `
      + "answers at once. This can't be undone.";
    r.confirm.hidden = false;
    r.confirmNo.focus();
  }

  async function remove(r) {
    r.confirmYes.disabled = true;
    const title = state.sources.get(r.id).title;
    try {
      const { status, data } = await call(`/knowledge/sources/${encodeURIComponent(r.id)}`, { method: "DELETE" });
      if (status === 204 || status === 404) {
        const next = r.item.nextElementSibling || r.item.previousElementSibling;
        removeSource(r.id);
        announce(`Deleted “${title}”.`);
        (next ? next.querySelector(".kn-delete") : $("kn-sources-title")).focus();
        return;
      }
      r.note.textContent = problemText(data, `The source was not deleted (HTTP ${status}).`);
    } finally {
      r.confirmYes.disabled = false;
    }
  }

  async function loadPages(r, more) {
    const params = new URLSearchParams({ limit: "100" });
    if (more && r.pagesCursor) params.set("cursor", r.pagesCursor);
    const { status, data } = await call(`/knowledge/sources/${encodeURIComponent(r.id)}/pages?${params}`);
    if (status !== 200) throw new Error(problemText(data, "The pages could not be loaded."));
    const list = r.pages.querySelector(".kn-page-list");
    if (!more) list.textContent = "";
    for (const page of data.pages) {
      const item = el("li", { class: `kn-page kn-page-${page.status}` },
        page.url ? link(page.url, page.title || page.url) : (page.title || "(the file)"),
        el("span", { class: "muted", text: ` · ${page.status} · ${plural(page.chunks || 0, "passage")}` }));
      if (page.error) item.append(el("div", { class: "error", text: page.error }));
      list.append(item);
    }
    r.pagesCursor = data.nextCursor;
    r.pages.querySelector(".kn-pages-more").hidden = !data.nextCursor;
  }

  // Live status: while a source is queued or indexing, read those sources again every POLL_MS.
  function viewHidden() {
    const panel = $("knowledge-view");
    return !panel || panel.hidden || document.getElementById("app").hidden;
  }

  function busyIds() {
    return [...state.sources.values()].filter((s) => BUSY.has(s.status)).map((s) => s.id);
  }

  function schedulePoll() {
    if (state.polling || state.timer) return;
    if (!busyIds().length || viewHidden()) return;
    state.timer = setTimeout(poll, POLL_MS);
  }

  async function poll() {
    state.timer = 0;
    if (viewHidden()) return;
    state.polling = true;
    try {
      await Promise.all(busyIds().slice(0, 20).map(async (id) => {
        const { status, data } = await call(`/knowledge/sources/${encodeURIComponent(id)}`);
        if (status === 200 && data) setSource(data);
        else if (status === 404) removeSource(id);
      }));
      summarize();
    } catch (_) {
      // A failed read (network, sign-out) is tried again at the next tick.
    } finally {
      state.polling = false;
    }
    schedulePoll();
  }

  // --- trying a question ---------------------------------------------------------------------------------------

  function testCard() {
    const question = el("input", { type: "text", id: "kn-test-q", maxlength: "1000", autocomplete: "off",
      placeholder: "A question a visitor might ask" });
    const submit = el("button", { type: "submit", id: "kn-test-submit", text: "Ask" });
    const form = el("form", { id: "kn-test-form", class: "kn-test-form", novalidate: "" },
      el("label", { for: "kn-test-q", class: "kn-sr", text: "Question" }), question, submit);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      ask(question.value.trim()).catch(SD.report);
    });
    return el("section", { class: "card", "aria-labelledby": "kn-test-title" },
      el("h2", { id: "kn-test-title", text: "Test a question" }),
      el("p", { class: "muted", id: "kn-test-note", text: "The bot answers exactly as in the widget, from the "
        + "enabled sources. Nothing is stored and it is not counted in visitor totals or caps, but with an AI "
        + "provider (OpenAI or Azure OpenAI) each question is a real, billed call: its cost is shown with the answer." }),
      form,
      el("p", { id: "kn-test-status", class: "muted", "aria-live": "polite" }),
      el("div", { id: "kn-test-result", class: "kn-test-result", hidden: "" }));
  }

  async function ask(question) {
    const status = $("kn-test-status");
    if (!question) {
      status.textContent = "Type a question first.";
      $("kn-test-q").focus();
      return;
    }
    if (state.asking) return;
    state.asking = true;
    $("kn-test-submit").disabled = true;
    status.textContent = "Asking the bot…";
    try {
      const { status: code, data } = await call("/knowledge/test", { method: "POST", body: { question } });
      if (code !== 200 || !data) {
        status.textContent = problemText(data, `The question could not be tried (HTTP ${code}).`);
        return;
      }
      status.textContent = "";
      showResult(data);
    } finally {
      state.asking = false;
      $("kn-test-submit").disabled = false;
    }
  }

  function citationList(citations) {
    const list = el("ul", { class: "kn-citations", "aria-label": "Sources cited" });
    for (const c of citations || []) list.append(el("li", {}, link(c.url, c.title || "Source")));
    return list;
  }

  function excerptText(text) {
    const box = el("div", { class: "kn-excerpt-text" });
    if (text.length <= EXCERPT_CHARS) {
      box.textContent = text;
      return box;
    }
    const shown = el("span", { text: text.slice(0, EXCERPT_CHARS).trimEnd() + "…" });
    const more = el("button", { type: "button", class: "link kn-expand", text: "Show all", "aria-expanded": "false" });
    more.addEventListener("click", () => {
      const open = more.getAttribute("aria-expanded") === "true";
      shown.textContent = open ? text.slice(0, EXCERPT_CHARS).trimEnd() + "…" : text;
      more.textContent = open ? "Show all" : "Show less";
      more.setAttribute("aria-expanded", String(!open));
    });
    box.append(shown, " ", more);
    return box;
  }

  function showResult(data) {
    const box = $("kn-test-result");
    box.textContent = "";
    box.hidden = false;
    const a = data.answer || {};
    const meta = [a.provider === "offline" ? "offline bot (no AI call, free)" : `${a.provider} ${a.model}`];
    if (a.provider !== "offline") {
      meta.push(`${count(a.promptTokens)} + ${count(a.completionTokens)} tokens${a.usageEstimated ? " (estimated)" : ""}`,
        `cost ${SD.money(a.costUsd)}`);
    }
    meta.push(`${count(a.latencyMs)} ms`);
    const answer = el("div", { class: "kn-answer", id: "kn-answer" },
      el("h3", { text: "The bot's answer" }),
      el("div", { class: "kn-answer-text", text: a.text || "" }));
    const best = (data.results || []).reduce((m, r) => Math.max(m, r.score || 0), 0);
    let verdict = "";
    if (a.failed) verdict = "The AI provider could not answer (see the bot's settings); visitors would get this apology.";
    else if (a.wantsPerson) verdict = "This reads as a request for a person: the bot hands the visitor to the team.";
    else if (a.gap === "no-match") {
      verdict = `Not answered from the knowledge: the best excerpt covers ${Math.round(best * 100)}% of the question's `
        + `words; the offline bot needs ${Math.round((data.minScore || 0) * 100)}%. It would be a content gap.`;
    } else if (a.gap === "unanswered") verdict = "The AI said these excerpts don't answer the question. It would be a content gap.";
    if (verdict) answer.append(el("p", { class: "kn-verdict warning", text: verdict }));
    if ((a.citations || []).length) answer.append(el("p", { class: "muted", text: "Sources cited:" }), citationList(a.citations));
    answer.append(el("p", { class: "muted kn-answer-meta", text: meta.join(" · ") }));
    if (a.gap || !(a.citations || []).length) {
      const add = el("button", { type: "button", class: "secondary", id: "kn-test-answer", text: "Add an answer to this question" });
      add.addEventListener("click", () => {
        add.remove();
        answer.append(answerForm(data.question, null, () => {}, () => { answer.append(add); add.focus(); }));
      });
      if (!a.wantsPerson) answer.append(add);
    }
    const excerpts = el("ol", { class: "kn-excerpts", id: "kn-excerpts", "aria-label": "Excerpts the bot read" });
    for (const r of data.results || []) {
      const where = [r.sourceTitle || "(untitled)", ...(r.headingPath || [])].join(" › ");
      const head = el("div", { class: "kn-excerpt-head" },
        el("strong", { class: "kn-excerpt-where", text: `[${r.number}] ${where}` }),
        el("span", { class: "kn-score", text: `covers ${Math.round((r.score || 0) * 100)}%` }));
      if (r.cited) head.append(el("span", { class: "kn-badge kn-ready", text: "cited" }));
      const item = el("li", { class: "kn-excerpt" + (r.cited ? " kn-cited" : "") }, head, excerptText(r.text || ""));
      if (safeHref(r.url)) item.append(el("div", {}, link(r.url, "Open the page")));
      excerpts.append(item);
    }
    box.append(answer, el("h3", { text: "What the bot read" }));
    box.append((data.results || []).length ? excerpts
      : el("p", { class: "muted", text: "No excerpt: nothing in the enabled sources or the knowledge setting matches these words." }));
  }

  // --- content gaps -------------------------------------------------------------------------------------------

  async function loadGaps(more) {
    const params = new URLSearchParams({ limit: String(GAP_PAGE) });
    if (more && state.gapCursor) params.set("cursor", state.gapCursor);
    const { status, data } = await call("/knowledge/gaps?" + params.toString());
    const list = $("kn-gaps");
    if (status === 404) {  // a deployment without the route
      $("kn-gaps-summary").textContent = "Content gaps are not available on this deployment.";
      return;
    }
    if (status !== 200) throw new Error(problemText(data, "The content gaps could not be loaded."));
    if (!more) list.textContent = "";
    for (const group of data.groups) list.append(gapItem(group));
    state.gapCursor = data.nextCursor;
    $("kn-gaps-more").hidden = !data.nextCursor;
    $("kn-gaps-summary").textContent = data.total ? `${plural(data.total, "group")} of unanswered questions`
      : "No unanswered questions: every visitor question so far was answered from the knowledge.";
  }

  function gapItem(group) {
    const reasons = Object.keys(group.reasons || {}).map((r) => REASONS[r] || r).join("; ");
    const item = el("li", { class: "kn-gap", "data-gap-id": group.id },
      el("p", { class: "kn-gap-question", text: group.question }),
      el("p", { class: "muted", text: [`asked ${plural(group.count, "time")} in ${plural(group.sessions || group.count, "conversation")}`,
        `last ${when(group.lastSeen)}`, reasons].filter(Boolean).join(" · ") }));
    if ((group.variants || []).length) {
      const variants = el("ul", { class: "kn-variants muted", "aria-label": "Also asked as" });
      for (const v of group.variants) variants.append(el("li", { text: v }));
      item.append(el("p", { class: "muted kn-variants-label", text: "Also asked as:" }), variants);
    }
    const answer = el("button", { type: "button", class: "kn-gap-answer", text: "Answer this",
      "aria-label": `Answer this: ${group.question}` });
    const dismiss = el("button", { type: "button", class: "secondary kn-gap-dismiss", text: "Dismiss",
      "aria-label": `Dismiss: ${group.question}` });
    const note = el("p", { class: "error", role: "alert" });
    const actions = el("div", { class: "kn-actions" }, answer, dismiss);
    answer.addEventListener("click", () => {
      actions.hidden = true;
      const form = answerForm(group.question, group.id, () => { actions.remove(); item.classList.add("kn-answered"); },
        () => { actions.hidden = false; answer.focus(); });
      item.append(form);
    });
    dismiss.addEventListener("click", async () => {
      dismiss.disabled = true;
      const { status, data } = await call(`/knowledge/gaps/${encodeURIComponent(group.id)}/dismiss`, { method: "POST" })
        .catch((error) => ({ status: 0, data: { detail: error.message } }));
      if (status === 200 || status === 404) {
        focusAfter(item);
        item.remove();
        announce("Dismissed.");
        return;
      }
      dismiss.disabled = false;
      note.textContent = problemText(data, `Not dismissed (HTTP ${status}).`);
    });
    item.append(actions, note);
    return item;
  }

  function focusAfter(item) {
    const next = item.nextElementSibling || item.previousElementSibling;
    (next ? next.querySelector("button") : $("kn-gaps-title")).focus();
  }

  // A small form that turns a question into a Q&A source; for a gap group, it then dismisses the group.
  function answerForm(question, groupId, done, cancelled) {
    const q = el("input", { type: "text", maxlength: "1000", autocomplete: "off" });
    q.value = question;
    const a = el("textarea", { rows: "4", maxlength: "10000" });
    const submit = el("button", { type: "submit", text: "Save as Q&A source" });
    const cancel = el("button", { type: "button", class: "secondary", text: "Cancel" });
    const form = el("form", { class: "kn-form kn-answer-form", novalidate: "" },
      field("Question", q, "pairs.0.question"), field("Answer", a, "pairs.0.answer",
        "What the bot should say; it answers this question and similar ones from it."),
      el("p", { class: "field-error", "data-kn-error": "title", role: "alert" }),
      generalError(), el("div", { class: "kn-actions" }, submit, cancel));
    cancel.addEventListener("click", () => {
      form.remove();
      if (cancelled) cancelled();
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form);
      const pair = { question: q.value.trim(), answer: a.value.trim() };
      const missing = [];
      if (!pair.question) missing.push({ field: "pairs.0.question", message: "Write the question." });
      if (!pair.answer) missing.push({ field: "pairs.0.answer", message: "Write the answer." });
      if (missing.length) {
        showErrors(form, { errors: missing });
        return;
      }
      const title = pair.question.length > 200 ? pair.question.slice(0, 199) + "…" : pair.question;
      const created = await create(form, { type: "qa", title, pairs: [pair] }, submit);
      if (!created) return;
      if (groupId) {
        // The group's questions are answered now; a 404 means it is gone already, which is as good.
        await call(`/knowledge/gaps/${encodeURIComponent(groupId)}/dismiss`, { method: "POST" }).catch(() => null);
      }
      const saved = el("p", { class: "kn-saved", role: "status", tabindex: "-1",
        text: `Saved as the Q&A source “${created.title}”: the bot answers it from now on.` });
      form.replaceWith(saved);
      saved.focus();
      done();
    });
    setTimeout(() => a.focus(), 0);
    return form;
  }

  // --- drafts to review: agents' learning notes, used by the bot only once approved ----------------------

  function draftsCard() {
    return el("section", { class: "card", "aria-labelledby": "kn-drafts-title" },
      el("div", { class: "row" }, el("h2", { id: "kn-drafts-title", tabindex: "-1", text: "Drafts to review" }),
        el("button", { type: "button", class: "secondary", text: "Refresh", onclick: () => loadDrafts().catch(SD.report) })),
      el("p", { class: "muted", text: "What agents noted the bot should have answered, when they closed a conversation. "
        + "The bot does not use a draft until you approve it; approving makes it a Q&A source." }),
      el("p", { id: "kn-drafts-summary", class: "muted" }),
      el("ul", { id: "kn-drafts", class: "kn-gaps" }));
  }

  async function loadDrafts() {
    const { status, data } = await call("/knowledge/drafts");
    if (status === 404) {
      $("kn-drafts-summary").textContent = "Drafts are not available on this deployment.";
      return;
    }
    if (status !== 200) throw new Error(problemText(data, "The drafts could not be loaded."));
    const list = $("kn-drafts");
    list.textContent = "";
    for (const draft of data.drafts) list.append(draftItem(draft));
    $("kn-drafts-summary").textContent = data.drafts.length ? `${plural(data.drafts.length, "draft")} waiting`
      : "No drafts waiting.";
  }

  function draftItem(draft) {
    const q = el("input", { type: "text", maxlength: "500", autocomplete: "off" });
    q.value = draft.question;
    const a = el("textarea", { rows: "3", maxlength: "4000" });
    a.value = draft.answer;
    const approve = el("button", { type: "button", text: "Approve", "aria-label": `Approve: ${draft.question}` });
    const save = el("button", { type: "button", class: "secondary", text: "Save edits" });
    const discard = el("button", { type: "button", class: "secondary", text: "Discard", "aria-label": `Discard: ${draft.question}` });
    const note = el("p", { class: "error", role: "alert" });
    const item = el("li", { class: "kn-gap kn-draft", "data-draft-id": draft.id },
      field("Question", q, "question"), field("Answer", a, "answer"),
      el("p", { class: "muted", text: [draft.resolution ? `conversation ${draft.resolution}` : "",
        `noted ${when(draft.createdAt)}`].filter(Boolean).join(" · ") }),
      el("div", { class: "kn-actions" }, approve, save, discard), note);
    const path = `/knowledge/drafts/${encodeURIComponent(draft.id)}`;
    const changed = () => ({ ...(q.value.trim() !== draft.question ? { question: q.value.trim() } : {}),
      ...(a.value.trim() !== draft.answer ? { answer: a.value.trim() } : {}) });
    async function act(button, run) {
      button.disabled = true;
      note.textContent = "";
      try {
        await run();
      } catch (error) {
        note.textContent = error.message;
      } finally {
        button.disabled = false;
      }
    }
    async function saveEdits() {
      const body = changed();
      if (!Object.keys(body).length) return;
      const { status, data } = await call(path, { method: "PATCH", body });
      if (status !== 200) throw new Error(problemText(data, `Not saved (HTTP ${status}).`));
      Object.assign(draft, data);
    }
    save.addEventListener("click", () => act(save, async () => { await saveEdits(); announce("Draft saved."); }));
    approve.addEventListener("click", () => act(approve, async () => {
      await saveEdits();
      const { status, data } = await call(`${path}/approve`, { method: "POST" });
      if (status !== 200) throw new Error(problemText(data, `Not approved (HTTP ${status}).`));
      focusAfter(item);
      item.remove();
      addSource(data.source);
      announce(`Approved: the bot answers “${data.draft.question}” from now on.`);
    }));
    discard.addEventListener("click", () => act(discard, async () => {
      const { status, data } = await call(path, { method: "DELETE" });
      if (status !== 204 && status !== 404) throw new Error(problemText(data, `Not discarded (HTTP ${status}).`));
      focusAfter(item);
      item.remove();
      announce("Draft discarded.");
    }));
    return item;
  }

  // A file dropped beside the drop zone would make the browser leave the dashboard to show the file.
  function guardDrops() {
    for (const name of ["dragover", "drop"]) {
      window.addEventListener(name, (event) => {
        const files = event.dataTransfer && [...event.dataTransfer.types].includes("Files");
        if (files && !viewHidden() && !event.defaultPrevented) event.preventDefault();
      });
    }
  }

  SD.register("knowledge", {
    async show() {
      if (!state.built) {
        build($("knowledge-view"));
        guardDrops();
        state.built = true;
      }
      await Promise.all([loadSources(false), loadGaps(false), loadDrafts()]);
    },
  });
})();
