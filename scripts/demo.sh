#!/usr/bin/env bash
# make demo: the collection end to end on the local Microsoft 365 emulator's sample tenant "contoso".
#
#   1. drift report (check mode): what blocks SMTP AUTH for each relay mailbox (basic, and the OAuth one: the
#      relay app's consent, Exchange registration and FullAccess), the fix, each basic mailbox's change to OAuth
#      before Basic auth for SMTP AUTH is turned off, and who signs in with SMTP AUTH
#   2. enable: the role applies the fixes
#   3. drift report again: clean
#   4. a real SMTP AUTH login (STARTTLS, the emulator's CA) and a message for each fixed mailbox: a password
#      (AUTH LOGIN) for the basic ones, the relay app's token (XOAUTH2) for the OAuth one; and the scanner that
#      can do neither relaying without AUTH through the inbound connector the role made (MX endpoint, port 25)
#   5. the troubleshoot playbook on mailboxes the inventory leaves alone: what blocks each, and the fix
#
# Runs from the repository root with the collection on ANSIBLE_COLLECTIONS_PATH (the Makefile sets it).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
export ANSIBLE_COLLECTIONS_PATH="${ANSIBLE_COLLECTIONS_PATH:-$ROOT/.build/collections}"
export ANSIBLE_DISPLAY_SKIPPED_HOSTS=false
export ANSIBLE_DISPLAY_OK_HOSTS=true
export ANSIBLE_NOCOLOR="${ANSIBLE_NOCOLOR:-}"
INVENTORY="$ROOT/playbooks/inventory/emulator"
PYTHON="${PYTHON:-python3}"

