"""The dev server's TLS material made with the openssl command (a plain Python has no cryptography):
a real TLS handshake against it, verified with the CA file and the hash directory."""

from __future__ import annotations

import socket
import ssl
import threading

import pytest

from pilot.devserver.tls import ensure_tls_material


@pytest.mark.parametrize("backend", ["openssl", ""])
def test_tls_material_serves_a_verified_handshake(tmp_path, backend):
    material = ensure_tls_material(tmp_path / "tls", backend=backend)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(material.cert, material.key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen = []

    def serve() -> None:
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            seen.append(tls.recv(5))
            tls.sendall(b"pong!")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_ctx = ssl.create_default_context(cafile=str(material.cacert))
    client_ctx.load_cert_chain(material.client_proxy)  # the client credential is usable as a proxy
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
        with client_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:  # checks the IP SAN too
            tls.sendall(b"ping!")
            assert tls.recv(5) == b"pong!"
    hashed = list(material.certdir.glob("*.0"))  # X509_CERT_DIR / curl --capath layout
    assert len(hashed) == 1 and hashed[0].read_bytes() == material.cacert.read_bytes()
    thread.join(30)
    listener.close()
    assert seen == [b"ping!"]
    assert oct(material.key.stat().st_mode & 0o777) == "0o600"
