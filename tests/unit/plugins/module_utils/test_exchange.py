# Copyright (c) 2026 m365ops.smtp_auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.m365ops.smtp_auth.plugins.module_utils.errors import (
    ExchangeCommandError,
    ExchangeObjectNotFoundError,
    PermissionDeniedError,
    TruncatedResultError,
)

PATH = "/adminapi/beta/contoso.onmicrosoft.com/InvokeCommand"


def reply(value, warnings=None, next_link=None):
    body = {"@odata.context": "x/$metadata#Collection(Exchange.GenericHashTable)",
            "adminapi.warnings@odata.type": "#Collection(String)", "@adminapi.warnings": warnings or [],
            "value": value}
    if next_link:
        body["@odata.nextLink"] = next_link
    return 200, body, None


def exchange_error(status, detail):
    return status, {"error": {"code": "BadRequest", "message": "Error executing cmdlet",
                              "details": [{"code": "Failure", "message": detail}]}}, None


def test_invoke_sends_the_headers_real_clients_send(serve, clients):
    server = serve(lambda *args: reply([]))
    _graph, exchange, _events = clients(server.url)
    exchange.invoke("Get-CASMailbox", {"Identity": "a"}, unlimited=True)
    request = server.requests[0]
    assert request["path"] == PATH
    headers = {name.lower(): value for name, value in request["headers"].items()}
    assert headers["x-anchormailbox"] == "APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@contoso.onmicrosoft.com"
    assert headers["prefer"] == "odata.maxpagesize=1000"
    assert headers["x-cmdletname"] == "Get-CASMailbox"
    assert headers["x-responseformat"] == "json"
    assert headers["client-request-id"]
    assert headers["authorization"] == "Bearer token-for-https://outlook.office365.com/.default"
    assert request["body"] == {"CmdletInput": {"CmdletName": "Get-CASMailbox",
                                               "Parameters": {"Identity": "a", "ResultSize": "Unlimited"}}}


def test_annotations_are_stripped(serve, clients):
    server = serve(lambda *args: reply([{"Name": "a", "EmailAddresses@odata.type": "#Collection(String)",
                                         "EmailAddresses": ["SMTP:a@contoso.com"]}]))
    _graph, exchange, _events = clients(server.url)
    assert exchange.invoke("Get-CASMailbox") == [{"Name": "a", "EmailAddresses": ["SMTP:a@contoso.com"]}]


def test_next_link_is_followed_with_the_same_body(serve, clients):
    def answer(method, path, body, headers):
        if "page=2" in path:
            return reply([{"Name": "b"}])
        return reply([{"Name": "a"}], next_link=server.url + PATH + "?page=2")

    server = serve(answer)
    _graph, exchange, _events = clients(server.url)
    assert [record["Name"] for record in exchange.invoke("Get-CASMailbox", unlimited=True)] == ["a", "b"]
    assert server.requests[1]["path"].endswith("?page=2")
    assert server.requests[0]["body"] == server.requests[1]["body"]


def test_a_read_with_warnings_is_truncated_not_silently_short(serve, clients):
    server = serve(lambda *args: reply([{"Name": "a"}], warnings=["There are more results, use ResultSize"]))
    _graph, exchange, _events = clients(server.url)
    with pytest.raises(TruncatedResultError) as caught:
        exchange.invoke("Get-CASMailbox", unlimited=True)
    assert caught.value.warnings == ["There are more results, use ResultSize"]


def test_warnings_on_a_write_are_kept_not_raised(serve, clients):
    server = serve(lambda *args: reply([], warnings=["The command completed successfully but no settings were modified."]))
    _graph, exchange, _events = clients(server.url)
    exchange.invoke("Set-CASMailbox", {"Identity": "a", "SmtpClientAuthenticationDisabled": False})
    assert exchange.write_warnings == ["Set-CASMailbox: The command completed successfully but no settings were modified."]


def test_expired_page_is_truncated(serve, clients):
    def answer(method, path, body, headers):
        if "page=2" in path:
            return 400, {"error": {"code": "BadRequest", "message": "Expired or Invalid pagination request. Default Expiry time is 00:30:00"}}, None
        return reply([{"Name": "a"}], next_link=server.url + PATH + "?page=2")

    server = serve(answer)
    _graph, exchange, _events = clients(server.url)
    with pytest.raises(TruncatedResultError):
        exchange.invoke("Get-CASMailbox", unlimited=True)


