"""Channel signature checks against published examples, and the email reply stripper."""

from __future__ import annotations

import hashlib
import hmac

from shared.channels import email, meta, telegram, twilio

# Twilio's documented example (security/signature_validation in Twilio's api-snippets).
TWILIO_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
TWILIO_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675310",
    "Digits": "1234",
    "From": "+14158675310",
    "To": "+18005551212",
}


def test_twilio_published_vector() -> None:
    assert twilio.signature_ok(TWILIO_URL, TWILIO_PARAMS, "GvWf1cFY/Q7PnoempGyD5oXAezc=", "12345")
    assert not twilio.signature_ok(TWILIO_URL, TWILIO_PARAMS, "GvWf1cFY/Q7PnoempGyD5oXAezc=", "12346")
    assert not twilio.signature_ok(
        TWILIO_URL, {**TWILIO_PARAMS, "Digits": "1235"}, "GvWf1cFY/Q7PnoempGyD5oXAezc=", "12345"
    )
    assert not twilio.signature_ok(TWILIO_URL, TWILIO_PARAMS, "", "12345")


def test_meta_signature_and_challenge() -> None:
    body = b'{"object":"whatsapp_business_account","entry":[]}'
    good = "sha256=" + hmac.new(b"secret", body, hashlib.sha256).hexdigest()
    assert meta.signature_ok(body, good, "secret")
    assert not meta.signature_ok(body, good.replace("sha256=", "sha1="), "secret")
    assert not meta.signature_ok(body + b" ", good, "secret")
    assert not meta.signature_ok(body, good, "")
    params = {"hub.mode": "subscribe", "hub.verify_token": "t", "hub.challenge": "42"}
    assert meta.challenge(params, "t") == "42"
    assert meta.challenge({**params, "hub.verify_token": "x"}, "t") is None
    assert meta.challenge({**params, "hub.mode": "unsubscribe"}, "t") is None


def test_telegram_secret() -> None:
    assert telegram.secret_ok("abc", "abc") and not telegram.secret_ok("abd", "abc") and not telegram.secret_ok("", "")


def test_email_reply_stripping() -> None:
    assert (
        email.strip_reply("Thanks!\n\nOn Mon, 1 Dec 2026 at 09:00, Support\n<help@x.example> wrote:\n> old")
        == "Thanks!"
    )
    assert email.strip_reply("Yes please\r\n-- \r\nKim\r\nACME") == "Yes please"
    assert email.strip_reply("Fine\n\n-----Original Message-----\nFrom: a") == "Fine"
    assert email.strip_reply("Hello\n> quoted\nmore") == "Hello"
    assert email.strip_reply("Two lines\nof text") == "Two lines\nof text"
