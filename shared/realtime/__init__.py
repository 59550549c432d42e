"""Real-time delivery through Azure SignalR Service in serverless mode.

Modules: ``client`` (connection strings, negotiate, the data-plane REST API, ``get_realtime``),
``events`` (the hub events the widget and the agent console receive).
"""