def test_object_not_found_names_the_identity(serve, clients):
    server = serve(lambda *args: exchange_error(
        404, "Ex6F9304|Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException|The operation "
             "couldn't be performed because object 'ghost@contoso.com' couldn't be found on 'srv'."))
    _graph, exchange, _events = clients(server.url)
    with pytest.raises(ExchangeObjectNotFoundError) as caught:
        exchange.invoke("Get-CASMailbox", {"Identity": "ghost@contoso.com"})
    assert caught.value.identity == "ghost@contoso.com"
    assert caught.value.error_id == "Ex6F9304"
    assert "ghost@contoso.com" in str(caught.value)


def test_other_cmdlet_errors_carry_the_parsed_detail(serve, clients):
    server = serve(lambda *args: exchange_error(
        400, "Ex1A2B3C|System.Management.Automation.AmbiguousParameterSetException|Parameter set cannot be resolved."))
    _graph, exchange, _events = clients(server.url)
    with pytest.raises(ExchangeCommandError) as caught:
        exchange.invoke("Set-CASMailbox", {"Identity": "a", "Bogus": 1})
    assert caught.value.exception_type == "System.Management.Automation.AmbiguousParameterSetException"
    assert caught.value.text == "Parameter set cannot be resolved."
    assert "AmbiguousParameterSetException" in str(caught.value)
    assert not isinstance(caught.value, ExchangeObjectNotFoundError)


def test_forbidden_html_page_explains_the_exchange_permission(serve, clients):
    server = serve(lambda *args: (403, "<html><body><h1>403 - Forbidden: Access is denied.</h1></body></html>", None))
    _graph, exchange, _events = clients(server.url)
    with pytest.raises(PermissionDeniedError) as caught:
        exchange.invoke("Set-TransportConfig", {"SmtpClientAuthenticationDisabled": False})
    message = str(caught.value)
    assert "Exchange.ManageAsApp" in message and "Exchange Administrator" in message
    assert "Access is denied." in message and "<h1>" not in message


MORE_RESULTS = ("There are more results available than are currently displayed. To view them, increase the "
                "value for the ResultSize parameter.")


def paged(server, first_page_warnings, last_page_warnings=None):
    def answer(method, path, body, headers):
        if "page=2" in path:
            return reply([{"Name": "b"}], warnings=last_page_warnings)
        return reply([{"Name": "a"}], warnings=first_page_warnings, next_link=server.url + PATH + "?page=2")
    return answer


def test_the_more_results_sentence_is_normal_on_a_page_with_a_next_link(serve, clients):
    # What the service sends on every page of a tenant with more than 1,000 mailboxes.
    server = serve(lambda *args: None)
    server.answer = paged(server, [MORE_RESULTS])
    _graph, exchange, _events = clients(server.url)
    assert [record["Name"] for record in exchange.invoke("Get-CASMailbox", unlimited=True)] == ["a", "b"]


def test_the_more_results_sentence_on_the_last_page_means_truncated(serve, clients):
    server = serve(lambda *args: None)
    server.answer = paged(server, [MORE_RESULTS], [MORE_RESULTS])
    _graph, exchange, _events = clients(server.url)
    with pytest.raises(TruncatedResultError) as caught:
        exchange.invoke("Get-CASMailbox", unlimited=True)
    assert caught.value.warnings == [MORE_RESULTS]


def test_any_other_warning_on_a_page_with_a_next_link_means_truncated(serve, clients):
    server = serve(lambda *args: None)
    server.answer = paged(server, [MORE_RESULTS, "The recipient scope was restricted."])
    _graph, exchange, _events = clients(server.url)
    with pytest.raises(TruncatedResultError) as caught:
        exchange.invoke("Get-CASMailbox", unlimited=True)
    assert caught.value.warnings == ["The recipient scope was restricted."]


def test_the_captured_not_found_shape_is_not_found(serve, clients):
    detail = ("Ex6F9304|Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException|The operation "
              "couldn't be performed because object 'ghost@contoso.com' couldn't be found on 'srv'.")
    body = {"error": {"code": "NotFound", "message": "Error executing cmdlet",
                      "details": [{"code": "Client", "target": "", "message": detail}],
                      "innererror": {"message": detail, "type": "Microsoft.Exchange.Admin.OData.Core.ODataServiceException",
                                     "stacktrace": "", "internalexception": {
                                         "message": detail, "stacktrace": "",
                                         "type": "Microsoft.Exchange.Admin.OData.Core.DirectInvokeCmdletExecutionException"}},
                      "@adminapi.warnings": []}}
    server = serve(lambda *args: (404, body, None))
    _graph, exchange, _events = clients(server.url)
    with pytest.raises(ExchangeObjectNotFoundError) as caught:
        exchange.invoke("Get-CASMailbox", {"Identity": "ghost@contoso.com"})
    assert caught.value.identity == "ghost@contoso.com" and caught.value.status == 404


