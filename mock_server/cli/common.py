"""What the command modules share."""

DEFAULT_URL = "http://localhost:8080"
