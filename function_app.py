"""The Function App: logging and blueprint registration only."""

import logging

import azure.functions as func

from blueprints import admin, agent, control, devauth, gaps, knowledge, public, queues, timers

logging.getLogger("azure").setLevel(logging.WARNING)

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
for blueprint in (public.bp, admin.bp, agent.bp, devauth.bp, knowledge.bp, gaps.bp, control.bp, timers.bp, queues.bp):
    app.register_functions(blueprint)
