# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The relay_accounts role run the way an operator runs it, on a large emulated tenant: wall time and requests.

    python benchmarks/role_runs.py                      every case, 20,000 mailboxes, 50 ms per request
    python benchmarks/role_runs.py --quick              a smoke run: small tenant, small lists
    python benchmarks/role_runs.py --cases drift-10000 apply

Starts the emulator as a separate process (its bundled sample tenants, the first one grown by --mailboxes
generated mailboxes, --latency-ms added to every request), writes an inventory of one tenant host whose
relay_accounts_mailboxes lists N of the generated mailboxes (spread over the tenant), and runs ansible-playbook:

* drift-N: the drift_report playbook with --check --diff, for N = 100, 1,000 and 10,000 (one emulator for all,
  since a drift report changes nothing);
* apply-N: the enable playbook, for N = 100 and 1,000, every declared mailbox drifting twice (its own SMTP AUTH
  switch off, legacy per-user MFA enforced, set through the emulator's control API before the run), on a fresh
  emulator each;
* naive-N: the same apply written as a playbook of the setting modules called once per mailbox in a loop (as
  a first attempt would be), N = 100, on a fresh emulator with the same drift;
* paced-N: apply-N for N = 1,000 with the emulator rationing Exchange writes the way Exchange Online's throttling
  policy does (behaviour switch exchange_cmdlet_budget=destructive: about 120 changing cmdlets a minute, then
  429 with Retry-After). It takes minutes by design; it prints the role's own estimate from the start of the run,
  the writes refused and the writes that landed, which must be one per drifting mailbox.

For each case it prints the wall time of ansible-playbook, the HTTP requests the emulator logged by kind, the
least requests the case needs (worked out below from what any client must send) and the ratio, then a table of
the targets. Every run shares the app's tokens between tasks through a token cache file (M365_TOKEN_CACHE in a
temporary directory), as the collection's documentation recommends for a play. The inventory, the mailbox
lists and the reports go to a temporary directory that is always removed. Figures, not a test.

Reading the figures: MSAL reads the authority's OpenID configuration before its first token; the collection
keeps that answer beside the token cache, so "authority discovery" is once a run. The wall time includes the
report task (rows, JSON, Markdown, JUnit XML), which grows with N while the requests barely do; the emulator's request log
has a timestamp per request for telling the two apart.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

DRIFT_SIZES = (100, 1000, 10000)
APPLY_SIZES = (100, 1000)
NAIVE_SIZES = (100,)
PACED_SIZES = (1000,)
QUICK_SIZES = {"drift": (10, 50), "apply": (10,), "naive": (10,), "paced": (10,)}
QUICK_MAILBOXES = 2000
# A case that runs longer than this is stopped and reported as such; the others still run.
CASE_TIMEOUT = 600
# 1,000 paced writes at 120 a minute take more than eight minutes on their own.
PACED_TIMEOUT = 1200
PACED_BUDGET = "destructive"

# The collection's page and batch sizes, which the lower bounds below are counted in. They are Microsoft's limits,
# not the collection's choices: Graph takes at most 20 requests in one $batch (WIRE.md, JSON batching) and at
# most 999 users per /users page ($top); the Exchange admin API sends at most 1000 objects a page (WIRE.md,
# Prefer odata.maxpagesize=1000).
GRAPH_BATCH_SIZE = 20
USERS_PAGE_SIZE = 999
EXCHANGE_PAGE_SIZE = 1000
# The admin API's $batch has no published limit; 10 cmdlets a batch is what production callers send (see
# plugins/module_utils/exchange.py) and what the collection sends.
EXCHANGE_BATCH_SIZE = 10

KINDS = ("token", "authority discovery", "graph GET", "graph PATCH", "graph $batch", "exchange read",
         "exchange write", "exchange $batch", "other")
ITEM_KINDS = ("graph read", "graph write", "exchange read", "exchange write")

TARGET_RATIO = 1.1
TARGET_DRIFT = (10000, 20.0)
TARGET_APPLY = (1000, 15.0)
TARGET_SPEED_UP = (100, 30.0)

