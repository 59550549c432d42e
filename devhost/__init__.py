"""The local stack: a Functions host for ``function_app.app``, the SignalR emulator, Azurite."""
