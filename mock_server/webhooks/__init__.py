"""Webhooks: the nine event payloads, signing, and the dispatcher that delivers the outbox."""