def test_a_404_not_found_without_a_parsable_detail_is_still_not_found(serve, clients):
    server = serve(lambda *args: (404, {"error": {"code": "NotFound", "message": "Error executing cmdlet"}}, None))
    _graph, exchange, _events = clients(server.url)
    with pytest.raises(ExchangeObjectNotFoundError):
        exchange.invoke("Get-User", {"Identity": "ghost@contoso.com"})


def test_a_refused_exchange_token_is_renewed_once_and_the_cmdlet_sent_again(serve, clients):
    def answer(method, path, body, headers):
        if headers["Authorization"].endswith("-renewed"):
            return reply([{"Identity": "a"}])
        return 401, "", None

    server = serve(answer)
    _graph, exchange, _events = clients(server.url)
    assert exchange.invoke("Get-CASMailbox", {"Identity": "a"}) == [{"Identity": "a"}]
    assert len(server.requests) == 2
    assert exchange.tokens.refused == [None, "token-for-https://outlook.office365.com/.default"]


# -- write pacing -----------------------------------------------------------------------------------------------

class Clock:
    def __init__(self):
        self.now = 100.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(round(seconds, 3))
        self.now += seconds


def test_writes_are_unpaced_until_one_is_throttled_then_wait_it_out_and_go_at_the_budget():
    from ansible_collections.m365ops.smtp_auth.plugins.module_utils.exchange import WritePacer

    clock = Clock()
    pacer = WritePacer(interval=0.5, clock=clock, sleep=clock.sleep)
    assert [pacer.wait() for _write in range(3)] == [0, 0, 0]
    pacer.throttled(10)
    assert pacer.wait() == 10
    assert [pacer.wait() for _write in range(3)] == [0.5, 0.5, 0.5]
    # A later, shorter Retry-After does not bring the next write forward; a longer one pushes it back.
    pacer.throttled(0.1)
    assert pacer.wait() == 0.5
    pacer.throttled(30)
    assert pacer.wait() == 30
    assert clock.slept == [10, 0.5, 0.5, 0.5, 0.5, 30]


def test_only_a_throttled_write_paces_the_writes(serve, clients):
    answers = {"Set-CASMailbox": [(429, {"error": {"code": "TooManyRequests", "message": "budget"}}, {"Retry-After": "0"})],
               "Get-CASMailbox": [(429, {"error": {"code": "TooManyRequests", "message": "busy"}}, {"Retry-After": "0"})]}

    def answer(method, path, body, headers):
        queued = answers[body["CmdletInput"]["CmdletName"]]
        return queued.pop(0) if queued else reply([])

    server = serve(answer)
    _graph, exchange, events = clients(server.url)
    exchange.invoke("Get-CASMailbox")
    assert len(events) == 1 and not exchange.pacer.paced
    exchange.invoke("Set-CASMailbox", {"Identity": "a", "SmtpClientAuthenticationDisabled": False})
    assert len(events) == 2 and exchange.pacer.paced
    # The throttled write was sent again once and landed: two Set-CASMailbox requests in all.
    assert [request["body"]["CmdletInput"]["CmdletName"] for request in server.requests].count("Set-CASMailbox") == 2


def test_the_time_estimate_of_many_writes():
    from ansible_collections.m365ops.smtp_auth.plugins.module_utils.exchange import write_time_estimate

    assert write_time_estimate(120) is None
    assert write_time_estimate(121) == 2
    assert write_time_estimate(1000) == 9


# -- many cmdlets: the admin API's $batch -----------------------------------------------------------------------

BATCH_PATH = "/adminapi/beta/contoso.onmicrosoft.com/$batch"


