"""How the fakes frame a reply body on the wire: as a plain Content-Length body (the default), or as the real
services often send theirs: `Transfer-Encoding: chunked` (Google's and Microsoft's front ends stream JSON so) and,
when the request accepts it, `Content-Encoding: gzip` (Microsoft Graph compresses for a client that asks; Google
only for a User-Agent naming gzip, which preflight's does not). The benchmarks measure both framings."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

CHUNK = 8192


@dataclass
class Wire:
    chunked: bool = False
    gzip: bool = False  # compress when the request's Accept-Encoding names gzip

    def send_body(self, handler: BaseHTTPRequestHandler, data: bytes, method: str = "GET") -> None:
        """The framing headers, the end of the head, then `data` framed (nothing after the head for HEAD)."""
        if self.gzip and data and "gzip" in (handler.headers.get("Accept-Encoding") or ""):
            data = gzip.compress(data, compresslevel=6, mtime=0)
            handler.send_header("Content-Encoding", "gzip")
            handler.send_header("Vary", "Accept-Encoding")
        if not self.chunked:
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            if method != "HEAD":
                handler.wfile.write(data)
            return
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        if method == "HEAD":
            return
        framed = [b"%x\r\n%s\r\n" % (len(part), part) for part in
                  (data[i:i + CHUNK] for i in range(0, len(data), CHUNK))]
        handler.wfile.write(b"".join([*framed, b"0\r\n\r\n"]))


# The framings tests compare with the plain one, by name.
FRAMINGS = {"plain": Wire(), "chunked": Wire(chunked=True), "gzip": Wire(gzip=True),
            "chunked-gzip": Wire(chunked=True, gzip=True)}
