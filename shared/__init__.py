"""The support desk's domain package: settings, HTTP helpers, storage, auth, chat, billing."""
