#!/usr/bin/env python3
"""A test server for OpenAI's embeddings API (POST /v1/embeddings).

It follows OpenAI's published reference: the request fields (model, input as a
string, an array of strings or of token arrays, dimensions, encoding_format),
the reply ({"object":"list","data":[{"object":"embedding","index":i,
"embedding":[...]}],"model","usage"}), the limits (2,048 inputs and 300,000
tokens per request, a per-input context length) and the error shape
{"error":{"message","type","param","code"}} with the same HTTP statuses. It is
a test server, not product: vectors are deterministic pseudo-random unit
vectors chosen by the text's SHA-256, so equal texts get equal vectors.

usage: openai-server.py [--port N] [--port-file F] [--api-key K]
                        [--models a,b] [--max-tokens N] [--latency-ms N]

Control endpoints for tests (not part of OpenAI's API):
  POST /__faults  {"status":429,"retry_after":1,"count":2}  next N requests fail
                  {"status":503,"count":1} / {"drop":true,"count":1}
                  {"latency_ms":100} (every request) / {"reject_over_tokens":N}
  GET  /__stats   {"requests":n,"embeddings_requests":n,"inputs":n,"texts":[...]}
  POST /__reset   clear faults and counters
Tokens are counted as words and punctuation marks, a stand-in for a tokenizer.
"""
import argparse
import base64
import hashlib
import json
import math
import random
import re
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_INPUTS = 2048
MAX_REQUEST_TOKENS = 300000
TOKEN_RE = re.compile(r"\w+|[^\w\s]", re.UNICODE)

lock = threading.Lock()
state = {}
pool = {}  # dim -> list of (floats, json fragment)


def reset():
    state.update(requests=0, embeddings_requests=0, inputs=0, texts=[], faults=[],
                 latency_ms=ARGS.latency_ms, reject_over=ARGS.max_tokens)


def vectors(dim):
    """1,024 unit vectors of size dim, made once, with their JSON text."""
    with lock:
        if dim not in pool:
            r = random.Random(dim)
            rows = []
            for _ in range(1024):
                v = [r.gauss(0, 1) for _ in range(dim)]
                n = math.sqrt(sum(x * x for x in v)) or 1.0
                v = [x / n for x in v]
                rows.append((v, "[" + ",".join("%.6f" % x for x in v) + "]"))
            pool[dim] = rows
        return pool[dim]


