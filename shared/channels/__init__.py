"""Messaging channels (SMS, WhatsApp, Telegram, email) in the same conversation model as the widget.

One module per provider verifies its webhook, reads its messages and sends replies: ``acs``
(Azure Communication Services through Event Grid), ``meta`` (WhatsApp Cloud API), ``twilio``,
``telegram``, ``email`` (SendGrid). ``inbound`` turns a message into a visitor turn of the
contact's session; ``delivery`` sends the session's bot and agent messages back out.
"""

PROVIDERS = ("acs", "whatsapp", "twilio", "telegram", "email")
