# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


class ModuleDocFragment:
    # How every module reaches one Microsoft 365 tenant.
    DOCUMENTATION = r"""
options:
  tenant_id:
    description:
      - The tenant, as its GUID or one of its domains (for example V(contoso.onmicrosoft.com)).
      - If not set, the value of the E(M365_TENANT_ID) environment variable is used. One of the two is required.
    type: str
  client_id:
    description:
      - Application (client) id of the Entra app registration the collection signs in as (app-only), a GUID.
      - If not set, the value of the E(M365_CLIENT_ID) environment variable is used. One of the two is required.
    type: str
  client_secret:
    description:
      - Client secret of the app.
      - If not set, the value of the E(M365_CLIENT_SECRET) environment variable is used.
      - Exactly one of O(client_secret) and O(client_certificate_path) must be given.
    type: str
  client_certificate_path:
    description:
      - Certificate of the app, on the controller, used instead of a secret.
      - Either a PEM file holding the private key and the certificate, or a PFX (PKCS#12) file.
      - If not set, the value of the E(M365_CLIENT_CERTIFICATE_PATH) environment variable is used.
      - A path that does not exist, or a directory, is refused before any request.
    type: path
  client_certificate_password:
    description:
      - Password of the PFX file, or of an encrypted private key in the PEM file.
      - If not set, the value of the E(M365_CLIENT_CERTIFICATE_PASSWORD) environment variable is used.
    type: str
  cloud:
    description:
      - The Microsoft 365 cloud the tenant lives in. It selects the sign-in, Graph and Exchange Online hosts
        and the token scopes.
      - V(usgov_high) is GCC High, V(usgov_dod) is DoD, V(china) is operated by 21Vianet.
      - If not set, the value of the E(M365_CLOUD) environment variable is used.
    type: str
    choices: [china, global, usgov_dod, usgov_high]
    default: global
  authority_url:
    description:
      - Base URL of the identity platform, overriding the cloud's (for example V(https://login.microsoftonline.com)).
        The tenant is appended.
      - Token scopes still come from O(cloud).
      - If not set, the value of the E(M365_AUTHORITY_URL) environment variable is used.
      - Must be an C(https://) URL, as must O(graph_url) and O(exchange_url).
    type: str
  graph_url:
    description:
      - Base URL of Microsoft Graph, overriding the cloud's (for example V(https://graph.microsoft.com)). The API
        version and paths are appended.
      - If not set, the value of the E(M365_GRAPH_URL) environment variable is used.
    type: str
  exchange_url:
    description:
      - Base URL of Exchange Online, overriding the cloud's (for example V(https://outlook.office365.com)).
        C(/adminapi/beta/<tenant>/InvokeCommand) is appended.
      - If not set, the value of the E(M365_EXCHANGE_URL) environment variable is used.
    type: str
  ca_path:
    description:
      - PEM bundle of the certificate authorities to trust for every HTTPS connection, for example behind a
        TLS-inspecting proxy.
      - Environment variables such as E(REQUESTS_CA_BUNDLE) are deliberately not used.
      - If not set, the value of the E(M365_CA_PATH) environment variable is used.
      - A path that does not exist is refused before any request.
    type: path
  validate_certs:
    description:
      - Whether to verify the TLS certificates of the services. Only turn this off for a throwaway lab.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for each HTTP response; greater than 0 and at most 3600.
    type: int
    default: 30
  max_retries:
    description:
      - How many times a throttled (HTTP 429) or unavailable (HTTP 503, 504) request is retried, waiting as long as
        the service's C(Retry-After) asks, or backing off exponentially.
      - Retries are returned in C(retries) and throttling raises a warning.
      - V(0) turns retries off; a negative value, or one above 20, is refused.
      - A refused connection (nothing listens at the address) is never retried.
    type: int
    default: 4
  max_retry_wait:
    description:
      - The longest C(Retry-After), in seconds, a request waits out before it is retried. A longer one fails the
        request at once, naming the request, the status and the wait asked for, instead of stalling the play.
      - Each wait is written to the module's log (syslog or journal) when it starts, and a run that waited warns
        with the total and the longest wait.
      - If not set, the value of the E(M365_MAX_RETRY_WAIT) environment variable is used.
    type: int
    default: 300
  concurrency:
    description:
      - How many requests a task keeps in flight at once per service - Exchange Online admin API C($batch)
        requests of up to 10 cmdlets each (or single cmdlets where the service does not answer C($batch)), and
        Microsoft Graph C($batch) requests of up to 20 operations each.
      - Both services throttle per app and tenant, so more than a handful mostly earns HTTP 429 replies (which are
        retried); raise it against a proxy or on a tenant with a raised throttling budget. From 1 (one at a time)
        to 16.
      - If not set, the value of the E(M365_CONCURRENCY) environment variable is used.
    type: int
    default: 4
  token_cache:
    description:
      - A file where the app's access tokens are kept between tasks, so that a play asks the identity platform for
        one token per service (Graph, Exchange Online) instead of one per task and service. Tokens are kept by MSAL
        per tenant and app, and renewed when they expire or are refused.
      - The file is created readable by its owner only (mode 0600) and replaced atomically; an existing file that
        others can read, or that belongs to another user, is refused. It holds live access tokens, so keep it out of
        shared and backed-up directories, for example under C(/run/user/<uid>) or a job's temporary directory.
      - Beside it, in C(<token_cache>.discovery) (same protection), MSAL keeps the authority's OpenID configuration
        for a day, so that a task does not fetch it again before its first token.
      - Not set, tokens live only as long as one task.
      - If not set, the value of the E(M365_TOKEN_CACHE) environment variable is used.
    type: path
requirements:
  - msal
  - requests
notes:
  - The app needs application permissions with admin consent. Each module lists the ones it uses; a missing one
    makes the module fail naming it.
  - Exchange Online settings need the Office 365 Exchange Online application permission C(Exchange.ManageAsApp)
    and the Entra role Exchange Administrator assigned to the app.
  - All modules belong to the action group C(m365ops.smtp_auth.m365), so the connection options can be set once with
    C(module_defaults).
"""
