// The Teams setup page: copy buttons, values that follow the typed client id, and the live checks.
// Everything the server or the admin supplies is set with textContent, never as HTML.
(() => {
  "use strict";
  const page = document.querySelector(".teams-setup");
  if (!page) return;
  const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  const PLACEHOLDER = "<Application (client) ID>";

  async function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return;
    }
    // Plain http (a local run): the older way, through a selected, off-screen text area.
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.left = "-9999px";
    document.body.appendChild(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }

  page.addEventListener("click", async (event) => {
    const button = event.target.closest("button.copy");
    if (!button) return;
    const value = button.parentElement.querySelector(".value").textContent;
    try {
      await copy(value);
      button.textContent = "Copied";
      button.classList.add("copied");
    } catch {
      button.textContent = "Select and copy";
    }
    setTimeout(() => { button.textContent = "Copy"; button.classList.remove("copied"); }, 2000);
  });

  const clientInput = document.getElementById("client-id");
  clientInput.addEventListener("input", () => {
    const typed = clientInput.value.trim().toLowerCase();
    const client = GUID.test(typed) ? typed : PLACEHOLDER;
    for (const code of page.querySelectorAll("[data-template]")) {
      code.textContent = code.dataset.template.replace("{client}", client);
    }
  });

  let csrf = null;
  async function csrfToken() {
    if (csrf === null) {
      const response = await fetch("ops/session", { credentials: "same-origin" });
      csrf = response.ok ? (await response.json()).csrfToken || "" : "";
    }
    return csrf;
  }

  const list = document.getElementById("check-list");
  const verdict = document.getElementById("verdict");
  const done = document.getElementById("done");

  function show(result) {
    list.replaceChildren(...result.checks.map((check) => {
      const item = document.createElement("li");
      item.className = check.ok ? "ok" : "fail";
      const mark = document.createElement("span");
      mark.className = "mark";
      mark.textContent = check.ok ? "\u2713" : "\u2717";
      mark.setAttribute("aria-label", check.ok ? "passed" : "failed");
      const name = document.createElement("strong");
      name.textContent = check.name;
      item.append(mark, name, document.createTextNode(": " + check.detail));
      return item;
    }));
    done.hidden = !result.done;
    const failed = result.checks.filter((c) => !c.ok).length;
    verdict.textContent = result.done
      ? "Every check passes."
      : `${failed} of ${result.checks.length} checks to fix: see the marked lines.`;
  }

  async function run(token) {
    verdict.textContent = "Checking\u2026";
    try {
      const options = { credentials: "same-origin", headers: {} };
      if (token) {
        options.method = "POST";
        options.headers = { "content-type": "application/json", "X-CSRF-Token": await csrfToken() };
        options.body = JSON.stringify({ token });
      }
      const response = await fetch("teams-setup/checks", options);
      const body = await response.json();
      if (!response.ok) throw new Error(body.detail || `HTTP ${response.status}`);
      show(body);
    } catch (error) {
      done.hidden = true;
      verdict.textContent = "The checks could not run: " + error.message;
    }
  }

  const tokenBox = document.getElementById("token");
  document.getElementById("run-checks").addEventListener("click", () => run(tokenBox.value.trim()));
  document.getElementById("check-token").addEventListener("click", () => run(tokenBox.value.trim()));
  run("");
})();