def mailbox_tenant(switches, item_status=None):
    """InvokeCommand over a dict of mailbox switches; ``item_status(cmdlet, identity, call)`` may answer instead."""
    calls = {"n": 0}

    def answer(method, path, body, headers):
        calls["n"] += 1
        cmdlet, parameters = body["CmdletInput"]["CmdletName"], body["CmdletInput"]["Parameters"]
        identity = parameters.get("Identity")
        scripted = item_status(cmdlet, identity, calls["n"]) if item_status else None
        if scripted:
            return scripted
        if identity not in switches:
            return exchange_error(404, "Ex6F9304|Microsoft.Exchange.Configuration.Tasks."
                                       "ManagementObjectNotFoundException|object '%s' not found" % identity)
        if cmdlet == "Set-CASMailbox":
            switches[identity] = parameters["SmtpClientAuthenticationDisabled"]
            return reply([])
        return reply([{"PrimarySmtpAddress": identity, "SmtpClientAuthenticationDisabled": switches[identity]}])

    return answer


def set_calls(identities):
    from ansible_collections.m365ops.smtp_auth.plugins.module_utils._cmdlets import CmdletCall

    return [CmdletCall("Set-CASMailbox", {"Identity": identity, "SmtpClientAuthenticationDisabled": False}, identity)
            for identity in identities]


def test_many_cmdlets_go_ten_to_a_batch_and_results_keep_their_order(serve, clients):
    from scripted_server import with_exchange_batch

    names = ["m%02d@contoso.com" % number for number in range(25)]
    switches = dict.fromkeys(names, True)
    server = serve(with_exchange_batch(mailbox_tenant(switches)))
    _graph, exchange, _events = clients(server.url)
    results = exchange.invoke_many(set_calls(names + ["ghost@contoso.com"]))
    assert [result.error for result in results[:25]] == [None] * 25
    assert isinstance(results[25].error, ExchangeObjectNotFoundError) and results[25].error.identity == "ghost@contoso.com"
    assert set(switches.values()) == {False}
    assert [request["path"] for request in server.requests] == [BATCH_PATH] * 3
    assert sorted(len(request["body"]["requests"]) for request in server.requests) == [6, 10, 10]
    first = server.requests[0]["body"]["requests"][0]
    assert first["method"] == "POST" and first["url"].endswith(PATH)
    assert first["headers"]["X-CmdletName"] == "Set-CASMailbox" and "Authorization" not in first["headers"]
    assert exchange.batches is True


def test_without_the_batch_endpoint_cmdlets_go_one_by_one_and_it_is_not_asked_again(serve, clients):
    from scripted_server import without_exchange_batch

    names = ["m%02d@contoso.com" % number for number in range(12)]
    switches = dict.fromkeys(names, True)
    server = serve(without_exchange_batch(mailbox_tenant(switches)))
    _graph, exchange, events = clients(server.url)
    assert all(result.error is None for result in exchange.invoke_many(set_calls(names)))
    assert exchange.invoke_many(set_calls(names[:3]))
    paths = [request["path"] for request in server.requests]
    assert paths[:2] == [BATCH_PATH] * 2 and paths[2:] == [PATH] * 15  # two chunks asked, nothing run twice
    assert set(switches.values()) == {False} and exchange.batches is False
    assert "one by one" in events.as_list()[0]["reason"]


def test_a_throttled_batch_item_alone_is_sent_again_and_paces_the_writes(serve, clients, sleeps):
    from scripted_server import with_exchange_batch

    def throttle_once(cmdlet, identity, call):
        if identity == "m03@contoso.com" and call == 4:
            return 429, {"error": {"code": "TooManyRequests", "message": "budget"}}, {"Retry-After": "2"}
        return None

    names = ["m%02d@contoso.com" % number for number in range(5)]
    switches = dict.fromkeys(names, True)
    server = serve(with_exchange_batch(mailbox_tenant(switches, throttle_once)))
    _graph, exchange, _events = clients(server.url)
    assert all(result.error is None for result in exchange.invoke_many(set_calls(names)))
    assert [[item["body"]["CmdletInput"]["Parameters"]["Identity"] for item in request["body"]["requests"]]
            for request in server.requests][1] == ["m03@contoso.com"]
    assert sleeps == [2.0] and exchange.pacer.paced


def test_an_item_refused_for_permission_fails_the_run_not_the_item(serve, clients):
    from scripted_server import with_exchange_batch

    def forbid(cmdlet, identity, call):
        return 403, "<html>403 - Forbidden</html>", None

    server = serve(with_exchange_batch(mailbox_tenant({"a@contoso.com": True, "b@contoso.com": True}, forbid)))
    _graph, exchange, _events = clients(server.url)
    with pytest.raises(PermissionDeniedError) as refused:
        exchange.invoke_many(set_calls(["a@contoso.com", "b@contoso.com"]))
    assert "Exchange.ManageAsApp" in str(refused.value)


