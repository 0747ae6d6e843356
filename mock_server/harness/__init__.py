"""The harness: what a partner's CI runs against a mock (clients, scenarios, checks, reports)."""