NAIVE_PLAYBOOK = [{
    "name": "Turn on SMTP AUTH for the relay mailboxes, one module call per mailbox",
    "hosts": "m365_tenants",
    "connection": "local",
    "gather_facts": False,
    "module_defaults": {"group/m365ops.smtp_auth.m365": "{{ relay_accounts_connection }}"},
    "tasks": [
        {"name": "Check the licence of each mailbox",
         "m365ops.smtp_auth.mailbox_license_info": {"mailboxes": "{{ item }}"},
         "loop": "{{ relay_accounts_mailboxes }}"},
        {"name": "Turn off security defaults",
         "m365ops.smtp_auth.security_defaults": {"state": "disabled"}},
        {"name": "Turn on SMTP AUTH for each mailbox",
         "m365ops.smtp_auth.mailbox_smtp_auth": {"mailboxes": "{{ item }}", "state": "enabled"},
         "loop": "{{ relay_accounts_mailboxes }}"},
        {"name": "Turn off legacy per-user MFA for each mailbox",
         "m365ops.smtp_auth.per_user_mfa": {"users": "{{ item }}", "state": "disabled"},
         "loop": "{{ relay_accounts_mailboxes }}"},
    ],
}]


# ---- what the emulator logged ------------------------------------------------------------------------

def kind(entry: dict) -> str:
    """The kind of one logged round trip."""
    path = entry["path"]
    if path.endswith("/oauth2/v2.0/token"):
        return "token"
    if path.endswith("/.well-known/openid-configuration"):
        return "authority discovery"
    if path.endswith("/InvokeCommand"):
        return "exchange read" if str(entry.get("cmdlet") or "").lower().startswith("get-") else "exchange write"
    if path.startswith("/adminapi/") and path.endswith("/$batch"):
        return "exchange $batch"
    if path.endswith("/$batch"):
        return "graph $batch"
    if path.startswith(("/v1.0/", "/beta/")):
        return "graph %s" % entry["method"] if entry["method"] in ("GET", "PATCH") else "other"
    return "other"


def item_kind(entry: dict) -> str:
    """The kind of one item inside a $batch: an Exchange cmdlet (InvokeCommand) or a Graph request."""
    if entry["path"].endswith("/InvokeCommand"):
        return kind(entry)
    return "graph read" if entry["method"] == "GET" else "graph write"


def count(entries: list[dict]) -> tuple[Counter, Counter]:
    """Round trips by kind, and the items inside $batch requests by ITEM_KINDS."""
    trips = Counter(kind(entry) for entry in common.round_trips(entries))
    items = Counter(item_kind(entry) for entry in entries if entry.get("batch") is not None)
    return trips, items


# ---- the least a case needs ----------------------------------------------------------------------------

def lower_bound(declared: int, tenant: dict, apply: bool) -> tuple[Counter, Counter]:
    """The fewest round trips by kind, and $batch items, that any client needs for the role's default plan
    (licence check, security defaults, per-mailbox SMTP AUTH, per-user MFA) over ``declared`` basic mailboxes.

    ``tenant`` says how many users and mailboxes the tenant has and whether security defaults are on. Every
    setting is read before it is written (read, compare, write: a second run must change nothing), so apply needs
    the reads of a drift report plus the writes. An apply case has every declared mailbox drifting on both
    per-mailbox settings.
    """
    bound = Counter()
    items = Counter()
    # Client credentials: one token per audience (Graph, Exchange Online) for the whole run, shared between
    # tasks through the token cache. MSAL reads the authority's OpenID configuration before its first token;
    # once per run is the least (the metadata never changes within one).
    bound["token"] = 2
    bound["authority discovery"] = 1
    # Licences: per-user reads go 20 to a $batch; one /users listing of 999 a page covers everybody. The cheaper
    # of the two. (GET /users/{id}/licenseDetails does not work app-only, WIRE.md.)
    license_batches = math.ceil(declared / GRAPH_BATCH_SIZE)
    license_pages = math.ceil(tenant["users"] / USERS_PAGE_SIZE)
    if license_pages < license_batches:
        bound["graph GET"] += license_pages
    else:
        bound["graph $batch"] += license_batches
        items["graph read"] += declared
    # Security defaults: one policy, one GET; apply turns it off with one PATCH when it is on.
    bound["graph GET"] += 1
    if apply and tenant["security_defaults_enabled"]:
        bound["graph PATCH"] += 1
    # The mailbox switch: Get-CASMailbox -Identity takes one mailbox, so per-mailbox reads cost one $batch item
    # each, 10 to a batch; a tenant-wide listing ceil(mailboxes / 1000) pages; the cheaper of the two.
    mailbox_batches = math.ceil(declared / EXCHANGE_BATCH_SIZE)
    mailbox_pages = math.ceil(tenant["mailboxes"] / EXCHANGE_PAGE_SIZE)
    if mailbox_pages < mailbox_batches:
        bound["exchange read"] += mailbox_pages
    else:
        bound["exchange $batch"] += mailbox_batches
        items["exchange read"] += declared
    # Set-CASMailbox takes one mailbox: one cmdlet per drifting mailbox, 10 to a batch.
    if apply:
        bound["exchange $batch"] += mailbox_batches
        items["exchange write"] += declared
    # Per-user MFA has no listing (only /users/{id}/authentication/requirements, beta): one $batch item per user,
    # 20 to a $batch; the writes are PATCH items batched the same way, after the reads they depend on.
    bound["graph $batch"] += math.ceil(declared / GRAPH_BATCH_SIZE)
    items["graph read"] += declared
    if apply:
        bound["graph $batch"] += math.ceil(declared / GRAPH_BATCH_SIZE)
        items["graph write"] += declared
    return bound, items


