"""Memory of OpenSSL's per-connection state on the server side: ``python -m bench.sslmem``.

tracemalloc does not see OpenSSL's allocations, so this measures them
directly: N server-side ``ssl.SSLObject``s (with their two memory BIOs, as
asyncio's SSL protocol holds them) complete a mutual-TLS handshake with
cloudhub's server context against a client with a node certificate, and
exchange a few hundred bytes; the RSS growth per kept server object is
printed. The client objects are dropped as they go, so freed client memory is
reused and not counted. Used by docs/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import ssl
import sys
import tempfile
from pathlib import Path

from cryptography import x509

from bench import rss_kb
from cloudcore.cloudhub.tls import server_ssl_context
from kecommon import certs


def _pump(src: ssl.MemoryBIO, dst: ssl.MemoryBIO) -> None:
    data = src.read()
    if data:
        dst.write(data)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sslmem")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--tls12", action="store_true", help="client limited to TLS 1.2")
    args = parser.parse_args()
    ca = certs.new_ca()
    server = certs.new_server_cert(ca, advertise_address=["127.0.0.1"], dns_names=["localhost"])
    sctx = server_ssl_context(server, ca.cert)
    key = certs.new_key()
    cert = certs.sign_edge_cert(ca, x509.load_der_x509_csr(certs.new_csr("n", key)), days=1)
    with tempfile.TemporaryDirectory() as tmp:
        crt, keyf = Path(tmp) / "n.crt", Path(tmp) / "n.key"
        crt.write_bytes(certs.cert_to_pem(cert))
        keyf.write_bytes(certs.key_to_pem(key))
        cctx = ssl.create_default_context(cadata=certs.cert_to_der(ca.cert))
        cctx.load_cert_chain(crt, keyf)
    if args.tls12:
        cctx.maximum_version = ssl.TLSVersion.TLSv1_2

    def pair() -> tuple[ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO]:
        s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
        s = sctx.wrap_bio(s_in, s_out, server_side=True)
        c = cctx.wrap_bio(c_in, c_out, server_hostname="localhost")
        for _ in range(10):
            for obj in (c, s):
                with contextlib.suppress(ssl.SSLWantReadError):
                    obj.do_handshake()
            _pump(c_out, s_in)
            _pump(s_out, c_in)
        c.write(b"x" * 300)
        _pump(c_out, s_in)
        s.read(1000)
        s.write(b"y" * 300)
        _pump(s_out, c_in)
        c.read(1000)
        return s, s_in, s_out

    keep = [pair() for _ in range(50)]  # warm-up: allocator arenas, caches
    gc.collect()
    before = rss_kb()
    keep += [pair() for _ in range(args.count)]
    gc.collect()
    per = (rss_kb() - before) / args.count
    print(f"{keep[0][0].version()}: {per:.1f} KiB of RSS per server-side TLS connection")
    return 0


if __name__ == "__main__":
    sys.exit(main())
