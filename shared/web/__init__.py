"""HTTP plumbing every blueprint shares: RFC 7807 problems, JSON bodies, CORS, static pages, rate limits.

Modules: ``http`` (``endpoint``, ``read_json``, ``json_response``, query and cursor helpers),
``cors``, ``static_files`` (pages with their security headers), ``ratelimit``.
"""
