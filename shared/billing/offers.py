"""Which Marketplace offer this deployment meters for (``MARKETPLACE_OFFER``), read by metering and health."""

from __future__ import annotations

import logging

from shared.config import Settings

log = logging.getLogger(__name__)

OFFERS = ("managed-app", "saas", "none")


def offer_of(settings: Settings) -> str:
    """``managed-app``, ``saas`` or ``none``: the setting, else saas when a SaaS subscription is named."""
    offer = settings.marketplace_offer.strip().lower()
    if offer in OFFERS:
        return offer
    if offer:
        log.warning("MARKETPLACE_OFFER=%r is not one of %s: nothing is metered", offer, ", ".join(OFFERS))
        return "none"
    return "saas" if (settings.metering_resource_id or settings.marketplace_subscription_id) else "none"
