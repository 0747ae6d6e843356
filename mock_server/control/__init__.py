"""The /_mock control plane: what only a test can do (play the admin, move time, configure, inspect)."""
