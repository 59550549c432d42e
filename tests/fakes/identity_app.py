"""A test-only Function App: the dev sign-in routes plus ``GET /api/whoami`` behind agent sign-in."""

from __future__ import annotations

import azure.functions as func

from blueprints import devauth
from shared.identity.teams import authenticate_agent
from shared.web.http import endpoint, json_response

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(devauth.bp)


@app.route(route="whoami", methods=["GET"])
@endpoint
async def whoami(req: func.HttpRequest) -> func.HttpResponse:
    """The signed-in agent's public claims."""
    agent = await authenticate_agent(req)
    return json_response(agent.public())
