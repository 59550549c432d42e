"""What the customer pays for: the plans catalogue, seats against the quota, Marketplace metering.

Modules: ``plans`` (built-in catalogue and an optional remote one), ``seats`` (seat usage, the
grace clock, whether new agents are blocked), ``metering`` (hourly ``usageEvent`` reports of the
month's peak over-quota seats), ``offers`` (which offer is metered), ``managed_app`` (the managed
application's id from the resource group's ``managedBy``).
"""
