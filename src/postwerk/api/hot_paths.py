"""The two hottest reads, answered before FastAPI's routing when the request is plain.

`GET /v2/mail-addresses/{id}` and `GET /v2/projects/{id}/mail-addresses` are what clients call most (a
panel lists a project's addresses, then opens one). FastAPI's per-request work (routing through some 70
routes, resolving dependencies, validating each query parameter) costs more than the database does for
them (bench/RESULTS.md). So a request to either path whose every part this module understands (a canonical
UUID, known query parameters with plain values) is answered here, by the same service calls and the same
wire documents as the FastAPI handlers in `routers.mail_addresses`.

Only successes are answered here. Anything else (a parameter this module does not know, a value it would
have to judge, any error the service or the database raises) goes to the FastAPI app untouched, which
answers it as it answers every request, so error bodies and validation stay in one place.
tests/api/test_hot_paths.py checks that both ways give the same answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any, get_args

import anyio.to_thread
from starlette.datastructures import Headers, QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from postwerk.api.deps import MAX_LIMIT, MAX_SKIP, token_from_headers
from postwerk.api.responses import json_text_response
from postwerk.api.routers.mail_addresses import SortField, list_response
from postwerk.service import Context
from postwerk.service import mail_addresses as service
from postwerk.service.access import Caller
from postwerk.store.repository import Page

_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_ONE_ADDRESS = re.compile(f"/v2/mail-addresses/({_UUID})")
_PROJECT_ADDRESSES = re.compile("/v2/projects/([0-9A-Za-z-]{1,36})/mail-addresses")
# Query name -> the keyword of `list_response`.
_FLAGS = {
    "forwardAddress": "forward_address",
    "catchAll": "catch_all",
    "autoResponder": "auto_responder",
    "mailArchive": "mail_archive",
}
_BOOLEANS = {"true": True, "false": False}
_NUMBER = re.compile("[0-9]{1,10}")
_SORT_FIELDS = frozenset(get_args(SortField))


class _NotPlain(Exception):
    """The request needs FastAPI's full treatment."""


class HotReads:
    def __init__(self, app: ASGIApp, context: Context) -> None:
        self.app = app
        # Every failure here is answered by FastAPI, which reads again: the reads may skip the ping.
        self.context = replace(context, db=context.db.for_retried_reads())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            answer = self._plan(scope)
            if answer is not None:
                try:
                    if self.context.db.reads_inline:
                        response = answer()
                    else:
                        response = await anyio.to_thread.run_sync(answer)
                except Exception:
                    pass
                else:
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    def _plan(self, scope: Scope) -> Callable[[], Any] | None:
        """The call that answers this request, if it is one of ours and plain."""
        path: str = scope["path"]
        one = _ONE_ADDRESS.fullmatch(path)
        if one is not None:
            if scope["query_string"]:
                return None
            caller = Caller(token=token_from_headers(Headers(scope=scope)))
            address_id = one.group(1)
            return lambda: json_text_response(service.get(self.context, caller, address_id))
        listed = _PROJECT_ADDRESSES.fullmatch(path)
        if listed is None:
            return None
        try:
            query = _list_query(QueryParams(scope["query_string"]))
        except _NotPlain:
            return None
        caller = Caller(token=token_from_headers(Headers(scope=scope)))
        project = listed.group(1)
        return lambda: list_response(self.context, caller, project, **query)


def _list_query(params: QueryParams) -> dict[str, Any]:
    """The list's query parameters, as the FastAPI handler would receive them, if all are plain."""
    values: dict[str, Any] = {
        "search": None,
        "forward_address": None,
        "catch_all": None,
        "auto_responder": None,
        "mail_archive": None,
        "sort": None,
        "order": None,
    }
    limit, skip, page = 10000, None, None
    for name, value in params.multi_items():
        if name in ("limit", "skip", "page"):
            number = _number(value, MAX_LIMIT if name == "limit" else MAX_SKIP)
            if name == "limit":
                limit = number
            elif name == "skip":
                skip = number
            else:
                page = number
        elif name in _FLAGS:
            flag = _BOOLEANS.get(value)
            if flag is None:
                raise _NotPlain
            values[_FLAGS[name]] = flag
        elif name == "search" and len(value) <= 255:
            values["search"] = value
        elif name == "sort" and value in _SORT_FIELDS:
            values["sort"] = [*(values["sort"] or []), value]
        elif name == "order" and value in ("asc", "desc"):
            values["order"] = [*(values["order"] or []), value]
        else:
            raise _NotPlain
    values["page"] = Page(limit=limit, skip=skip if skip is not None else (page or 0) * limit)
    return values


def _number(text: str, maximum: int) -> int:
    if _NUMBER.fullmatch(text) is None or int(text) > maximum:
        raise _NotPlain
    return int(text)
