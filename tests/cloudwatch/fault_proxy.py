#!/usr/bin/env python3
"""A fault-injecting HTTP proxy in front of moto_server, for the CloudWatch
tests: moto never throttles and never returns empty pages, real AWS does.

  fault_proxy.py LISTEN_PORT UPSTREAM_URL STATS_FILE [fail-token]

For FilterLogEvents (X-Amz-Target Logs_20140328.FilterLogEvents):
- every 5th request is answered `400 ThrottlingException` ("Rate exceeded")
  without reaching moto;
- every 4th request (of those let through) is answered with an empty page
  whose nextToken stands for the request's own token (`empty:<token>`); the
  next request with that token is forwarded with the original token.
With `fail-token`, instead: the first request carrying a nextToken (the
second page) and the next two with that same token are answered
`500 InternalFailure`, then it is forwarded; STATS_FILE also counts the
requests without a token (the first page: must be asked once).
Everything else is forwarded unchanged. STATS_FILE receives
{"throttled": n, "empty": n, "forwarded": n} after each request.
"""

import json
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, UPSTREAM, STATS = int(sys.argv[1]), sys.argv[2].rstrip("/"), sys.argv[3]
FAIL_TOKEN = len(sys.argv) > 4 and sys.argv[4] == "fail-token"
counts = {"throttled": 0, "empty": 0, "forwarded": 0, "filter_requests": 0,
          "failed": 0, "first_page": 0, "failed_token_retried": 0}
failing = {"token": None}


def save():
    with open(STATS + ".tmp", "w") as f:
        json.dump(counts, f)
    import os

    os.replace(STATS + ".tmp", STATS)


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        target = self.headers.get("X-Amz-Target", "")
        if target.endswith(".FilterLogEvents"):
            counts["filter_requests"] += 1
            n = counts["filter_requests"]
            request = json.loads(body or b"{}")
            token = request.get("nextToken")
            if FAIL_TOKEN:
                if not token:
                    counts["first_page"] += 1
                elif failing["token"] is None or failing["token"] == token:
                    if failing["token"] == token:
                        counts["failed_token_retried"] += 1
                    failing["token"] = token
                    if counts["failed"] < 3:
                        counts["failed"] += 1
                        save()
                        return self.reply(500, {"__type": "InternalFailure", "message": "injected"})
            elif n % 5 == 0:
                counts["throttled"] += 1
                save()
                return self.reply(
                    400,
                    {"__type": "ThrottlingException", "message": "Rate exceeded"},
                    [("x-amzn-ErrorType", "ThrottlingException")],
                )
            if token and token.startswith("empty:"):
                request["nextToken"] = token[len("empty:"):] or None
                if request["nextToken"] is None:
                    del request["nextToken"]
                body = json.dumps(request).encode()
            elif not FAIL_TOKEN and n % 4 == 0:
                counts["empty"] += 1
                save()
                return self.reply(200, {"events": [], "searchedLogStreams": [], "nextToken": "empty:" + (token or "")})
        counts["forwarded"] += 1
        save()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        req = urllib.request.Request(UPSTREAM + self.path, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req) as r:
                status, data, rh = r.status, r.read(), r.headers
        except urllib.error.HTTPError as e:
            status, data, rh = e.code, e.read(), e.headers
        self.send_response(status)
        for k, v in rh.items():
            if k.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


ThreadingHTTPServer(("127.0.0.1", PORT), Proxy).serve_forever()
