"""What the customer pays for: the plans catalogue, seats against the quota, Marketplace metering.

Modules: ``plans`` (built-in catalogue and an optional remote one), ``seats`` (seat usage, the
grace clock, whether new agents are blocked), ``metering`` (hourly ``usageEvent`` reports of the
month's peak over-quota seats).
"""
