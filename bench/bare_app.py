"""A one-function app: the baseline for the cold-start benchmark (async, like the product's health)."""

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="health", methods=["GET"])
async def health(req: func.HttpRequest) -> func.HttpResponse:
    """Always healthy."""
    return func.HttpResponse('{"ok":true}', mimetype="application/json")
