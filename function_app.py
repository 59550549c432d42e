"""The Function App: logging and blueprint registration only."""

import logging

import azure.functions as func

import blueprints.agent_desk
import blueprints.analytics
import blueprints.channels
import blueprints.openapi
import blueprints.webhooks
from blueprints import admin, agent, approvals, control, devauth, drafts, gaps, knowledge, public, queues, timers

logging.getLogger("azure").setLevel(logging.WARNING)

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
for module in (public, admin, agent, approvals, devauth, knowledge, drafts, gaps, control, timers, queues):
    app.register_functions(module.bp)
app.register_functions(blueprints.channels.bp)
app.register_functions(blueprints.analytics.bp)
app.register_functions(blueprints.agent_desk.bp)
app.register_functions(blueprints.webhooks.bp)
app.register_functions(blueprints.openapi.bp)
