"""Rules with no HTTP: auth, idempotency, SPV requests, investors, subscriptions, uploads and contract templates."""
