#!/usr/bin/env python3
"""A GOPROXY fixture for the edge benchmark: serves a directory laid out as a GOPROXY tree
(`<module>/@v/list`, `<module>/@v/<version>.{info,mod,zip}`) over HTTP/1.1, optionally throttled.

Every connection gets its own bandwidth (--mbps, Mbit/s; 0 = unthrottled, sendfile): the body
goes out in --chunk-bytes chunks, each sent when the connection's schedule allows (start +
bytes sent / rate), so a 16 MiB zip at 100 Mbit/s takes about 1.34 s whatever the chunk size.
Anything that is not a file of the tree is 404 (what a GOPROXY answers for an unknown module);
`/healthz` answers 200 so the benchmark can wait for it. Threaded; stdlib only.

Usage: goproxy_fixture.py --dir DIR --port PORT [--mbps 100] [--chunk-bytes 16384]
"""
import argparse
import http.server
import os
import time
import urllib.parse

TYPES = {".info": "application/json", ".mod": "text/plain; charset=utf-8",
         ".zip": "application/zip", "list": "text/plain; charset=utf-8"}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "goproxy-fixture"
    sys_version = ""

    def do_GET(self):
        self.answer(send_body=True)

    def do_HEAD(self):
        self.answer(send_body=False)

    def log_message(self, *_args):
        pass

    def plain(self, status, text, send_body):
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def answer(self, send_body):
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        if path == "/healthz":
            return self.plain(200, "ok\n", send_body)
        parts = [p for p in path.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts):
            return self.plain(404, "not found\n", send_body)
        full = os.path.join(self.server.root, *parts)
        if not os.path.isfile(full):
            return self.plain(404, "not found\n", send_body)
        kind = next((v for k, v in TYPES.items() if full.endswith(k)), "application/octet-stream")
        with open(full, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            if not send_body:
                return
            self.wfile.flush()
            rate = self.server.bytes_per_second
            if rate <= 0:
                self.connection.sendfile(f)
                return
            chunk = self.server.chunk
            start = time.monotonic()
            sent = 0
            while True:
                data = f.read(chunk)
                if not data:
                    break
                self.wfile.write(data)
                sent += len(data)
                delay = start + sent / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mbps", type=float, default=100.0,
                    help="bandwidth per connection in Mbit/s (0 = unthrottled)")
    ap.add_argument("--chunk-bytes", type=int, default=16384)
    args = ap.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.root = os.path.abspath(args.dir)
    server.bytes_per_second = args.mbps * 1e6 / 8
    server.chunk = max(1024, args.chunk_bytes)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