# ---- one emulator, one inventory -----------------------------------------------------------------------

class Tenant:
    """The emulator's first tenant grown to ``mailboxes`` generated mailboxes, with what the lower bounds need."""

    def __init__(self, directory: Path, mailboxes: int, latency_ms: int, behaviour: dict | None = None):
        directory.mkdir(parents=True)
        self.directory = directory
        self.process, self.info = common.start_emulator(directory, generate=mailboxes, latency_ms=latency_ms,
                                                        behaviour=behaviour)
        try:
            self.session = common.control_session(self.info)
            self.entry = self.info["tenants"][0]
            reply = self.session.get(self.info["control_url"] + "/state", timeout=120)
            reply.raise_for_status()
            state = next(tenant for tenant in reply.json()["tenants"] if tenant["id"] == self.entry["id"])
            self.figures = {"users": len(state["users"]),
                            "mailboxes": sum(1 for user in state["users"] if user.get("has_mailbox", True)),
                            "security_defaults_enabled": bool(state["security_defaults_enabled"])}
        except BaseException:
            self.close()
            raise
        self.domain = self.entry["domains"][0]
        self.generated = mailboxes

    def close(self) -> None:
        common.stop_emulator(self.process)

    def declared(self, count_: int) -> list[str]:
        """``count_`` generated mailboxes spread evenly over the tenant (the generator numbers them from 1)."""
        step = max(self.generated // count_, 1)
        return ["device%05d@%s" % (number, self.domain) for number in range(1, self.generated + 1, step)][:count_]

    def make_drift(self, mailboxes: list[str]) -> None:
        """Each mailbox's own SMTP AUTH switch off and legacy per-user MFA enforced, through the control API."""
        for mailbox in mailboxes:
            reply = self.session.patch("%s/tenants/%s/users/%s" % (self.info["control_url"], self.entry["id"], mailbox),
                                       json={"smtp_client_authentication_disabled": True,
                                             "per_user_mfa_state": "enforced"}, timeout=60)
            reply.raise_for_status()

    def inventory(self, name: str, mailboxes: list[str]) -> Path:
        """An inventory directory as an operator keeps it: hosts, group vars, the tenant's host vars."""
        root = self.directory / name
        (root / "group_vars").mkdir(parents=True)
        (root / "host_vars").mkdir()
        (root / "hosts.yml").write_text(yaml.safe_dump({"m365_tenants": {"hosts": {"contoso": None}}}))
        (root / "group_vars" / "m365_tenants.yml").write_text(yaml.safe_dump({
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable}))
        (root / "host_vars" / "contoso.yml").write_text(yaml.safe_dump({
            "relay_accounts_connection": common.connection_options(self.info, self.entry),
            "relay_accounts_mailboxes": mailboxes}))
        return root


# ---- the cases -----------------------------------------------------------------------------------------

def run_case(tenant: Tenant, name: str, playbook: str, arguments: tuple, declared: int, apply: bool,
             timeout: int = CASE_TIMEOUT) -> dict:
    mailboxes = tenant.declared(declared)
    if apply:
        tenant.make_drift(mailboxes)
    workdir = tenant.directory / name
    inventory = tenant.inventory(name, mailboxes)
    common.clear_request_log(tenant.session, tenant.info)
    result = {"name": name, "declared": declared, "apply": apply, "tenant": dict(tenant.figures)}
    try:
        seconds, completed = common.run_playbook(
            workdir, inventory, playbook, *arguments, timeout=timeout,
            environment={"M365_TOKEN_CACHE": str(workdir / "token-cache.json")})
    except subprocess.TimeoutExpired:
        result.update(seconds=None, exit_code=None, output="stopped after %d s" % timeout, estimate=None)
    else:
        result.update(seconds=seconds, exit_code=completed.returncode,
                      output="" if completed.returncode == 0 else (completed.stdout[-3000:] + completed.stderr[-2000:]),
                      estimate=estimate(completed.stdout))
    entries = common.request_log(tenant.session, tenant.info)
    result["trips"], result["items"] = count(entries)
    # Exchange writes alone or inside a $batch: each is logged with its cmdlet, status and whether it wrote.
    writes = [entry for entry in entries if kind(entry) == "exchange write"]
    result["writes"] = {"refused": sum(1 for entry in writes if entry["status"] == 429),
                        "landed": sum(1 for entry in writes if entry.get("wrote"))}
    result["bound"], result["bound_items"] = lower_bound(declared, tenant.figures, apply)
    return result


def estimate(output: str) -> str | None:
    """What the role said up front about how long the Exchange changes take, from ansible-playbook's output."""
    for line in output.splitlines():
        if "Exchange Online changes" in line and "minutes" in line:
            return " ".join(line.split(": ", 1)[-1].split()).strip('"')
    return None


def ratio(actual: int, bound: int, digits: int = 2) -> str:
    return "%.*f" % (digits, actual / bound) if bound else ("-" if not actual else "inf")


def show(result: dict) -> None:
    trips, bound = result["trips"], result["bound"]
    if result["seconds"] is None:
        wall = result["output"]
    else:
        wall = "%.1f s wall, ansible-playbook exit %d" % (result["seconds"], result["exit_code"])
    print("\n%s: %d declared mailboxes; %s" % (result["name"], result["declared"], wall))
    if result["output"] and result["seconds"] is not None:
        print("    " + result["output"].replace("\n", "\n    "))
    print("    %-22s %8s %12s %7s" % ("requests", "actual", "lower bound", "ratio"))
    for name in KINDS:
        if trips[name] or bound[name]:
            print("    %-22s %8d %12d %7s" % (name, trips[name], bound[name], ratio(trips[name], bound[name])))
    total, least = sum(trips.values()), sum(bound.values())
    print("    %-22s %8d %12d %7s" % ("total round trips", total, least, ratio(total, least)))
    for name in ITEM_KINDS:
        actual, least = result["items"][name], result["bound_items"][name]
        if actual or least:
            print("    %-22s %8d %12d %7s" % ("items, " + name, actual, least, ratio(actual, least)))
    if result["name"].startswith("paced"):
        print("    the role said up front: %s" % (result["estimate"] or "nothing (it speaks up above 120 Exchange changes)"))
        print("    exchange writes refused with 429: %d; landed: %d for %d drifting mailboxes (%s)"
              % (result["writes"]["refused"], result["writes"]["landed"], result["declared"],
                 "each once" if result["writes"]["landed"] == result["declared"] else "NOT each once"))


def summary(results: dict) -> None:
    print("\n%-13s %9s %10s %12s %7s" % ("case", "wall s", "requests", "lower bound", "ratio"))
    for result in results.values():
        total, least = sum(result["trips"].values()), sum(result["bound"].values())
        wall = "%.1f" % result["seconds"] if result["seconds"] is not None else "stopped"
        print("%-13s %9s %10d %12d %7s" % (result["name"], wall, total, least, ratio(total, least)))


def targets(results: dict) -> list[tuple[str, str, str]]:
    """(target, measured, met/missed/not run) rows."""
    rows = []

    def passed(result):
        return result is not None and result["seconds"] is not None and result["exit_code"] == 0

    for result in results.values():
        if result["name"].startswith(("naive", "paced")):
            continue
        total, least = sum(result["trips"].values()), sum(result["bound"].values())
        rows.append(("%s: requests <= %.1f x lower bound" % (result["name"], TARGET_RATIO),
                     "%d / %d = %s" % (total, least, ratio(total, least, digits=3)),
                     "met" if passed(result) and total <= TARGET_RATIO * least else "missed"))
    for label, (declared, limit) in (("drift", TARGET_DRIFT), ("apply", TARGET_APPLY)):
        result = results.get("%s-%d" % (label, declared))
        rows.append(("%s %s < %.0f s" % (label, "{:,}".format(declared), limit),
                     "%.1f s" % result["seconds"] if passed(result) else ("failed" if result else "-"),
                     ("met" if passed(result) and result["seconds"] < limit else "missed") if result else "not run"))
    declared, factor = TARGET_SPEED_UP
    role, naive = results.get("apply-%d" % declared), results.get("naive-%d" % declared)
    if role and naive and passed(role) and passed(naive):
        speed_up = naive["seconds"] / role["seconds"]
        rows.append(("role >= %.0fx faster than naive at N=%d" % (factor, declared),
                     "%.1f s / %.1f s = %.1fx" % (naive["seconds"], role["seconds"], speed_up),
                     "met" if speed_up >= factor else "missed"))
    else:
        rows.append(("role >= %.0fx faster than naive at N=%d" % (factor, declared), "-",
                     "not run" if not (role and naive) else "missed"))
    return rows


def plan(options) -> list[tuple[str, int]]:
    """The (kind, N) cases to run, in order, after --quick and --cases."""
    sizes = QUICK_SIZES if options.quick else {"drift": DRIFT_SIZES, "apply": APPLY_SIZES, "naive": NAIVE_SIZES,
                                               "paced": PACED_SIZES}
    every = [(kind_, size) for kind_ in ("drift", "apply", "naive", "paced") for size in sizes[kind_]]
    if not options.cases:
        return every
    chosen = []
    for word in ",".join(options.cases).split(","):
        word = word.strip()
        if not word:
            continue
        if word in sizes:
            chosen += [(word, size) for size in sizes[word]]
        elif "-" in word and word.split("-", 1)[0] in sizes and word.split("-", 1)[1].isdigit():
            chosen.append((word.split("-", 1)[0], int(word.split("-", 1)[1])))
        else:
            raise SystemExit("--cases: unknown case %r (drift, apply, naive, paced, or one like drift-1000)" % word)
    return list(dict.fromkeys(chosen))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mailboxes", type=int, default=None,
                        help="generated mailboxes in the tenant (default 20000; 2000 with --quick)")
    parser.add_argument("--latency-ms", type=int, default=50, help="added round-trip time per request (default 50)")
    parser.add_argument("--cases", nargs="+", default=[],
                        help="run only these: drift, apply, naive, paced, or sizes like drift-1000 apply-100")
    parser.add_argument("--quick", action="store_true", help="a smoke run: a small tenant and small lists")
    options = parser.parse_args()
    mailboxes = options.mailboxes or (QUICK_MAILBOXES if options.quick else 20000)
    cases = plan(options)
    too_many = [size for _kind, size in cases if size > mailboxes]
    if too_many:
        raise SystemExit("cannot declare %d mailboxes in a tenant of %d" % (max(too_many), mailboxes))

    print("tenant: %d generated mailboxes (plus the sample tenant's own); %d ms added per request; %d CPU cores; "
          "emulator on this machine; Python %s on %s"
          % (mailboxes, options.latency_ms, os.cpu_count() or 0, platform.python_version(), platform.system()))
    results = {}
    with tempfile.TemporaryDirectory(prefix="role-runs-") as name:
        directory = Path(name)
        shared = None  # drift reports change nothing, so they share one emulator
        try:
            for number, (kind_, size) in enumerate(cases):
                case = "%s-%d" % (kind_, size)
                if kind_ == "drift":
                    if shared is None:
                        shared = Tenant(directory / "drift", mailboxes, options.latency_ms)
                    tenant = shared
                else:
                    tenant = Tenant(directory / ("%02d-%s" % (number, case)), mailboxes, options.latency_ms,
                                    {"exchange_cmdlet_budget": PACED_BUDGET} if kind_ == "paced" else None)
                try:
                    if kind_ == "drift":
                        result = run_case(tenant, case, "m365ops.smtp_auth.drift_report", ("--check", "--diff"),
                                          size, apply=False)
                    elif kind_ == "apply":
                        result = run_case(tenant, case, "m365ops.smtp_auth.enable", (), size, apply=True)
                    elif kind_ == "paced":
                        result = run_case(tenant, case, "m365ops.smtp_auth.enable", (), size, apply=True,
                                          timeout=PACED_TIMEOUT)
                    else:
                        playbook = tenant.directory / "naive.yml"
                        playbook.write_text(yaml.safe_dump(NAIVE_PLAYBOOK, sort_keys=False))
                        result = run_case(tenant, case, str(playbook), (), size, apply=True)
                finally:
                    if tenant is not shared:
                        tenant.close()
                results[case] = result
                show(result)
        finally:
            if shared is not None:
                shared.close()

    summary(results)
    print("\n%-48s %-26s %s" % ("target", "measured", "result"))
    for row in targets(results):
        print("%-48s %-26s %s" % row)
    return 0 if all(result["exit_code"] == 0 for result in results.values()) else 1


if __name__ == "__main__":
    os.environ.pop("REQUESTS_CA_BUNDLE", None)
    sys.exit(main())
