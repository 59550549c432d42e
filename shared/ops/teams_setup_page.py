"""The Teams setup page: numbered steps with the values to paste (each with a copy button) and live checks.

Rendered on the server with every value escaped; ``static/dashboard-teams.js`` adds the copy buttons'
behaviour, fills in the values as the admin types the client id, and runs the checks
(``GET|POST /api/teams-setup/checks``) with ``textContent`` only. The page uses the dashboard's
style sheet, so the two look alike.
"""

from __future__ import annotations

import html

from shared.ops.teams_package import TEAMS_CLIENT_IDS

SCOPE = "access_as_user"
CLIENT_PLACEHOLDER = "<Application (client) ID>"
TENANT_PLACEHOLDER = "<Directory (tenant) ID>"


def _value(label: str, value: str, *, template: str = "") -> str:
    """A labelled value with a copy button; ``template`` ("{client}", "{tenant}") lets the script fill it in."""
    e = html.escape
    data = f' data-template="{e(template)}"' if template else ""
    return (
        f'<div class="copyrow"><span class="label">{e(label)}</span><code class="value"{data}>{e(value)}</code>'
        f'<button type="button" class="copy secondary" aria-label="Copy {e(label)}">Copy</button></div>'
    )


def render_teams_setup_page(
    host: str,
    client_id: str,
    *,
    tenant_id: str = "",
    package_url: str = "teams-app.zip",
    app_name: str = "Support Desk",
) -> str:
    """The admin's guided Teams setup as HTML (every value escaped; no inline script)."""
    e = html.escape
    cid = client_id.strip() or CLIENT_PLACEHOLDER
    tid = tenant_id.strip() or TENANT_PLACEHOLDER
    app_id_uri = f"api://{host}/{cid}"
    console = f"https://{host}/api/agent"
    clients = "".join(_value(f"{label} client id", client) for client, label in TEAMS_CLIENT_IDS.items())
    missing = (
        ""
        if client_id.strip()
        else '<p class="warning" id="no-client"><strong>AAD_APP_CLIENT_ID is not set yet.</strong> Type the '
        "client id below once you have it: the values in the next steps fill in.</p>"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{e(app_name)}: Teams setup</title>
<link rel="stylesheet" href="dashboard/dashboard.css">
<link rel="stylesheet" href="dashboard/dashboard-teams.css">
<script src="dashboard/dashboard-teams.js" defer></script>
</head><body>
<header class="top"><h1>{e(app_name)} <span class="muted">Teams setup</span></h1>
<nav><a class="button" href="dashboard">Dashboard</a></nav></header>
<main class="teams-setup" data-host="{e(host)}">
<section class="card">
<h2>Connect the agent console to Microsoft Teams</h2>
<p>Agents answer visitors from a Teams tab at <code>{e(console)}</code>, signed in with Teams single sign-on.
An administrator of your Microsoft Entra directory does this once, in about five minutes. The desk can't do it
for you: the app registration lives in your organization's directory, not in Azure, so a deployment template
can't create it; and its Application ID URI carries this deployment's address, <code>{e(host)}</code>.</p>
{missing}
</section>
<ol class="steps">
<li class="card step"><h2>Register an app in Microsoft Entra ID</h2>
<p>Entra admin center &rarr; App registrations &rarr; New registration. Accounts in this organizational
directory only. Then copy its Application (client) ID here:</p>
{_value("Name", app_name)}
<label for="client-id">Application (client) ID</label>
<input id="client-id" autocomplete="off" spellcheck="false" value="{e(client_id.strip())}"
 placeholder="00000000-0000-0000-0000-000000000000"></li>
<li class="card step"><h2>Set the Application ID URI</h2>
<p>Expose an API &rarr; Application ID URI &rarr; Add, and paste:</p>
{_value("Application ID URI", app_id_uri, template=f"api://{host}/{{client}}")}</li>
<li class="card step"><h2>Add the scope</h2>
<p>Expose an API &rarr; Add a scope. Who can consent: Admins and users. State: Enabled.</p>
{_value("Scope name", SCOPE)}</li>
<li class="card step"><h2>Pre-authorize the Teams clients</h2>
<p>Expose an API &rarr; Add a client application, once for each id, ticking the scope:</p>
{clients}
{_value("Authorized scope", f"{app_id_uri}/{SCOPE}", template=f"api://{host}/{{client}}/{SCOPE}")}</li>
<li class="card step"><h2>Add the redirect URI and token version</h2>
<p>Authentication &rarr; Add a platform &rarr; Web. Teams single sign-on doesn't use it, but Entra sends
a sign-in that falls back to a window (consent, a new device) back to the console:</p>
{_value("Redirect URI", console)}
<p>Manifest &rarr; set <code>accessTokenAcceptedVersion</code> (Microsoft Graph format:
<code>api.requestedAccessTokenVersion</code>) to 2. The desk accepts v1 and v2 tokens; v2 is recommended.</p>
{_value("Token version", "2")}</li>
<li class="card step"><h2>Tell the desk</h2>
<p>Function App &rarr; Settings &rarr; Environment variables: add these two settings and save (the app
restarts).</p>
{_value("Setting name", "AAD_APP_CLIENT_ID")}
{_value("Its value", cid, template="{client}")}
{_value("Setting name", "AAD_APP_TENANT_ID")}
{_value("Its value", tid)}</li>
<li class="card step"><h2>Upload the Teams app</h2>
<p><a class="button" href="{e(package_url)}" download>Download {e(app_name)}.zip</a> (manifest and icons for this
deployment), then Teams admin center &rarr; Teams apps &rarr; Manage apps &rarr; Upload new app. Allow it for
your agents (permission policies) and pin it if you like (setup policies).</p></li>
</ol>
<section class="card" id="checks" aria-labelledby="checks-title">
<div class="row"><h2 id="checks-title">Check</h2><button type="button" id="run-checks">Check again</button></div>
<p id="done" class="done" hidden role="status">Done: Teams can sign your agents in. Open the app in Teams to
start answering.</p>
<p id="verdict" class="muted" aria-live="polite">Checking&hellip;</p>
<ul id="check-list" class="checks"></ul>
<details><summary>Test a sign-in token</summary>
<p class="muted">Paste an access token Teams issued for this app to check its issuer and audience (it is only
checked, never stored).</p>
<label for="token">Token</label><textarea id="token" rows="3" spellcheck="false"></textarea>
<button type="button" id="check-token">Check with this token</button></details>
</section>
</main>
</body></html>
"""
