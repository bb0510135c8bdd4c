"""The postmaster and SRS-transport queries of the rendered Postfix configuration, run on a seeded database
(SQLite and PostgreSQL) the way Postfix runs them (see test_lookup_queries)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.mail.test_lookup_queries import (
    Seeded,
    postfix_key,
    postfix_sql,
    rendered_queries,
    run,
)
from tests.mail.test_lookup_queries import seeded as _seeded

HOSTNAME = "mx.postwerk.test"  # what rendered_queries renders for


@pytest.fixture
def seeded(engine: Engine) -> Seeded:
    result: Seeded = _seeded.__wrapped__(engine)  # type: ignore[attr-defined]
    return result


def test_postmaster_of_hosted_domains_and_the_host_name(
    engine: Engine, seeded: Seeded, tmp_path: Path
) -> None:
    query = rendered_queries(engine, tmp_path)["postmaster"]
    idn_ascii = seeded.idn_domain.encode("idna").decode()
    for written in (
        f"postmaster@{seeded.domain}",
        f"PostMaster@{seeded.domain.upper()}",
        f"postmaster@{seeded.idn_domain}",
        f"postmaster@{idn_ascii}",
        f"postmaster@{HOSTNAME}",
    ):
        assert run(engine, postfix_sql(query, postfix_key(written))) == [(f"postmaster@{HOSTNAME}",)], written
    for other in (
        f"hostmaster@{seeded.domain}",
        "postmaster@elsewhere.example",
        f"@{seeded.domain}",
        "postmaster",
    ):
        assert run(engine, postfix_sql(query, postfix_key(other))) == [], other


def test_srs_pass_only_for_senders_outside_the_hosted_domains(
    engine: Engine, seeded: Seeded, tmp_path: Path
) -> None:
    query = rendered_queries(engine, tmp_path)["srs_transport"]
    for outside in ("alice@outside.example", "Bob@Пример.рф".casefold(), "x@sub." + seeded.domain):
        ((transport,),) = run(engine, postfix_sql(query, postfix_key(outside)))
        assert str(transport).startswith("postwerk-srs:["), outside
    idn_ascii = seeded.idn_domain.encode("idna").decode()
    for hosted in (
        f"someone@{seeded.domain}",
        f"someone@{seeded.idn_domain}",
        f"someone@{idn_ascii}",
        f"SRS0=abcd=ab=outside.example=alice@{HOSTNAME}",
        "<>",
        "",
    ):
        assert run(engine, postfix_sql(query, postfix_key(hosted))) == [], hosted
