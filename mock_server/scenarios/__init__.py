"""Scenarios, on the server side: the model and its YAML loader (``model``, with ``yaml_lines`` for the line of
every error) and applying a scenario to a running mock (``setup``).

The control plane loads and applies them (``POST /_mock/scenarios...``, ``zest-mock serve --scenario``); the
harness reads scenario files with ``model`` and drives the mock over HTTP.

It owns the name pattern of a scenario, so the control routes can declare it without loading the model.
"""

NAME_PATTERN = r"^[a-z][a-z0-9_]{1,63}$"
