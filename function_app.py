"""The Function App: logging and blueprint registration only."""

import logging

import azure.functions as func

from blueprints import public

logging.getLogger("azure").setLevel(logging.WARNING)

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(public.bp)
