#!/usr/bin/env python3
"""A test server for Slack's incoming webhooks (POST https://hooks.slack.com/services/...).

It answers as Slack documents for incoming webhooks: a message is a JSON
object with "text" (or "blocks" or "attachments", which Slack also takes),
sent as application/json or as a form field "payload"; success is 200 with
the body "ok" (text/html); the errors are plain-text bodies with HTTP
statuses: 400 "invalid_payload" (not a JSON object, or nothing to show),
404 "no_service" (a path that is not a webhook), 410 "channel_is_archived",
429 "rate_limited" with Retry-After, 500 "rollup_error". It is a test
server, not product: it records every message for the tests to read.

usage: webhook-server.py [--port N] [--port-file F] [--hook PATH]...
        (default hook: /services/T0000TEST/B0000TEST/secretsecretsecret)

Control endpoints for tests (not part of Slack's API):
  POST /__faults  {"status":429,"retry_after":1,"count":2}  next N posts fail
                  {"status":500,"count":1} / {"drop":true,"count":1}
  GET  /__posts   [{"path","content_type","body","message"}, ...]: every
                  accepted message (body: the raw text; message: parsed)
  GET  /__stats   {"requests":n,"accepted":n,"refused":n}
  POST /__reset   clear faults, posts and counters
"""
import argparse
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from helpers.testhttp import announce

lock = threading.Lock()
state = {}

ERRORS = {400: "invalid_payload", 403: "action_prohibited", 404: "no_service",
          410: "channel_is_archived", 429: "rate_limited", 500: "rollup_error",
          502: "bad_gateway", 503: "service_unavailable"}


def reset():
    state.update(requests=0, accepted=0, refused=0, posts=[], faults=[])


def showable(msg):
    """Slack shows a message with non-empty text, blocks or attachments."""
    if not isinstance(msg, dict):
        return False
    text = msg.get("text")
    if isinstance(text, str) and text.strip():
        return True
    for k in ("blocks", "attachments"):
        if isinstance(msg.get(k), list) and msg[k]:
            return True
    return False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *a):
        pass

    def reply(self, status, text, ctype="text/html", headers=()):
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def refuse(self, status, headers=()):
        with lock:
            state["refused"] += 1
        self.reply(status, ERRORS.get(status, "error"), headers=headers)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        if self.path == "/__posts":
            with lock:
                return self.reply(200, json.dumps(state["posts"]), "application/json")
        if self.path == "/__stats":
            with lock:
                s = {k: state[k] for k in ("requests", "accepted", "refused")}
            return self.reply(200, json.dumps(s), "application/json")
        if self.path not in ARGS.hook:
            return self.refuse(404)
        # a webhook takes only POST
        self.reply(405, "invalid_method", headers=(("Allow", "POST"),))

    def do_POST(self):
        raw = self.body()
        if self.path == "/__reset":
            with lock:
                reset()
            return self.reply(200, "ok")
        if self.path == "/__faults":
            f = json.loads(raw or b"{}")
            with lock:
                state["faults"].extend([f] * int(f.get("count", 1)))
            return self.reply(200, "ok")
        with lock:
            state["requests"] += 1
            fault = state["faults"].pop(0) if state["faults"] else None
        if fault:
            if fault.get("drop"):
                self.close_connection = True
                self.connection.shutdown(2)
                return
            hdrs = []
            if "retry_after" in fault:
                hdrs.append(("Retry-After", str(fault["retry_after"])))
            return self.refuse(int(fault["status"]), hdrs)
        if self.path not in ARGS.hook:
            return self.refuse(404)
        ctype = self.headers.get("Content-Type", "")
        try:
            text = raw.decode("utf-8")
            if ctype.startswith("application/x-www-form-urlencoded"):
                text = urllib.parse.parse_qs(text).get("payload", [""])[0]
            msg = json.loads(text)
        except ValueError:
            return self.refuse(400)
        if not showable(msg):
            return self.refuse(400)
        with lock:
            state["accepted"] += 1
            state["posts"].append({"path": self.path, "content_type": ctype,
                                   "body": raw.decode("utf-8"), "message": msg})
        self.reply(200, "ok")


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--hook", action="append")
    ARGS = p.parse_args()
    if not ARGS.hook:
        ARGS.hook = ["/services/T0000TEST/B0000TEST/secretsecretsecret"]
    reset()
    srv = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    srv.daemon_threads = True
    if ARGS.port_file:
        announce(ARGS.port_file, srv.server_address[1])
    srv.serve_forever()


if __name__ == "__main__":
    main()