STATE_DIR="$(mktemp -d "${TMPDIR:-/tmp}/m365ops-demo.XXXXXX")"
EMULATOR_PID=""
cleanup() {
    if [ -n "$EMULATOR_PID" ] && kill -0 "$EMULATOR_PID" 2>/dev/null; then
        kill "$EMULATOR_PID" 2>/dev/null || true
        wait "$EMULATOR_PID" 2>/dev/null || true
    fi
    rm -rf "$STATE_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bold() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

# The setup installs the emulator as the m365-emulator command; straight from a checkout it runs as a module.
if command -v m365-emulator >/dev/null 2>&1; then
    EMULATOR=(m365-emulator)
else
    EMULATOR=(env PYTHONPATH="$ROOT/emulator${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -m m365_emulator)
fi

bold "Starting the Microsoft 365 emulator (sample tenants contoso and fabrikam)"
CONNECTION_FILE="$STATE_DIR/connection.json"
"${EMULATOR[@]}" --https-port 0 --smtp-port 0 --mx-port 0 --state-dir "$STATE_DIR/emulator" \
    --connection-file "$CONNECTION_FILE" >"$STATE_DIR/emulator.log" 2>&1 &
EMULATOR_PID=$!
# Ready once the connection file exists (it is written after both listeners are up); bounded to ~30 s.
for _ in $(seq 1 60); do
    [ -s "$CONNECTION_FILE" ] && break
    if ! kill -0 "$EMULATOR_PID" 2>/dev/null; then
        echo "the emulator exited early:" >&2; cat "$STATE_DIR/emulator.log" >&2; exit 1
    fi
    sleep 0.5
done
if [ ! -s "$CONNECTION_FILE" ]; then
    echo "the emulator did not become ready within 30 seconds:" >&2; cat "$STATE_DIR/emulator.log" >&2; exit 1
fi
export M365_EMULATOR_CONNECTION_FILE="$CONNECTION_FILE"
"$PYTHON" -c 'import json, sys; i = json.load(open(sys.argv[1])); print("  HTTPS", i["base_url"], " SMTP", "%s:%s" % (i["smtp_host"], i["smtp_port"]))' "$CONNECTION_FILE"

# What the demo logs in with: the basic relay mailboxes of playbooks/inventory/emulator/hosts.yml (fixed by the
# role) and two that the role does not manage (an authentication policy and Conditional Access block them).
smtp_logins() {
    "$PYTHON" - "$CONNECTION_FILE" "$@" <<'PY'
import json
import smtplib
import ssl
import sys
from email.message import EmailMessage

PASSWORDS = {
    "scanner@contoso.com": "Scanner-Pass-2026!",
    "printer@contoso.com": "Printer-Pass-2026!",
    "erp@contoso.com": "Erp-Pass-2026!",
    "alerts@contoso.com": "Alerts-Pass-2026!",
    "kiosk@contoso.com": "Kiosk-Pass-2026!",
}
info = json.load(open(sys.argv[1]))
send = sys.argv[2] == "send"
context = ssl.create_default_context(cafile=info["ca_path"])
failures = 0
for upn in sys.argv[3:]:
    try:
        with smtplib.SMTP(info["smtp_host"], info["smtp_port"], timeout=15) as smtp:
            smtp.starttls(context=context)
            smtp.ehlo()
            smtp.user, smtp.password = upn, PASSWORDS[upn]
            code, reply = smtp.auth("LOGIN", smtp.auth_login)
            line = "  %-22s AUTH LOGIN %d %s" % (upn, code, reply.decode())
            if send:
                message = EmailMessage()
                message["From"] = upn
                message["To"] = "admin@contoso.com"
                message["Subject"] = "SMTP AUTH test from %s" % upn
                message.set_content("Sent by make demo through SMTP AUTH.")
                smtp.send_message(message)
                line += "; message accepted"
            print(line)
    except smtplib.SMTPResponseException as error:
        failures += 1
        print("  %-22s REFUSED %d %s" % (upn, error.smtp_code, error.smtp_error.decode().split(" [")[0]))
sys.exit(1 if send and failures else 0)
PY
}

# The OAuth relay mailbox logs in as its device would: a token of the relay app (its own client id and secret,
# from the emulator's connection file through the inventory), then AUTH XOAUTH2. The collection's submission
# test does both; "send" also submits a message and fails the demo when that does not work.
OAUTH_MAILBOX=notify@contoso.com
oauth_login() {
    local mode=$1
    local arguments='{"username": "'"$OAUTH_MAILBOX"'", "auth_mode": "oauth",
        "host": "{{ emulator_info.smtp_host }}", "port": "{{ emulator_info.smtp_port }}",
        "ca_path": "{{ emulator_info.ca_path }}", "tenant_id": "{{ emulator_tenant.id }}",
        "client_id": "{{ emulator_relay_app.client_id }}", "client_secret": "{{ emulator_relay_app.secret }}",
        "authority_url": "{{ emulator_info.authority_url }}", "exchange_url": "{{ emulator_info.exchange_url }}"'
    if [ "$mode" = send ]; then
        arguments+=', "recipient": "admin@contoso.com", "subject": "SMTP AUTH (XOAUTH2) test from '"$OAUTH_MAILBOX"'"'
    fi
    # One line per host with -o: "contoso | SUCCESS => {the module's result}".
    if ! ansible -i "$INVENTORY" contoso -o -m m365ops.smtp_auth.smtp_submission_test -a "$arguments}" \
            >"$STATE_DIR/oauth-$mode.json" 2>"$STATE_DIR/oauth-$mode.log"; then
        echo "the XOAUTH2 submission test could not run:" >&2
        cat "$STATE_DIR/oauth-$mode.json" "$STATE_DIR/oauth-$mode.log" >&2; exit 1
    fi
    "$PYTHON" - "$STATE_DIR/oauth-$mode.json" "$mode" "$OAUTH_MAILBOX" <<'PY'
import json
import sys

path, mode, upn = sys.argv[1:]
line = next(line for line in open(path) if line.startswith("contoso | "))
result = json.loads(line.split(" => ", 1)[1])
# The reply to AUTH itself, from the transcript (the last reply is the one to the message when one was sent).
transcript = result["transcript"]
auth = [reply for sent, reply in zip(transcript, transcript[1:]) if sent.startswith("C: AUTH XOAUTH2")]
auth_reply = auth[0][3:].split(" [")[0] if auth else (result["reply_line"] or result["error"])
if result["authenticated"]:
    line = "  %-22s AUTH XOAUTH2 %s (token of the relay app)" % (upn, auth_reply)
    if result["message_sent"]:
        line += "; message accepted"
    elif mode == "send":
        line += "; message REFUSED %s" % result["reply_line"]
else:
    line = "  %-22s REFUSED %s" % (upn, auth_reply)
print(line)
sys.exit(1 if mode == "send" and not result["ok"] else 0)
PY
}

# The scanner of the inventory that can do neither OAuth nor a password: it sends without AUTH to the tenant's
# MX endpoint on port 25, from its address (127.0.0.2 stands in for the office's public address), to a recipient
# outside the tenant, which only a connector that lists that address lets through.
CONNECTOR_DEVICE=scan-2f@contoso.com
connector_relay() {
    "$PYTHON" - "$CONNECTION_FILE" "$1" "$CONNECTOR_DEVICE" <<'PY'
import json
import smtplib
import ssl
import sys
from email.message import EmailMessage

info, mode, device = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
message = EmailMessage()
message["From"], message["To"], message["Subject"] = device, "archive@fabrikam.example", "Scan to email"
message.set_content("Relayed by make demo through the inbound connector, without SMTP AUTH.")
try:
    with smtplib.SMTP(info["smtp_host"], info["mx_port"], timeout=15, source_address=("127.0.0.2", 0)) as smtp:
        smtp.starttls(context=ssl.create_default_context(cafile=info["ca_path"]))
        smtp.send_message(message)
    print("  %-22s no AUTH, from 127.0.0.2 to port 25 of the MX endpoint: message relayed" % device)
except smtplib.SMTPRecipientsRefused as error:
    code, reply = next(iter(error.recipients.values()))
    print("  %-22s no AUTH, from 127.0.0.2 to port 25 of the MX endpoint: REFUSED %d %s" % (device, code,
                                                                                         reply.decode()))
    sys.exit(1 if mode == "send" else 0)
PY
}

# One "### " section of a Markdown drift report (awk reads the whole file: nothing is cut off mid-pipe).
report_section() {
    awk -v heading="### $2" '/^### /{show = (index($0, heading) == 1)} show' "$1"
}

bold "Before: the relay mailboxes try to log in"
smtp_logins try scanner@contoso.com printer@contoso.com erp@contoso.com
oauth_login try
connector_relay try

bold "1. Drift report for contoso (check mode, changes nothing)"
ansible-playbook -i "$INVENTORY" m365ops.smtp_auth.drift_report --limit contoso \
    -e relay_accounts_report_dir="$STATE_DIR/reports-before" | sed -n '/PLAY RECAP/,$p; /"msg": "contoso:/p'
REPORT="$STATE_DIR/reports-before/contoso.md"
echo
sed '/^### /,$d' "$REPORT"
echo "  Basic auth for SMTP AUTH is turned off by default at the end of December 2026: the report lists each basic"
echo "  mailbox with the one-line inventory change that moves it to OAuth, as $OAUTH_MAILBOX already is."
echo
report_section "$REPORT" "Basic auth for SMTP AUTH ends"
echo "  The scanner that can do neither gets no SMTP AUTH change at all, only the tenant's inbound connector and"
echo "  the settings to type into it:"
echo
report_section "$REPORT" "Devices that relay through the inbound connector"
echo "  Who really signs in with SMTP AUTH (Entra sign-in logs), next to what the inventory declares:"
echo
report_section "$REPORT" "Who uses SMTP AUTH"

bold "2. Apply: ansible-playbook m365ops.smtp_auth.enable"
ansible-playbook -i "$INVENTORY" m365ops.smtp_auth.enable --limit contoso \
    | grep -E '^(TASK|changed|fatal)|"msg": "contoso:|PLAY RECAP|^contoso '

bold "3. Drift report again: clean"
ansible-playbook -i "$INVENTORY" m365ops.smtp_auth.drift_report --limit contoso \
    -e relay_accounts_report_dir="$STATE_DIR/reports-after" | grep -E '"msg": "contoso:|^contoso '

bold "4. After: SMTP AUTH login and a message for each fixed relay mailbox (password or the relay app's token)"
smtp_logins send scanner@contoso.com printer@contoso.com erp@contoso.com
oauth_login send
connector_relay send
echo "  $OAUTH_MAILBOX needed no security-defaults or MFA change. After December 2026 the AUTH LOGIN lines get"
echo "  550 5.7.30 unless an admin turns Basic auth back on: step 1's report names each one's change to OAuth."

bold "5. Troubleshoot three mailboxes the inventory does not manage: m365ops.smtp_auth.troubleshoot"
# Sample passwords of the emulator's tenant; a real run reads them from a vault file.
ansible-playbook -i "$INVENTORY" m365ops.smtp_auth.troubleshoot --limit contoso \
    -e '{"troubleshoot_mailboxes": ["alerts@contoso.com", "kiosk@contoso.com", "backup@contoso.com"],
         "troubleshoot_passwords": {"alerts@contoso.com": "Alerts-Pass-2026!", "kiosk@contoso.com": "Kiosk-Pass-2026!",
                                    "backup@contoso.com": "Backup-Pass-2026!"}}' \
    | sed -n 's/^ *"msg": "\(.*\)"$/\1/p' | sed 's/\\"/"/g; s/^/  /; G'
echo "  Declaring alerts or kiosk would not be enough: an authentication policy and a Conditional Access policy"
echo "  are left to their owners; backup@contoso.com needs a mailbox licence before the role will touch it."
