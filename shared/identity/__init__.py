"""Who is calling: agents (Teams SSO, and a Development-only sign-in), the admin key, visitor tokens.

Modules: ``teams`` (Teams SSO token validation, ``authenticate_agent``), ``devidentity`` (local
sign-in that mints the same claims, Development only), ``admin`` (admin key, cookie, CSRF,
rotation), ``visitor_tokens`` (widget session tokens), ``secrets`` (key generation and hashing).
Nothing here stores conversations; every module refuses missing, wrong, expired or forged
credentials with a 401/403 problem.
"""
