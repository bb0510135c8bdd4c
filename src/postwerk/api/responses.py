"""JSON responses, serialised once with orjson (UTC timestamps end in `Z`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response

_OPTIONS = orjson.OPT_UTC_Z


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(data, option=_OPTIONS),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


def json_text_response(text: str, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A body that is JSON already (written by the database, see `store.json_documents`)."""
    return Response(text.encode(), status_code=status, headers=headers, media_type="application/json")


def empty_response(status: int) -> Response:
    return Response(status_code=status)
