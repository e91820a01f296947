# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible_collections.m365ops.smtp_auth.plugins.module_utils.errors import (
    AuthenticationError,
    ExchangeObjectNotFoundError,
    NotFoundError,
    PermissionDeniedError,
    plain_text,
    split_exchange_detail,
)


def test_token_reply_keeps_the_aadsts_code_and_first_sentence():
    reply = {
        "error": "invalid_client",
        "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: abc\r\nCorrelation ID: def",
        "error_codes": [7000215],
        "correlation_id": "def",
    }
    error = AuthenticationError.from_token_reply(reply, "contoso.onmicrosoft.com", "app-id")
    assert error.aadsts_code == "AADSTS7000215"
    assert "Invalid client secret provided." in error.message
    assert "Trace ID" not in error.message
    assert "contoso.onmicrosoft.com" in error.message and "app-id" in error.message
    assert error.request_id == "def"


def test_token_reply_with_trace_on_the_same_line():
    reply = {"error": "invalid_request", "error_description": "AADSTS90002: Tenant 'x' not found. Trace ID: 1 Correlation ID: 2"}
    error = AuthenticationError.from_token_reply(reply, "x", "app")
    assert error.description == "AADSTS90002: Tenant 'x' not found."


def test_token_reply_falls_back_to_error_codes():
    error = AuthenticationError.from_token_reply({"error": "unauthorized_client", "error_codes": [700016]}, "t", "a")
    assert error.aadsts_code == "AADSTS700016"


def test_exchange_detail_is_split_into_id_type_and_text():
    error_id, exception_type, text = split_exchange_detail(
        "Ex6F9304|Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException|The operation couldn't "
        "be performed because object 'x' couldn't be found on 'srv'.")
    assert error_id == "Ex6F9304"
    assert exception_type.endswith("ManagementObjectNotFoundException")
    assert text.startswith("The operation couldn't be performed")


def test_exchange_detail_text_with_pipes_but_no_type_stays_whole():
    assert split_exchange_detail("a | b | c") == (None, None, "a | b | c")


def test_html_error_page_becomes_one_line():
    page = "<html><head><title>403 - Forbidden</title><style>p{}</style></head><body><h1>Access is denied.</h1></body></html>"
    assert plain_text(page) == "403 - Forbidden Access is denied."


def test_to_dict_leaves_out_empty_fields_and_names_the_permission():
    error = PermissionDeniedError("denied", status=403, permission="Policy.Read.All")
    assert error.to_dict() == {"type": "PermissionDeniedError", "message": "denied", "status": 403,
                               "permission": "Policy.Read.All"}


def test_exchange_not_found_is_also_a_not_found_error():
    error = ExchangeObjectNotFoundError("gone", identity="x@contoso.com", cmdlet="Get-CASMailbox", status=404)
    assert isinstance(error, NotFoundError)
    assert error.to_dict()["identity"] == "x@contoso.com"
    assert error.to_dict()["cmdlet"] == "Get-CASMailbox"
