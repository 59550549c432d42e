"""Outbound webhooks: endpoints admins register, events derived from commits, signed deliveries with retries.

A commit's events (``events``) travel in one outbox row; its applier (``fanout``) records one delivery per
subscribed endpoint and event and puts it on the ``webhooks`` queue, whose trigger sends it signed by the
Standard Webhooks scheme (``delivery``) and schedules retries with back-off. ``endpoints`` holds the admin's
use cases (create, change, rotate the secret, list deliveries, retry, send a test event).
https://www.standardwebhooks.com/
"""