def count_tokens(x):
    if isinstance(x, list):
        return len(x)
    return len(TOKEN_RE.findall(x))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # one write per reply and no Nagle delay: headers and body sent apart
    # would each wait for the client's delayed ACK, 40 ms a request
    disable_nagle_algorithm = True
    wbufsize = 1 << 16

    def log_message(self, *a):
        pass

    def reply(self, status, obj=None, raw=None, headers=()):
        body = raw if raw is not None else json.dumps(obj).encode()
        wait = getattr(self, "due", 0) - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self.due = 0
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def error(self, status, message, type_="invalid_request_error", param=None, code=None,
              headers=()):
        self.reply(status, {"error": {"message": message, "type": type_, "param": param,
                                      "code": code}}, headers=headers)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        if self.path == "/__stats":
            with lock:
                s = {k: state[k] for k in ("requests", "embeddings_requests", "inputs", "texts")}
            return self.reply(200, s)
        if self.path in ("/v1/models", "/models"):
            return self.reply(200, {"object": "list", "data": [
                {"id": m, "object": "model", "owned_by": "plumb-test"} for m in ARGS.models]})
        self.error(404, "Invalid URL (GET %s)" % self.path)

    def do_POST(self):
        raw = self.body()
        if self.path == "/__reset":
            with lock:
                reset()
            return self.reply(200, {"ok": True})
        if self.path == "/__faults":
            f = json.loads(raw or b"{}")
            with lock:
                if "latency_ms" in f:
                    state["latency_ms"] = f["latency_ms"]
                if "reject_over_tokens" in f:
                    state["reject_over"] = f["reject_over_tokens"]
                if "status" in f or f.get("drop"):
                    state["faults"].extend([f] * int(f.get("count", 1)))
            return self.reply(200, {"ok": True})
        t0 = time.monotonic()
        with lock:
            state["requests"] += 1
            fault = state["faults"].pop(0) if state["faults"] else None
            latency = state["latency_ms"]
        # a fixed latency: the reply leaves latency_ms after the request came,
        # whatever this server's own processing took within that time
        self.due = t0 + latency / 1000.0
        if fault:
            if fault.get("drop"):
                wait = self.due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                self.close_connection = True
                self.connection.shutdown(2)
                return
            hdrs = []
            if "retry_after" in fault:
                hdrs.append(("Retry-After", str(fault["retry_after"])))
            msgs = {429: ("Rate limit reached for requests", "requests", "rate_limit_exceeded"),
                    500: ("The server had an error while processing your request.", "server_error", None),
                    503: ("The engine is currently overloaded, please try again later", "server_error", None)}
            m, t, c = msgs.get(fault["status"], ("injected fault", "server_error", None))
            return self.error(fault["status"], m, t, None, c, headers=hdrs)
        if self.path not in ("/v1/embeddings", "/embeddings"):
            return self.error(404, "Invalid URL (POST %s)" % self.path)
        if ARGS.api_key:
            auth = self.headers.get("Authorization", "")
            if not auth.startswith("Bearer "):
                return self.error(401, "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
            if auth[7:] != ARGS.api_key:
                shown = auth[7:][:3] + "*" * 6 + auth[7:][-4:]
                return self.error(401, "Incorrect API key provided: %s." % shown,
                                  code="invalid_api_key")
        self.embeddings(raw)

    def embeddings(self, raw):
        try:
            req = json.loads(raw)
        except ValueError:
            return self.error(400, "We could not parse the JSON body of your request.")
        if not isinstance(req, dict):
            return self.error(400, "We could not parse the JSON body of your request.")
        model = req.get("model")
        if not isinstance(model, str) or not model:
            return self.error(400, "you must provide a model parameter")
        if ARGS.models and model not in ARGS.models:
            return self.error(404, "The model `%s` does not exist or you do not have access to it." % model,
                              code="model_not_found")
        inp = req.get("input")
        if isinstance(inp, str) or (isinstance(inp, list) and inp and all(isinstance(x, int) for x in inp)):
            inputs = [inp]
        elif isinstance(inp, list) and inp and all(
                isinstance(x, str) or (isinstance(x, list) and x and all(isinstance(y, int) for y in x))
                for x in inp):
            inputs = inp
        else:
            return self.error(400, "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
                              param="input")
        if len(inputs) > MAX_INPUTS:
            return self.error(400, "'$.input' is invalid: too many inputs (%d); the limit is %d." % (len(inputs), MAX_INPUTS),
                              param="input")
        if any(x == "" for x in inputs):
            return self.error(400, "'$.input' is invalid: an input is an empty string.", param="input")
        fmt = req.get("encoding_format", "float")
        if fmt not in ("float", "base64"):
            return self.error(400, "Invalid value for 'encoding_format': '%s'. Supported values are: 'float' and 'base64'." % fmt,
                              param="encoding_format")
        dim = req.get("dimensions", ARGS.dim)
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1 or dim > 3072:
            return self.error(400, "Invalid value for 'dimensions' = %r. Must be an integer between 1 and 3072." % dim,
                              param="dimensions")
        tokens = [count_tokens(x) for x in inputs]
        limit = state["reject_over"]
        for i, t in enumerate(tokens):
            if t > limit:
                return self.error(400, "This model's maximum context length is %d tokens, however you requested %d tokens (%d in your prompt; 0 for the completion). Please reduce your prompt; or completion length." % (limit, t, t),
                                  param="input[%d]" % i if len(inputs) > 1 else "input")
        if sum(tokens) > MAX_REQUEST_TOKENS:
            return self.error(400, "Requested %d tokens, max %d tokens per request" % (sum(tokens), MAX_REQUEST_TOKENS),
                              param="input")
        rows = vectors(dim)
        parts = []
        for i, x in enumerate(inputs):
            key = x.encode() if isinstance(x, str) else json.dumps(x).encode()
            v, frag = rows[int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % len(rows)]
            if fmt == "base64":
                frag = '"%s"' % base64.b64encode(struct.pack("<%df" % dim, *v)).decode()
            parts.append('{"object":"embedding","index":%d,"embedding":%s}' % (i, frag))
        with lock:
            state["embeddings_requests"] += 1
            state["inputs"] += len(inputs)
            if len(state["texts"]) < 100000:
                state["texts"].extend(x for x in inputs if isinstance(x, str))
        usage = sum(tokens)
        body = ('{"object":"list","data":[%s],"model":%s,"usage":{"prompt_tokens":%d,"total_tokens":%d}}'
                % (",".join(parts), json.dumps(model), usage, usage)).encode()
        self.reply(200, raw=body)


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--api-key")
    p.add_argument("--models", default="")
    p.add_argument("--dim", type=int, default=1536)
    p.add_argument("--max-tokens", type=int, default=8191)
    p.add_argument("--latency-ms", type=int, default=0)
    ARGS = p.parse_args()
    ARGS.models = [m for m in ARGS.models.split(",") if m]
    reset()
    srv = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    srv.daemon_threads = True
    srv.request_queue_size = 128
    if ARGS.port_file:
        with open(ARGS.port_file + ".tmp", "w") as f:
            f.write(str(srv.server_address[1]))
        import os
        os.rename(ARGS.port_file + ".tmp", ARGS.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
