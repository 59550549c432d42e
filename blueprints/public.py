"""Anonymous endpoints: health probes, the plan and the plans catalogue."""

from __future__ import annotations

import azure.functions as func

from shared import billing
from shared.config import get_settings
from shared.health import health_report, storage_ready
from shared.http import Problem, endpoint, json_response
from shared.plans import BUILTIN_PLANS

bp = func.Blueprint()

_NO_STORE = {"Cache-Control": "no-store"}
_CATALOGUE_CACHE = {"Cache-Control": "public, max-age=300"}


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def health(req: func.HttpRequest) -> func.HttpResponse:
    """Deployment metadata; 503 with ``ok: false`` when Storage is unreachable."""
    ok, body = await health_report()
    return json_response(body, 200 if ok else 503, headers=_NO_STORE)


@bp.route(route="health/live", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def health_live(req: func.HttpRequest) -> func.HttpResponse:
    """The worker is up."""
    return json_response({"status": "live"}, headers=_NO_STORE)


@bp.route(route="health/ready", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def health_ready(req: func.HttpRequest) -> func.HttpResponse:
    """The worker can serve: Storage answers."""
    ready = await storage_ready()
    return json_response(
        {"status": "ready" if ready else "not-ready", "storage": "ok" if ready else "unavailable"},
        200 if ready else 503,
        headers=_NO_STORE,
    )


@bp.route(route="plan", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def plan(req: func.HttpRequest) -> func.HttpResponse:
    """The current plan, seats used and the grace state."""
    status = await billing.seat_status()
    return json_response(status.public(get_settings().upgrade_url), headers=_NO_STORE)


@bp.route(route="plans", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def plans(req: func.HttpRequest) -> func.HttpResponse:
    """The built-in plans catalogue (Start / Growth / Professional)."""
    return json_response({"plans": [p.public() for p in BUILTIN_PLANS.values()]}, headers=_CATALOGUE_CACHE)


@bp.route(route="plans/{planId}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def plan_by_id(req: func.HttpRequest) -> func.HttpResponse:
    """One plan of the built-in catalogue."""
    plan_id = req.route_params.get("planId", "").lower()
    found = BUILTIN_PLANS.get(plan_id)
    if found is None:
        raise Problem(404, f"No plan '{plan_id}'; known plans: {', '.join(BUILTIN_PLANS)}.", kind="plan-not-found")
    return json_response(found.public(), headers=_CATALOGUE_CACHE)


@bp.route(route="{*path}", auth_level=func.AuthLevel.ANONYMOUS)
@endpoint
async def not_found(req: func.HttpRequest) -> func.HttpResponse:
    """Every other path: a 404 problem rather than the host's empty page."""
    raise Problem(404, "No such endpoint.", kind="not-found")
