"""The support desk's domain package: one subpackage per domain (see each ``__init__``); imports nothing from
``blueprints``."""
