"""How the collection's bulk reads compare with one request per mailbox, on a large emulated tenant.

Run with ``make benchmark`` (or ``python benchmarks/bulk_reads.py --mailboxes 20000``). It starts the emulator
as a separate process with N generated mailboxes and a per-request latency that stands in for the round trip
to Microsoft 365, then measures, side by side in one run:

* reading the SMTP AUTH switch of K declared mailboxes: the collection's strategy (one paged tenant listing
  when K is large, ``Get-CASMailbox -Identity`` 10 to an admin API ``$batch`` when small) against a serial
  ``Get-CASMailbox -Identity`` per mailbox, the way a hand-written PowerShell loop does it;
* reading per-user MFA and licences of K users: Graph ``$batch`` (20 per request, 4 in flight) against one
  GET per user;
* the memory the tenant-wide listing of N mailboxes takes (tracemalloc peak).

Figures are wall-clock on a shared machine: read the ratios, not the absolute seconds.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

sys.path.insert(0, str(common.COLLECTIONS))

from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _auth as auth, _services as services, _transport as transport  # noqa: E402
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.connection import ConnectionSettings  # noqa: E402
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.exchange import ExchangeClient  # noqa: E402
from ansible_collections.m365ops.smtp_auth.plugins.module_utils.graph import GraphClient  # noqa: E402


def clients(info: dict):
    tenant = info["tenants"][0]
    app = tenant["apps"][0]
    base = info["base_url"]
    settings = ConnectionSettings(tenant_id=tenant["id"], client_id=app["client_id"], client_secret=app["secret"],
                                  authority_url=base, graph_url=base, exchange_url=base, ca_path=info["ca_path"])
    session = transport.build_session(settings)
    tokens = auth.TokenProvider(settings, session)
    return tenant, ExchangeClient(session, tokens, settings), GraphClient(session, tokens, settings)


def timed(label: str, function, session, info):
    """Run ``function``; count the HTTP round trips it made (items inside a $batch are not round trips)."""
    seq = common.last_seq(session, info)
    start = time.perf_counter()
    result = function()
    seconds = time.perf_counter() - start
    requests = len(common.round_trips(common.request_log(session, info, seq)))
    return {"label": label, "seconds": seconds, "requests": requests, "result": result}


def serial_cas_reads(exchange, identities):
    return [exchange.invoke("Get-CASMailbox", {"Identity": identity}, identity=identity) for identity in identities]


def single_graph_gets(graph, paths, version):
    return [graph.get(path, version=version) for path in paths]


def show(pair: list[dict]) -> None:
    ours, naive = pair
    for row in pair:
        print("    %-46s %8.2f s %7d requests" % (row["label"], row["seconds"], row["requests"]))
    print("    %-46s %8.1fx faster, %.1fx fewer requests" % (
        "ratio", naive["seconds"] / max(ours["seconds"], 1e-9), naive["requests"] / max(ours["requests"], 1)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mailboxes", type=int, default=20000, help="generated mailboxes in the tenant")
    parser.add_argument("--declared", type=int, nargs="+", default=[20, 200, 1000],
                        help="how many declared relay mailboxes to read, one measurement each")
    parser.add_argument("--latency-ms", type=int, default=30, help="added round-trip time per request")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory:
        process, info = common.start_emulator(Path(directory), generate=args.mailboxes, latency_ms=args.latency_ms)
        try:
            tenant, exchange, graph = clients(info)
            control = common.control_session(info)
            domain = tenant["domains"][0]
            exchange.invoke("Get-TransportConfig")  # token and connection warm-up, outside the figures
            graph.get(services.SECURITY_DEFAULTS_PATH)
            print("tenant: %d generated mailboxes; %d ms added per request; Python %s"
                  % (args.mailboxes, args.latency_ms, sys.version.split()[0]))

            tracemalloc.start()
            listing = timed("tenant-wide Get-CASMailbox listing (paged)",
                            lambda: services.list_cas_mailboxes(exchange), control, info)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            print("\nlisting: %d mailboxes in %.2f s over %d requests; peak memory %.1f MiB (%.0f bytes/mailbox)"
                  % (len(listing["result"]), listing["seconds"], listing["requests"], peak / 2**20,
                     peak / max(len(listing["result"]), 1)))

            for declared in args.declared:
                step = max(args.mailboxes // declared, 1)
                identities = ["device%05d@%s" % (number, domain) for number in range(1, args.mailboxes + 1, step)]
                identities = identities[:declared]
                print("\n%d declared mailboxes" % len(identities))
                show([
                    timed("collection: read_cas_mailboxes", lambda: services.read_cas_mailboxes(exchange, identities),
                          control, info),
                    timed("one Get-CASMailbox per mailbox, serial", lambda: serial_cas_reads(exchange, identities),
                          control, info),
                ])
                mfa_paths = ["users/%s/authentication/requirements" % identity for identity in identities]
                show([
                    timed("collection: per-user MFA via $batch", lambda: services.read_mfa_states(graph, identities),
                          control, info),
                    timed("one GET per user (MFA)", lambda: single_graph_gets(graph, mfa_paths, "beta"),
                          control, info),
                ])
                license_paths = ["users/%s?$select=id,userPrincipalName,assignedPlans" % identity
                                 for identity in identities]
                show([
                    timed("collection: licences via $batch", lambda: services.read_license_info(graph, identities),
                          control, info),
                    timed("one GET per user (licences)", lambda: single_graph_gets(graph, license_paths, "v1.0"),
                          control, info),
                ])
        finally:
            common.stop_emulator(process)
    return 0


if __name__ == "__main__":
    os.environ.pop("REQUESTS_CA_BUNDLE", None)
    sys.exit(main())
