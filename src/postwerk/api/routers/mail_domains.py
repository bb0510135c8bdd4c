"""Postwerk's own extension (no mittwald operation): a project's hosted domains with the DNS records their
owner publishes (MX, SPF, DKIM, DMARC, SRV, autoconfig; see `postwerk.domain.dns_records`).

Marked `x-postwerk-extension: true` and tagged "Postwerk extensions" in Postwerk's OpenAPI document. Same
token rules and errors as the project routes: 401 without a valid token, 403 for a project the token may not
see (or that does not exist). A domain from before DKIM gets its key pair on the first read (see
`postwerk.domain.dkim`). Only public keys are ever returned.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.responses import Response

from postwerk.api.deps import CallerDep, ContextDep, ProjectId
from postwerk.api.responses import json_response
from postwerk.api.routing import add_route
from postwerk.service import dkim as service

router = APIRouter()
TAG = "Postwerk extensions"


class DnsRecordOut(BaseModel):
    purpose: Literal["mx", "spf", "dkim", "dmarc", "srv", "autoconfig"]
    type: Literal["MX", "TXT", "SRV", "CNAME"]
    name: str = Field(description="Fully qualified owner name, A-labels, without the trailing dot.")
    value: str = Field(description="The text of a TXT record; the target host of MX, SRV and CNAME.")
    ttl: int
    priority: int | None = Field(default=None, description="MX and SRV only.")
    weight: int | None = Field(default=None, description="SRV only.")
    port: int | None = Field(default=None, description="SRV only.")
    note: str | None = None
    zone: str = Field(description="The record as a zone-file line (BIND syntax).")


class DkimKeyOut(BaseModel):
    selector: str
    algorithm: Literal["rsa"]
    status: Literal["active", "next", "retired"] = Field(
        description="active: signs; next: prepared by a rotation, publish it now; retired: signs no more,"
        " listed until the provider removes it."
    )
    createdAt: datetime


class MailDomainOut(BaseModel):
    domain: str = Field(description="As assigned, Unicode form.")
    asciiDomain: str = Field(description="A-label form: what the records name.")
    projectId: str
    dkimKeys: list[DkimKeyOut]
    records: list[DnsRecordOut]


def list_mail_domains(context: ContextDep, caller: CallerDep, projectId: ProjectId) -> Response:
    found = service.project_domain_records(context, caller, projectId)
    return json_response([domain.as_dict() for domain in found])


add_route(
    router,
    "GET",
    "/v2/projects/{projectId}/mail-domains",
    list_mail_domains,
    operation_id="postwerk-list-mail-domains",
    status=200,
    model=list[MailDomainOut],
    tags=[TAG],
    summary="List a Project's mail domains with the DNS records to publish (Postwerk extension).",
    extension=True,
)
