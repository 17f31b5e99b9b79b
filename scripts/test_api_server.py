#!/usr/bin/env python3
"""A REST API that behaves as real ones do, for the tests and benchmarks of the http_api source.

It serves one list of items, ordered by (updated_at, id), in every common pagination style:

  GET /link/items?per_page=N&page=P[&since=T]   array body, GitHub-style `Link: <…>; rel="next"`
  GET /stripe/items?limit=N[&starting_after=ID][&since=T]   {"object": "list", "data": [...], "has_more": bool}
  GET /next/items?limit=N[&cursor=C][&since=T]  {"results": [...], "links": {"next": "/next/items?…" | null}}
  GET /offset/items?offset=O&limit=N[&since=T]  {"data": {"items": [...]}}
  GET /page/items?page=P&size=N[&since=T]       {"items": [...]}   (pages from 1)
  GET /ndjson/items?page=P&size=N               one JSON object per line
  GET /children/<id>/orders?page=P&size=N        {"data": [...]}: id % 4 orders of that parent, Link-header pages
  GET /feed?after=S&offset=O&limit=N            {"data": [...]}: records appended by /_control/append, seq > S
  POST /oauth/token                              client credentials (Basic auth), tokens expire after --token-ttl s
  GET /oauth/<style>/items                       the same, with a token from /oauth/token (--client-id)
  GET /_stats                                    counters (requests, rate_limited, max_in_window, errors, tokens)
  POST /_control/update {"ids": [...], "updated_at": "..."}   change items (late updates carry older timestamps)
  POST /_control/append {"ids": [...]} / {"malformed": true}  add feed records

`since` is inclusive (as GitHub's is), `until` exclusive. Faults: --fail-every K answers every K-th item request with
500; --throttle-every K answers every K-th with 429 and Retry-After: 1; --rate R answers 429 with Retry-After when more than R requests arrive within --window
seconds (default 1);
--latency-ms adds a delay; --bearer TOKEN is required on every item request, OAuth2 tokens on
/oauth/… ones. The port is printed on the first line of stdout.
"""

import argparse
import base64
import bisect
import json
import secrets
import signal
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote_plus, urlencode, urlparse

BASE = 1_700_000_000


def timestamp(seconds: int, micros: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros:06d}Z"


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.items = {
            i: {"id": i, "name": f"item-{i}", "amount": f"{i}.25", "big": 9007199254740993 + i,
                "updated_at": timestamp(BASE + i, 123456)}
            for i in range(1, args.items + 1)
        }
        self.feed = []
        self.sorted_rows = None
        self.sorted_keys = []
        self.requests = 0
        self.item_requests = 0
        self.rate_limited = 0
        self.errors = 0
        self.tokens = {}
        self.tokens_issued = 0
        self.token_uses = {}
        self.unauthorized = 0
        self.window = deque()
        self.max_in_window = 0

    def ordered(self, since):
        """Items by (updated_at, id), those at or after `since`; sorted once per change."""
        if self.sorted_rows is None:
            self.sorted_rows = sorted(self.items.values(), key=lambda r: (r["updated_at"], r["id"]))
            self.sorted_keys = [r["updated_at"] for r in self.sorted_rows]
        if since:
            return self.sorted_rows[bisect.bisect_left(self.sorted_keys, since):]
        return self.sorted_rows