def test_reads_of_a_few_dozen_mailboxes_go_by_batch_or_by_listing_without_one(serve, clients):
    from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _services as services
    from scripted_server import with_exchange_batch, without_exchange_batch

    names = ["m%02d@contoso.com" % number for number in range(30)]

    def listing_too(answer):
        def both(method, path, body, headers):
            if "/InvokeCommand" in path and "Identity" not in body["CmdletInput"]["Parameters"]:
                return reply([{"PrimarySmtpAddress": name, "SmtpClientAuthenticationDisabled": True} for name in names])
            return answer(method, path, body, headers)
        return both

    for wrap, expected in ((with_exchange_batch, [BATCH_PATH] * 4), (without_exchange_batch, [BATCH_PATH] * 4 + [PATH])):
        server = serve(wrap(listing_too(mailbox_tenant(dict.fromkeys(names, True)))))
        _graph, exchange, _events = clients(server.url)
        lookups = services.read_cas_mailboxes(exchange, names + ["ghost@contoso.com"])
        assert [lookup.found for lookup in lookups] == [True] * 30 + [False]
        assert [request["path"].split("?")[0] for request in server.requests] == expected


def test_a_tenant_wide_mailbox_listing_asks_only_for_what_is_read_from_it(serve, clients):
    from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _services as services

    server = serve(lambda *args: reply([{"PrimarySmtpAddress": "a@contoso.com", "SmtpClientAuthenticationDisabled": True,
                                         "OWAEnabled": True}]))
    _graph, exchange, _events = clients(server.url)
    [record] = services.list_cas_mailboxes(exchange)
    path = server.requests[0]["path"]
    assert path.startswith(PATH + "?$select=")
    asked = path.split("=", 1)[1].split(",")
    assert {"SmtpClientAuthenticationDisabled", "PrimarySmtpAddress", "EmailAddresses", "ExternalDirectoryObjectId"} <= set(asked)
    # A service that ignores $select sends more; what is read from it is the same.
    assert record["SmtpClientAuthenticationDisabled"] is True


def test_cmdlets_a_batch_left_unanswered_are_sent_again_and_an_error_without_a_status_is_an_error(serve, clients):
    names = ["m%d@contoso.com" % number for number in range(4)]
    switches = dict.fromkeys(names, True)
    tenant = mailbox_tenant(switches)
    calls = {"n": 0}

    def answer(method, path, body, headers):
        if not path.endswith("/$batch"):
            return tenant(method, path, body, headers)
        calls["n"] += 1
        assert "odata.continue-on-error" in headers["Prefer"]
        responses = []
        for item in body["requests"]:
            status, reply_body, _headers = tenant("POST", item["url"], item["body"], {})
            if item["body"]["CmdletInput"]["Parameters"]["Identity"] == "ghost@contoso.com":
                responses.append({"id": item["id"], "body": reply_body})  # no status: the body says it failed
            else:
                responses.append({"id": item["id"], "status": status, "body": reply_body})
            if calls["n"] == 1 and len(responses) == 2:
                break  # the batch stopped early: the rest were not run
        return 200, {"responses": responses}, None

    server = serve(answer)
    _graph, exchange, _events = clients(server.url)
    results = exchange.invoke_many(set_calls(names + ["ghost@contoso.com"]))
    assert [result.error for result in results[:4]] == [None] * 4
    assert isinstance(results[4].error, ExchangeObjectNotFoundError)
    assert set(switches.values()) == {False}
    assert len(server.requests) == 2


def test_a_listing_refused_for_its_select_is_read_again_with_every_property(serve, clients):
    from ansible_collections.m365ops.smtp_auth.plugins.module_utils import _services as services

    def answer(method, path, body, headers):
        if "$select=" in path:
            return exchange_error(400, "Ex0|Microsoft.Exchange.Admin.OData.Core.ODataServiceException|"
                                       "Could not find a property named 'Alias'.")
        return reply([{"PrimarySmtpAddress": "a@contoso.com", "SmtpClientAuthenticationDisabled": False}])

    server = serve(answer)
    _graph, exchange, events = clients(server.url)
    [record] = services.list_cas_mailboxes(exchange)
    assert record["SmtpClientAuthenticationDisabled"] is False
    assert [request["path"].split("?")[0] for request in server.requests] == [PATH, PATH]
    assert "$select refused" in events.as_list()[-1]["reason"]
