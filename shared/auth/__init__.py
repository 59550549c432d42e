"""Agent identity: Teams SSO token validation, plus a Development-only local sign-in.

Import from here: ``authenticate_agent(req)`` is what agent handlers call.
"""

from __future__ import annotations

from shared.auth.teams import (
    Agent,
    AuthSettings,
    TeamsTokenValidator,
    authenticate_agent,
    bearer_token,
    get_auth_settings,
    get_validator,
    make_jwks_client,
    make_validator,
)

__all__ = [
    "Agent",
    "AuthSettings",
    "TeamsTokenValidator",
    "authenticate_agent",
    "bearer_token",
    "get_auth_settings",
    "get_validator",
    "make_jwks_client",
    "make_validator",
]
