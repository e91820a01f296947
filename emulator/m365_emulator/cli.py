"""The ``m365-emulator`` command: start the emulator, print how to reach it, run until told to stop."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import yaml

from .server import Emulator
from .state import DEFAULT_BEHAVIOUR


def _behaviour(text: str) -> tuple[str, Any]:
    name, separator, value = text.partition("=")
    if not separator or not name:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    if name not in DEFAULT_BEHAVIOUR:
        raise argparse.ArgumentTypeError(f"unknown behaviour switch {name!r}; known: {', '.join(DEFAULT_BEHAVIOUR)}")
    try:
        # YAML reads true/false, numbers and [a, b] lists the way a shell user writes them.
        return name, yaml.safe_load(value)
    except yaml.YAMLError as exc:
        raise argparse.ArgumentTypeError(f"{name}: cannot read value {value!r}: {exc}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="m365-emulator",
        description="Local stand-in for Entra ID tokens, Microsoft Graph, the Exchange Online admin API and "
                    "SMTP submission. Prints the connection details as JSON and runs until SIGTERM/SIGINT.")
    parser.add_argument("--seed", help="seed file (YAML or JSON); default: the bundled sample tenants")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--https-port", type=int, default=8443,
                        help="HTTPS port for tokens, Graph, Exchange and the control API; 0 picks a free port "
                             "(default: %(default)s)")
    parser.add_argument("--smtp-port", type=int, default=8587,
                        help="SMTP submission port; 0 picks a free port (default: %(default)s)")
    parser.add_argument("--mx-port", type=int, default=None,
                        help="port of the MX endpoint that connector relay sends to (no AUTH; 0 picks a free "
                             "port; default: not started)")
    parser.add_argument("--latency-ms", type=int, default=0, help="delay added to every request (default: 0)")
    parser.add_argument("--state-dir", help="where the CA, server and app certificates are written "
                                            "(default: a temporary directory removed at exit)")
    parser.add_argument("--connection-file", help="also write the connection details (JSON) to this file")
    parser.add_argument("--env-file", help="write 'export M365_...=' lines for the first tenant's first app")
    parser.add_argument("--generate", type=int, default=0, metavar="N",
                        help="add N bulk mailboxes (device00001@...) to the first tenant")
    parser.add_argument("--behaviour", type=_behaviour, action="append", default=[], metavar="KEY=VALUE",
                        help="set a behaviour switch (repeatable), e.g. set_response=object")
    return parser


def connection_env(info: dict[str, Any], tenant: str | None = None, app: str | None = None) -> dict[str, str]:
    """The collection's ``M365_*`` variables for one tenant and one of its apps.

    ``tenant`` is a tenant id or domain (default: the first tenant), ``app`` an app's display name or client id
    (default: the tenant's first app). ``LookupError`` when there is no such tenant or app.
    """
    tenants = [entry for entry in info["tenants"] if tenant is None or tenant in (entry["id"], *entry["domains"])]
    apps = [entry for entry in (tenants[0]["apps"] if tenants else [])
            if app is None or app in (entry["display_name"], entry["client_id"])]
    if not apps:
        raise LookupError(f"no app {app or '(any)'} in tenant {tenant or '(the first)'}")
    return {
        "M365_TENANT_ID": tenant or tenants[0]["id"],
        "M365_CLIENT_ID": apps[0]["client_id"],
        "M365_CLIENT_SECRET": apps[0]["secret"] or "",
        "M365_AUTHORITY_URL": info["authority_url"],
        "M365_GRAPH_URL": info["graph_url"],
        "M365_EXCHANGE_URL": info["exchange_url"],
        "M365_CA_PATH": info["ca_path"],
    }


def environment_lines(info: dict[str, Any]) -> list[str]:
    try:
        values = connection_env(info)
    except LookupError:
        raise ValueError("the seed has no tenant with an app to write an environment file for") from None
    return [f"export {name}={shlex.quote(str(value))}" for name, value in values.items()]


def _write_private(path: str, text: str) -> None:
    """Write readable by the owner only (the files carry client secrets), and atomically: scripts wait for
    the file to appear and must never read half of it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(partial, target)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        emulator = Emulator(seed=args.seed, host=args.host, https_port=args.https_port, smtp_port=args.smtp_port,
                            latency_ms=args.latency_ms, state_dir=args.state_dir,
                            behaviour=dict(args.behaviour), generate=args.generate, mx_port=args.mx_port)
    except (OSError, ValueError, TypeError) as exc:
        print(f"m365-emulator: cannot load the seed: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        emulator.start()
    except OSError as exc:
        print(f"m365-emulator: cannot listen on {args.host} (https {args.https_port}, smtp {args.smtp_port}): {exc}",
              file=sys.stderr)
        emulator.stop()
        return 1
    try:
        info = emulator.connection_info()
        if args.connection_file:
            _write_private(args.connection_file, json.dumps(info, indent=2) + "\n")
        if args.env_file:
            _write_private(args.env_file, "\n".join(environment_lines(info)) + "\n")
        # One line, so that a script can take the first line of the output and parse it.
        print(json.dumps(info), flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
