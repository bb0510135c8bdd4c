"""Starting the mail servers the wrong way is refused with the fix; the system-wide configuration renders."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, make_url

from postwerk.mailstack.layout import DOVECOT, POSTFIX
from postwerk.mailstack.tls import ensure_self_signed
from postwerk.store.scratch import scratch_postgres_role, through_socket
from tests.api.conftest import free_port
from tests.conftest import POSTGRES_URL, missing, postgres_reachable

TIMEOUT = 120


@pytest.fixture(autouse=True)
def _mail_servers_installed() -> None:
    if os.geteuid() != 0:
        missing("the mail servers need root")
    if not (POSTFIX.exists() and DOVECOT.exists()):
        missing("Postfix and Dovecot are not installed (`make mail-deps`)")


def postwerk(*args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("POSTWERK_")}
    return subprocess.run(
        [sys.executable, "-m", "postwerk.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def test_serve_refuses_a_data_folder_the_mail_users_cannot_enter(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    listeners = [f"127.0.0.1:{free_port()}" for _ in range(6)]
    result = postwerk(
        "serve",
        "--data-dir", str(closed / "data"),
        "--api", listeners[0], "--smtp", listeners[1], "--imap", listeners[2],
        "--imaps", listeners[3], "--pop3", listeners[4], "--pop3s", listeners[5],
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "cannot start the mail servers" in result.stderr
    for name in ("postwerk-postfix", "dovecot", "postwerk-mail", "chmod o+x"):
        assert name in result.stderr
    assert "Traceback" not in result.stderr


def test_config_render_writes_the_system_wide_layout_for_postgresql(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    ensure_self_signed(cert, key, "mx.provider.example")
    out = tmp_path / "out"
    result = postwerk(
        "config", "render", "--out", str(out),
        "--database-url", "postgresql://postwerk:s3cret@db.internal:5433/mail",
        "--smtp", "0.0.0.0:25", "--imap", "0.0.0.0:143", "--imaps", "0.0.0.0:993",
        "--pop3", "0.0.0.0:110", "--pop3s", "0.0.0.0:995",
        "--tls-cert", str(cert), "--tls-key", str(key),
        "--mail-hostname", "mx.provider.example", "--relay-host", "smarthost.example:587",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    main_cf = (out / "postfix" / "main.cf").read_text()
    assert "queue_directory = /var/spool/postfix" in main_cf
    assert "mail_owner = postfix" in main_cf and "maillog_file" not in main_cf
    assert "relayhost = [smarthost.example]:587" in main_cf
    assert "proxy:pgsql:/etc/postfix/postwerk-recipients.cf" in main_cf  # the recipient maps in one
    assert any(line.startswith("25 ") for line in (out / "postfix" / "master.cf").read_text().splitlines())
    routes = out / "postfix" / "postwerk-routes.cf"
    assert "hosts = inet:db.internal:5433" in routes.read_text()
    assert stat.S_IMODE(routes.stat().st_mode) == 0o640  # it holds the database password
    sql = out / "dovecot" / "postwerk-sql.conf.ext"
    assert "driver = pgsql" in sql.read_text() and stat.S_IMODE(sql.stat().st_mode) == 0o640
    # Both servers accept the syntax.
    postconf = subprocess.run(
        ["postconf", "-c", str(out / "postfix"), "-n"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    # (The maps are not in /etc/postfix yet: those warnings only.)
    warnings = [line for line in postconf.stderr.splitlines() if "/etc/postfix/postwerk-" not in line]
    assert postconf.returncode == 0 and not warnings, postconf.stderr
    doveconf = subprocess.run(
        ["doveconf", "-c", str(out / "dovecot" / "dovecot.conf"), "-n"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert doveconf.returncode == 0, doveconf.stderr


def test_config_render_refuses_sqlite(tmp_path: Path) -> None:
    result = postwerk("config", "render", "--out", str(tmp_path / "out"), "--data-dir", str(tmp_path))
    assert result.returncode == 2 and "PostgreSQL" in result.stderr


def _socket_url(url: str, engine: Engine) -> str:
    """`url` (a role on the test server) through the server's Unix socket instead of TCP."""
    socket_url = through_socket(url, engine)
    folder = make_url(socket_url).query["host"]
    if not Path(str(folder)).is_dir():
        missing(f"PostgreSQL's socket folder {folder} is not on this machine")
    return socket_url


def test_a_database_url_with_a_unix_socket_reaches_postgresql_from_both_servers(tmp_path: Path) -> None:
    """`?host=/folder` (libpq's form, which psycopg follows) is how the servers connect too: Postfix's map
    by its URI form, Dovecot by libpq's keywords (its `connect` goes to libpq as written); not TCP to
    localhost, which may refuse the role or not listen at all."""
    reason = postgres_reachable()
    if reason is not None:
        missing(reason)
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    ensure_self_signed(cert, key, "mx.socket.example")
    with scratch_postgres_role(POSTGRES_URL, prefix="pw_sockettest") as (engine, role_url):
        url = _socket_url(role_url, engine)
        out = tmp_path / "out"
        result = postwerk(
            "config", "render", "--out", str(out), "--database-url", url,
            "--tls-cert", str(cert), "--tls-key", str(key), "--mail-hostname", "mx.socket.example",
            "--postmaster", "someone@elsewhere.example",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        recipients = out / "postfix" / "postwerk-recipients.cf"
        assert "hosts = postgresql://" in recipients.read_text() and "inet:" not in recipients.read_text()
        # The postmaster of the mail host name needs no data: the answer proves the map reached the schema.
        config = tmp_path / "postconf"
        config.mkdir()
        (config / "main.cf").write_text("compatibility_level = 3.6\n")
        postmap = subprocess.run(
            [str(POSTFIX.parent / "postmap"), "-c", str(config), "-q", "postmaster@mx.socket.example",
             f"pgsql:{recipients}"],
            capture_output=True, text=True, timeout=TIMEOUT, check=False,
        )  # fmt: skip
        answer = (postmap.returncode, postmap.stdout.strip())
        assert answer == (0, "someone@elsewhere.example"), postmap.stderr
        sql = (out / "dovecot" / "postwerk-sql.conf.ext").read_text()
        lines = sql.splitlines()
        (connect,) = [line.partition("=")[2].strip() for line in lines if line.startswith("connect ")]
        assert "host=/" in connect
        with psycopg.connect(connect, connect_timeout=10) as connection:
            row = connection.execute("SELECT current_user, inet_server_addr() IS NULL").fetchone()
        assert row == (make_url(role_url).username, True)  # the role, through the socket
