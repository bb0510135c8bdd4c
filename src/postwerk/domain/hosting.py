"""Which project may use which domain."""

from __future__ import annotations

from postwerk.domain.addresses import DomainName
from postwerk.domain.errors import ValidationFailed


def check_domain_assigned(
    domain: DomainName, owner_project_id: str | None, project_id: str, path: str = ".address"
) -> None:
    """A project may only hold addresses in domains the provider assigned to it (`postwerk domain add`).

    Without this rule one customer could claim `@gmail.com` and capture other customers' mail to it.
    """
    if owner_project_id != project_id:
        raise ValidationFailed.at(
            path,
            f"the domain {domain.unicode!r} is not assigned to this project; the provider assigns domains "
            f"with `postwerk domain add {domain.unicode} --project <id>`",
            "domain",
            domain=domain.unicode,
        )
