"""A renewed certificate is picked up without a restart: the certificate and key files are replaced, and new
TLS connections (SMTP STARTTLS, IMAPS) get the new certificate from the same running servers."""

from __future__ import annotations

import shutil
import smtplib
import socket
import ssl
import time
from pathlib import Path

from postwerk.mailstack import tls
from postwerk.mailstack.tls_reload import CertificateWatcher
from postwerk.settings import split_host_port
from tests.mail.conftest import NETWORK_TIMEOUT, Stack

RELOAD_TIMEOUT = 30.0  # the watcher looks every 5 s and lets a renewal settle for 1 s


def _any_certificate() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # only the certificate's bytes are compared
    return context


def served_by_smtp(stack: Stack) -> bytes:
    host, port = split_host_port(stack.settings.smtp)
    with smtplib.SMTP(host, port, local_hostname="client.postwerk.test", timeout=NETWORK_TIMEOUT) as client:
        client.starttls(context=_any_certificate())
        assert isinstance(client.sock, ssl.SSLSocket)
        certificate = client.sock.getpeercert(binary_form=True)
    assert certificate is not None
    return certificate


def served_by_imaps(stack: Stack) -> bytes:
    host, port = split_host_port(stack.settings.imaps)
    with (
        socket.create_connection((host, port), timeout=NETWORK_TIMEOUT) as raw,
        _any_certificate().wrap_socket(raw) as wrapped,
    ):
        certificate = wrapped.getpeercert(binary_form=True)
    assert certificate is not None
    return certificate


def _der(pem: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem.read_text())


def _install(source_cert: Path, source_key: Path, cert: Path, key: Path) -> None:
    """As a renewal tool does: new files moved into place, with the old files' modes."""
    for source, target in ((source_key, key), (source_cert, cert)):
        staged = target.with_name(target.name + ".new")
        shutil.copyfile(source, staged)
        shutil.copymode(target, staged)
        staged.replace(target)


def _wait_until_served(stack: Stack, expected: bytes) -> None:
    deadline = time.monotonic() + RELOAD_TIMEOUT
    while (served_by_smtp(stack), served_by_imaps(stack)) != (expected, expected):
        assert time.monotonic() < deadline, f"the new certificate is not served\n{stack.log_tail()}"
        time.sleep(0.5)


def test_a_renewed_certificate_is_served_without_a_restart(stack: Stack, tmp_path: Path) -> None:
    layout = stack.mail.layout
    original = _der(layout.tls_cert)
    assert served_by_smtp(stack) == served_by_imaps(stack) == original
    saved_cert, saved_key = tmp_path / "saved-cert.pem", tmp_path / "saved-key.pem"
    shutil.copy2(layout.tls_cert, saved_cert)
    shutil.copy2(layout.tls_key, saved_key)
    renewed_cert, renewed_key = tmp_path / "renewed-cert.pem", tmp_path / "renewed-key.pem"
    assert tls.ensure_self_signed(renewed_cert, renewed_key, stack.settings.mail_hostname)
    supervisor = stack.mail.supervisor
    assert supervisor is not None
    pids = (supervisor.pid("postfix"), supervisor.pid("dovecot"))
    try:
        _install(renewed_cert, renewed_key, layout.tls_cert, layout.tls_key)
        _wait_until_served(stack, _der(renewed_cert))
        assert (supervisor.pid("postfix"), supervisor.pid("dovecot")) == pids  # no restart
    finally:
        # The other tests trust the original certificate.
        _install(saved_cert, saved_key, layout.tls_cert, layout.tls_key)
        _wait_until_served(stack, original)


def test_the_watcher_reloads_once_per_change(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("one")
    key.write_text("one")
    reloads: list[int] = []
    watcher = CertificateWatcher([cert, key], lambda: reloads.append(1), settle=0.01)
    assert not watcher.check()
    cert.write_text("two")
    key.write_text("two")
    assert watcher.check() and reloads == [1]
    assert not watcher.check()
    key.unlink()  # in the middle of a renewal: wait for it
    assert not watcher.check() and reloads == [1]
