"""Running the deployment: bootstrap (tables, queues, keys), health, dashboard reports, Teams setup.

Modules: ``bootstrap`` (first-run setup, safe when workers race), ``health`` (health and readiness
bodies), ``reports`` (dashboard reads over rollups and orderings), ``teams_package`` and
``teams_setup`` (the per-deployment Teams app package and its setup page).
"""
