"""``zest-mock serve`` and ``zest-mock token``: run the mock, and get a bearer token from one.

What a command needs beyond click and the presets is imported inside it, so that ``--help`` builds neither the
settings nor a socket (see ``mock_server.cli``)."""

from __future__ import annotations

import errno
import functools
import gc
import sys
from typing import TYPE_CHECKING

import click

from mock_server import __version__
from mock_server.cli.common import DEFAULT_URL, FilePath
from mock_server.presets import AUDIENCE_PRESETS, CLOCK_MODES, DEV_CLIENT_ID, resolve_audience

if TYPE_CHECKING:
    from pathlib import Path

    from mock_server.settings import Settings


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--state", "state_path", type=FilePath(dir_okay=False),
              help="SQLite state file; a restart resumes from it. In memory when absent.")
@click.option("--seed", type=int, help="Seed for ids, secrets and fault decisions, to replay a run exactly.")
@click.option("--clock", "clock_mode", type=click.Choice(CLOCK_MODES), default=None,
              help="Simulated clock: realtime (default), manual (frozen until advanced) or scaled.")
@click.option("--scale", "clock_scale", type=float, help="With --clock scaled: simulated seconds per wall second.")
@click.option("--start", "clock_start", help="Simulated start instant (ISO 8601); default the wall clock.")
@click.option("--audience", help=f"Expected JWT aud: a URL or a preset ({', '.join(AUDIENCE_PRESETS)}).")
@click.option("--public-url", help="URL partners reach the mock at (used in file URLs); default from host/port.")
@click.option("--webhook-url", help="Webhook endpoint of the dev partner.")
@click.option("--webhook-secret", help="Signing secret (whsec_...) of the dev partner.")
@click.option("--admin-policy", help="Simulated admin: 'manual' (default), 'demo' (approve and complete after 60 s "
              "each) or a JSON policy as accepted by PUT /_mock/admin/policy.")
@click.option("--scenario", help="Load a scenario at start: a library name (see `zest-mock scenario list`) or a "
              "YAML file.")
@click.option("--reject-replayed-assertions", is_flag=True, default=None,
              help="Refuse an assertion whose jti was already exchanged while it is still valid (off by default).")
@click.option("--strict-fields", is_flag=True, default=None,
              help="Refuse unknown request fields and multipart parts with 400 (env ZEST_MOCK_STRICT_FIELDS); by "
                   "default they are ignored, as Zest does, and named in a Zest-Mock-Warning header.")
def serve(**options: object) -> None:
    """Serve the Partner API and the /_mock control plane."""
    gc.disable()  # imports allocate what lives as long as the process: no collector passes over them
    try:
        settings = _settings(options)
        import uvicorn

        from mock_server.app import create_app
        from mock_server.control.guard import is_loopback
        from mock_server.serving import uvicorn_options
    finally:
        gc.enable()

    _refuse_a_busy_port(settings.host, settings.port)
    bound = f"http://{f'[{settings.host}]' if ':' in settings.host else settings.host}:{settings.port}"
    aside = "" if bound == settings.base_url else f"; partners' base URL (JWT aud, file URLs) {settings.base_url}"
    click.echo(f"zest-mock {__version__} listening on {bound} (clock {settings.clock_mode}, "
               f"state {settings.state_path or 'in memory'}); docs at {bound}/docs, console at {bound}/_mock/console"
               f"{aside}", err=True)
    if not is_loopback(settings.host):
        click.echo(exposure_warning(settings.host), err=True)
    uvicorn.run(functools.partial(create_app, settings), factory=True, host=settings.host, port=settings.port,
                timeout_graceful_shutdown=5, **uvicorn_options(settings))


def _settings(options: dict[str, object]) -> Settings:
    """The instance's settings from the flags, with the admin policy and the scenario checked before serving."""
    from mock_server.settings import Settings

    if isinstance(options.get("audience"), str):
        options["audience"] = resolve_audience(str(options["audience"]))
    try:
        settings = Settings.from_env(**options)
        if settings.admin_policy:  # its model loads only when a policy is given
            from mock_server.domain import policy

            policy.parse(settings.admin_policy)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    if settings.scenario:  # the scenario model and YAML load only when a scenario is asked for
        from mock_server.scenarios.model import ScenarioError, load_scenario

        try:
            load_scenario(settings.scenario)
        except ScenarioError as exc:
            raise click.BadParameter("\n".join(exc.errors), param_hint="--scenario") from exc
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from exc
    return settings


def _refuse_a_busy_port(host: str, port: int) -> None:
    """Fail before the banner when something already listens on host:port (uvicorn would say so only after it).

    Other bind problems (an address that is not this machine's, say) are left to uvicorn to report.
    """
    import socket

    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except OSError:
        return
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no obstacle
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise click.ClickException(f"cannot listen on {host}:{port}: address already in use (is another "
                                           "zest-mock serving there? choose another --port)") from exc


def exposure_warning(host: str) -> str:
    return (f"WARNING: --host {host} is not loopback: anyone who can reach this port can use the unauthenticated "
            "/_mock control plane (by the address the connection arrives on, or --public-url): read every partner's "
            "webhook secret, mint bearer tokens for any partner, approve requests, move the clock and reset the "
            "state. Bind 127.0.0.1 unless this network is yours alone.")


@click.command()
@click.option("--mock-url", "--base-url", "base_url", envvar=["ZEST_MOCK_URL", "ZEST_BASE_URL"], default=DEFAULT_URL,
              show_default=True, help="Where the mock (or a Zest environment) listens (env ZEST_MOCK_URL; "
              "--base-url is the old name).")
@click.option("--client-id", envvar="ZEST_CLIENT_ID", default=DEV_CLIENT_ID, show_default=True)
@click.option("--private-key", "private_key_file", envvar="ZEST_PRIVATE_KEY_FILE",
              type=FilePath(exists=True, dir_okay=False),
              help="Ed25519 private key (PEM) of the client; default the shipped dev partner key.")
@click.option("--audience", help=f"JWT aud: a URL or a preset ({', '.join(AUDIENCE_PRESETS)}); default the URL "
              "called.")
def token(base_url: str, client_id: str, private_key_file: Path | None, audience: str | None) -> None:
    """Print a bearer token, obtained by the real JWT-bearer exchange."""
    import httpx

    from mock_server.dev_partner import dev_partner_private_key
    from mock_server.harness.assertions import fetch_token

    key = private_key_file.read_text() if private_key_file else dev_partner_private_key()
    try:
        click.echo(fetch_token(base_url, client_id, key, resolve_audience(audience or base_url)))
    except httpx.HTTPStatusError as exc:
        click.echo(f"token exchange refused: {exc.response.status_code} {exc.response.text}", err=True)
        sys.exit(1)
    except httpx.TransportError as exc:
        click.echo(f"cannot reach {base_url}: {exc}", err=True)
        sys.exit(1)