def make_handler(state: State):
    args = state.args

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go in separate writes: without TCP_NODELAY a small response waits
        # for the client's delayed ACK (40 ms), which real servers do not make clients pay.
        disable_nagle_algorithm = True

        def log_message(self, *a):
            pass

        def send(self, status, body, content_type="application/json", headers=()):
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def read_body(self):
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def do_POST(self):
            url = urlparse(self.path)
            body = self.read_body()
            if url.path == "/oauth/token":
                auth = self.headers.get("Authorization", "")
                # RFC 6749 2.3.1: id and secret are form-encoded, then joined for Basic authentication.
                try:
                    user, _, password = base64.b64decode(auth.removeprefix("Basic ")).decode().partition(":")
                except Exception:
                    user, password = "", ""
                ok = unquote_plus(user) == args.client_id and unquote_plus(password) == args.client_secret
                if not ok or b"grant_type=client_credentials" not in body:
                    return self.send(401, {"error": "invalid_client"})
                token = secrets.token_hex(16)
                with state.lock:
                    state.tokens[token] = time.monotonic() + args.token_ttl
                    state.tokens_issued += 1
                return self.send(200, {"access_token": token, "token_type": "bearer", "expires_in": args.token_ttl})
            if url.path == "/_control/update":
                change = json.loads(body)
                with state.lock:
                    for i in change["ids"]:
                        state.items[i]["updated_at"] = change["updated_at"]
                        state.items[i]["name"] = change.get("name", state.items[i]["name"])
                    state.sorted_rows = None
                return self.send(200, {"ok": True})
            if url.path == "/_control/append":
                change = json.loads(body)
                with state.lock:
                    if change.get("malformed"):
                        state.feed.append({"id": "lots", "seq": len(state.feed) + 1})
                    for i in change.get("ids", []):
                        state.feed.append({"id": i, "seq": len(state.feed) + 1})
                return self.send(200, {"ok": True})
            return self.send(404, {"message": "Not Found"})

        def authorized(self, path):
            auth = self.headers.get("Authorization", "")
            if args.bearer:
                return auth == f"Bearer {args.bearer}"
            if args.client_id and path.startswith("/oauth/"):
                token = auth.removeprefix("Bearer ")
                with state.lock:
                    expiry = state.tokens.get(token)
                if expiry is None or expiry <= time.monotonic():
                    return False
                if args.token_uses:
                    with state.lock:
                        used = state.token_uses.get(token, 0) + 1
                        state.token_uses[token] = used
                    return used <= args.token_uses
                return True
            return True

        def do_GET(self):
            url = urlparse(self.path)
            q = {k: v[-1] for k, v in parse_qs(url.query).items()}
            with state.lock:
                state.requests += 1
            if url.path == "/_stats":
                with state.lock:
                    return self.send(200, {
                        "requests": state.requests, "item_requests": state.item_requests,
                        "rate_limited": state.rate_limited, "max_in_window": state.max_in_window,
                        "errors": state.errors, "tokens_issued": state.tokens_issued,
                        "unauthorized": state.unauthorized})
            now = time.monotonic()
            with state.lock:
                state.item_requests += 1
                n = state.item_requests
                window = state.window
                while window and window[0] <= now - args.window:
                    window.popleft()
                if args.rate and len(window) >= args.rate:
                    state.rate_limited += 1
                    limited = True
                else:
                    window.append(now)
                    state.max_in_window = max(state.max_in_window, len(window))
                    limited = False
            if limited:
                wait = max(1, int(window[0] + args.window - now + 0.999))
                return self.send(429, {"message": "API rate limit exceeded"}, headers=[("Retry-After", str(wait))])
            if not self.authorized(url.path):
                with state.lock:
                    state.unauthorized += 1
                return self.send(401, {"message": "Bad credentials"})
            if args.throttle_every and n % args.throttle_every == 0:
                with state.lock:
                    state.rate_limited += 1
                return self.send(429, {"message": "API rate limit exceeded"}, headers=[("Retry-After", "1")])
            if args.fail_every and n % args.fail_every == 0:
                with state.lock:
                    state.errors += 1
                return self.send(500, {"message": "Server Error"})
            if args.latency_ms:
                time.sleep(args.latency_ms / 1000)
            with state.lock:
                rows = state.ordered(q.get("since"))
                feed = list(state.feed)
            if "until" in q:
                rows = [r for r in rows if r["updated_at"] < q["until"]]
            base = f"http://{self.headers.get('Host')}"
            # /oauth/<style>/items: the same items, behind OAuth2 tokens (--client-id).
            prefix = "/oauth" if url.path.startswith("/oauth/") else ""
            url = url._replace(path=url.path.removeprefix("/oauth"))
            if url.path == "/link/items":
                per, page = int(q.get("per_page", 30)), int(q.get("page", 1))
                chunk = rows[(page - 1) * per: page * per]
                headers = []
                if page * per < len(rows):
                    nq = dict(q, page=page + 1)
                    last = dict(q, page=(len(rows) + per - 1) // per)
                    headers.append(("Link", f'<{base}{prefix}/link/items?{urlencode(nq)}>; rel="next", <{base}{prefix}/link/items?{urlencode(last)}>; rel="last"'))
                if page == args.garbage_page:
                    return self.send(200, b'[{"id": 1, "name": "trunc', headers=headers)
                return self.send(200, chunk, headers=headers)
            if url.path == "/stripe/items":
                limit = int(q.get("limit", 10))
                start = 0
                if "starting_after" in q:
                    after = int(q["starting_after"])
                    start = next((k + 1 for k, r in enumerate(rows) if r["id"] == after), len(rows))
                chunk = rows[start:start + limit]
                return self.send(200, {"object": "list", "data": chunk, "has_more": start + limit < len(rows)})
            if url.path == "/next/items":
                limit, start = int(q.get("limit", 10)), int(q.get("cursor", 0))
                chunk = rows[start:start + limit]
                nxt = None
                if start + limit < len(rows):
                    nxt = f"{prefix}/next/items?" + urlencode(dict(q, cursor=start + limit))
                return self.send(200, {"results": chunk, "links": {"next": nxt}})
            if url.path == "/offset/items":
                offset, limit = int(q.get("offset", 0)), int(q.get("limit", 10))
                return self.send(200, {"data": {"items": rows[offset:offset + limit]}})
            if url.path == "/page/items":
                page, size = int(q.get("page", 1)), int(q.get("size", 10))
                return self.send(200, {"items": rows[(page - 1) * size: page * size]})
            if url.path == "/ndjson/items":
                page, size = int(q.get("page", 1)), int(q.get("size", 10))
                text = "".join(json.dumps(r) + "\n" for r in rows[(page - 1) * size: page * size])
                return self.send(200, text.encode(), content_type="application/x-ndjson")
            if url.path.startswith("/children/") and url.path.endswith("/orders"):
                parent = int(url.path.split("/")[2])
                orders = [{"order_id": parent * 100 + k, "n": k} for k in range(parent % 4)]
                page, size = int(q.get("page", 1)), int(q.get("size", 2))
                headers = []
                if page * size < len(orders):
                    headers.append(("Link", f'<{base}{url.path}?{urlencode(dict(q, page=page + 1, size=size))}>; rel="next"'))
                return self.send(200, {"data": orders[(page - 1) * size: page * size]}, headers=headers)
            if url.path == "/feed":
                after, offset, limit = int(q.get("after", 0)), int(q.get("offset", 0)), int(q.get("limit", 10))
                chunk = [r for r in feed if r["seq"] > after][offset:offset + limit]
                return self.send(200, {"data": chunk})
            return self.send(404, {"message": "Not Found"})

    return Handler


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, default=1000)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--rate", type=int, default=0, help="requests per window before 429 (0: no limit)")
    p.add_argument("--window", type=float, default=1.0, help="the rate window in seconds")
    p.add_argument("--fail-every", type=int, default=0)
    p.add_argument("--latency-ms", type=int, default=0)
    p.add_argument("--garbage-page", type=int, default=0, help="/link/items answers this page with truncated JSON")
    p.add_argument("--bearer", default="")
    p.add_argument("--client-id", default="")
    p.add_argument("--client-secret", default="")
    p.add_argument("--token-ttl", type=int, default=3600)
    p.add_argument("--token-uses", type=int, default=0, help="a token is refused after this many requests (0: no limit)")
    p.add_argument("--throttle-every", type=int, default=0, help="every n-th item request answers 429 with Retry-After: 1")
    args = p.parse_args()
    # A parent that ignores SIGTERM passes that on; stop when asked.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(State(args)))
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
