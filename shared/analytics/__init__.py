"""Analytics: conversation figures counted as conversations change, and the visitor's rating.

``facts`` (pure) says what a commit adds to its conversation's day; the outbox applies it
(``projection``, stored by :mod:`shared.storage.analytics`); ``report`` reads a range of days;
``rating`` records a visitor's rating of a closed conversation.
"""
