#!/usr/bin/env python3
"""A test server for OpenAI's embeddings API (POST /v1/embeddings) and chat
completions API (POST /v1/chat/completions).

It follows OpenAI's published reference. Embeddings: the request fields
(model, input as a string, an array of strings or of token arrays, dimensions,
encoding_format), the reply ({"object":"list","data":[{"object":"embedding",
"index":i,"embedding":[...]}],"model","usage"}), the limits (2,048 inputs and
300,000 tokens per request, a per-input context length). Chat completions:
the request fields (model; messages, each {role, content} with role system,
developer, user, assistant, tool or function; temperature 0-2, top_p 0-1,
max_tokens and max_completion_tokens >= 1, seed, n, stop as a string or up to 4
strings; any field OpenAI does not know is refused), the reply ({"id",
"object":"chat.completion","created","model","choices":[{"index","message":
{"role","content","refusal"},"logprobs","finish_reason"}],"usage":
{"prompt_tokens","completion_tokens","total_tokens"}}). Both use the error
shape {"error":{"message","type","param","code"}} with the same HTTP statuses.

It is a test server, not product. Vectors are deterministic pseudo-random unit
vectors chosen by the text's SHA-256, so equal texts get equal vectors. A chat
answer is deterministic: the rule for the last user message's text if there is
one, else that text echoed back; a max_tokens limit cuts the answer (finish
reason "length") and a stop sequence ends it (the sequence left out).

usage: openai-server.py [--port N] [--port-file F] [--api-key K] [--models a,b]
                        [--max-tokens N] [--latency-ms N] [--chat-rules FILE]

Control endpoints for tests (not part of OpenAI's API):
  POST /__faults  {"status":429,"retry_after":1,"count":2}  next N requests fail
                  {"status":503,"count":1} / {"drop":true,"count":1}
                  {"latency_ms":100} (every request) / {"reject_over_tokens":N}
                  {"ignore_dimensions":true} (as a server that does not know it)
                  {"latency_random_ms":[lo,hi]} (each request a further uniform
                  random delay, from a seeded generator) / {"pretty":true}
                  (replies printed over several lines)
  POST /__rules   {"rules":{"user text": answer, ...}}, answer a string or
                  {"content": str|null, "refusal": str, "finish_reason": str,
                  "latency_ms": n, "status": code, "retry_after": s}; with
                  "status" every request for that text fails so
  GET  /__stats   {"requests":n,"embeddings_requests":n,"inputs":n,"texts":[...],
                  "chat_requests":n (arrived), "chat_answers":n (200s),
                  "in_flight_max":n (requests being served at once, any API),
                  "chat_times":[arrival times, seconds], "chat_bodies":[...]}
                  {"flavor":"tei"|"llamacpp"|"vllm"|"openai","max_batch":N}
                  answer embeddings as that server does (below)
  POST /__reset   clear faults, counters and rules set by /__rules
Flavors, each from the server's own source or documentation, for what differs
from OpenAI in its OpenAI-compatible embeddings route:
  tei       text-embeddings-inference: "model" is not checked; more than
            max_batch inputs (its --max-client-batch-size, 32 by default) is
            422 "batch size N > maximum allowed batch size M"; an input over
            the token limit is 422; errors are {"message","code","type"}.
  llamacpp  llama.cpp's server: "model" is not checked; an input over the
            limit (its physical batch) is a 500 {"error":{"code","message",
            "type":"server_error"}} "input (N tokens) is too large to process".
  vllm      vLLM: an input over the context is a 400 {"object":"error",
            "message","type":"BadRequestError","param","code"}.
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

from helpers.testhttp import announce

MAX_INPUTS = 2048
MAX_REQUEST_TOKENS = 300000
TOKEN_RE = re.compile(r"\w+|[^\w\s]", re.UNICODE)

lock = threading.Lock()
state = {}
pool = {}  # dim -> list of (floats, json fragment)


def reset():
    rules = {}
    if ARGS.chat_rules:
        with open(ARGS.chat_rules) as f:
            rules = json.load(f)
    state.update(requests=0, embeddings_requests=0, inputs=0, texts=[], faults=[],
                 latency_ms=ARGS.latency_ms, reject_over=ARGS.max_tokens,
                 latency_random=None, pretty=False, rules=rules, rng=random.Random(1),
                 chat_requests=0, chat_answers=0, chat_times=[], chat_bodies=[],
                 in_flight=0, in_flight_max=0, flavor="openai", max_batch=32,
                 batches=[], ignore_dimensions=False)


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
        if raw is not None:
            body = raw
        elif state.get("pretty"):
            body = (json.dumps(obj, indent=2) + "\n").encode()
        else:
            body = json.dumps(obj).encode()
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
                s = {k: state[k] for k in ("requests", "embeddings_requests", "inputs", "texts",
                                           "chat_requests", "chat_answers", "in_flight_max",
                                           "chat_times", "chat_bodies", "batches")}
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
        if self.path == "/__rules":
            r = json.loads(raw or b"{}")
            with lock:
                state["rules"] = dict(r.get("rules", {}))
            return self.reply(200, {"ok": True})
        if self.path == "/__faults":
            f = json.loads(raw or b"{}")
            with lock:
                if "latency_ms" in f:
                    state["latency_ms"] = f["latency_ms"]
                if "latency_random_ms" in f:
                    state["latency_random"] = f["latency_random_ms"]
                if "pretty" in f:
                    state["pretty"] = bool(f["pretty"])
                if "reject_over_tokens" in f:
                    state["reject_over"] = f["reject_over_tokens"]
                if "ignore_dimensions" in f:
                    state["ignore_dimensions"] = bool(f["ignore_dimensions"])
                if "flavor" in f:
                    state["flavor"] = f["flavor"]
                if "max_batch" in f:
                    state["max_batch"] = f["max_batch"]
                if "status" in f or f.get("drop"):
                    state["faults"].extend([f] * int(f.get("count", 1)))
            return self.reply(200, {"ok": True})
        with lock:
            state["in_flight"] += 1
            state["in_flight_max"] = max(state["in_flight_max"], state["in_flight"])
        try:
            self.api(raw)
        finally:
            with lock:
                state["in_flight"] -= 1

    def api(self, raw):
        t0 = time.monotonic()
        chat = self.path in ("/v1/chat/completions", "/chat/completions")
        with lock:
            state["requests"] += 1
            fault = state["faults"].pop(0) if state["faults"] else None
            latency = state["latency_ms"]
            if state["latency_random"]:
                lo, hi = state["latency_random"]
                latency += state["rng"].uniform(lo, hi)
            if chat:
                state["chat_requests"] += 1
                state["chat_times"].append(t0)
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
        if self.path not in ("/v1/embeddings", "/embeddings") and not chat:
            return self.error(404, "Invalid URL (POST %s)" % self.path)
        if ARGS.api_key:
            auth = self.headers.get("Authorization", "")
            if not auth.startswith("Bearer "):
                return self.error(401, "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
            if auth[7:] != ARGS.api_key:
                shown = auth[7:][:3] + "*" * 6 + auth[7:][-4:]
                return self.error(401, "Incorrect API key provided: %s." % shown,
                                  code="invalid_api_key")
        if chat:
            return self.chat(raw)
        self.embeddings(raw)

    def flavor_error(self, flavor, status, message):
        if flavor == "tei":
            kind = "Empty" if status == 400 else "Validation"
            return self.reply(status, {"message": message, "code": status, "type": kind})
        if flavor == "vllm":
            return self.reply(status, {"object": "error", "message": message,
                                       "type": "BadRequestError", "param": None, "code": status})
        return self.reply(status, {"error": {"code": status, "message": message,
                                             "type": "server_error"}})

    def embeddings(self, raw):
        flavor = state["flavor"]
        try:
            req = json.loads(raw)
        except ValueError:
            return self.error(400, "We could not parse the JSON body of your request.")
        if not isinstance(req, dict):
            return self.error(400, "We could not parse the JSON body of your request.")
        model = req.get("model")
        if not isinstance(model, str) or not model:
            return self.error(400, "you must provide a model parameter")
        if ARGS.models and model not in ARGS.models and flavor not in ("tei", "llamacpp"):
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
        with lock:
            state["batches"].append(len(inputs))
        if flavor == "tei" and len(inputs) > state["max_batch"]:
            return self.flavor_error("tei", 422, "batch size %d > maximum allowed batch size %d"
                                     % (len(inputs), state["max_batch"]))
        if len(inputs) > MAX_INPUTS:
            return self.error(400, "'$.input' is invalid: too many inputs (%d); the limit is %d." % (len(inputs), MAX_INPUTS),
                              param="input")
        if any(x == "" for x in inputs):
            return self.error(400, "'$.input' is invalid: an input is an empty string.", param="input")
        fmt = req.get("encoding_format", "float")
        if fmt not in ("float", "base64"):
            return self.error(400, "Invalid value for 'encoding_format': '%s'. Supported values are: 'float' and 'base64'." % fmt,
                              param="encoding_format")
        dim = ARGS.dim if state["ignore_dimensions"] else req.get("dimensions", ARGS.dim)
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1 or dim > 3072:
            return self.error(400, "Invalid value for 'dimensions' = %r. Must be an integer between 1 and 3072." % dim,
                              param="dimensions")
        tokens = [count_tokens(x) for x in inputs]
        limit = state["reject_over"]
        for i, t in enumerate(tokens):
            if t > limit and flavor == "tei":
                return self.flavor_error("tei", 422, "`inputs` must have less than %d tokens. Given: %d"
                                         % (limit, t))
            if t > limit and flavor == "llamacpp":
                return self.flavor_error("llamacpp", 500, "input (%d tokens) is too large to process. increase the physical batch size (current batch size: %d)"
                                         % (t, limit))
            if t > limit and flavor == "vllm":
                return self.flavor_error("vllm", 400, "This model's maximum context length is %d tokens. However, you requested %d tokens in the input for embedding generation. Please reduce the length of the input."
                                         % (limit, t))
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

    def chat(self, raw):
        try:
            req = json.loads(raw)
        except ValueError:
            req = None
        if not isinstance(req, dict):
            return self.error(400, "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)")
        with lock:
            if len(state["chat_bodies"]) < 10000:
                state["chat_bodies"].append(req)
        unknown = sorted(k for k in req if k not in CHAT_FIELDS)
        if unknown:
            return self.error(400, "Unrecognized request argument%s supplied: %s"
                              % ("s" if len(unknown) > 1 else "", ", ".join(unknown)))
        model = req.get("model")
        if not isinstance(model, str) or not model:
            return self.error(400, "you must provide a model parameter")
        bad = check_chat(req)
        if bad:
            return self.error(400, bad[0], param=bad[1], code=bad[2])
        if req.get("stream"):
            return self.error(400, "this test server does not stream; send \"stream\": false or leave it out",
                              param="stream")
        if ARGS.models and model not in ARGS.models:
            return self.error(404, "The model `%s` does not exist or you do not have access to it." % model,
                              code="model_not_found")
        msgs = req["messages"]
        users = [m for m in msgs if m.get("role") == "user"]
        question = text_of(users[-1].get("content")) if users else ""
        with lock:
            rule = state["rules"].get(question)
        if not isinstance(rule, dict):
            rule = {"content": question if rule is None else rule}
        if "latency_ms" in rule:
            self.due += rule["latency_ms"] / 1000.0
        if "status" in rule:
            hdrs = [("Retry-After", str(rule["retry_after"]))] if "retry_after" in rule else []
            msg = rule.get("message", "injected fault for this message")
            return self.error(rule["status"], msg, "server_error" if rule["status"] >= 500 else "invalid_request_error",
                              headers=hdrs)
        content = rule.get("content")
        finish = rule.get("finish_reason", "stop")
        if isinstance(content, str):
            limit = req.get("max_completion_tokens") or req.get("max_tokens")
            stop = req.get("stop")
            stops = [stop] if isinstance(stop, str) else (stop or [])
            cut = min([content.find(x) for x in stops if x in content] or [-1])
            if cut >= 0:
                content = content[:cut]
            toks = list(TOKEN_RE.finditer(content))
            if limit and len(toks) > limit:
                content = content[:toks[limit - 1].end()]
                finish = "length"
        completion = count_tokens(content) if isinstance(content, str) else 0
        prompt = sum(count_tokens(text_of(m.get("content"))) + 3 for m in msgs)
        n = req.get("n") or 1
        rid = "chatcmpl-" + hashlib.sha256(raw).hexdigest()[:24]
        with lock:
            state["chat_answers"] += 1
        self.reply(200, {
            "id": rid, "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": i, "message": {"role": "assistant", "content": content,
                                                 "refusal": rule.get("refusal")},
                         "logprobs": None, "finish_reason": finish} for i in range(n)],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion * n,
                      "total_tokens": prompt + completion * n,
                      "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                      "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                                    "accepted_prediction_tokens": 0,
                                                    "rejected_prediction_tokens": 0}},
            "service_tier": "default", "system_fingerprint": "fp_plumb_test"})


# The request fields of OpenAI's chat-completions reference; any other is refused.
CHAT_FIELDS = {
    "model", "messages", "audio", "frequency_penalty", "function_call", "functions",
    "logit_bias", "logprobs", "max_completion_tokens", "max_tokens", "metadata", "modalities",
    "n", "parallel_tool_calls", "prediction", "presence_penalty", "prompt_cache_key",
    "reasoning_effort", "response_format", "safety_identifier", "seed", "service_tier", "stop",
    "store", "stream", "stream_options", "temperature", "tool_choice", "tools", "top_logprobs",
    "top_p", "user", "verbosity", "web_search_options"}
ROLES = ("system", "assistant", "user", "function", "tool", "developer")
PART_TYPES = ("text", "image_url", "input_audio", "file", "refusal")


def jtype(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int):
        return "an integer"
    if isinstance(v, float):
        return "a decimal"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    return "an object"


def text_of(content):
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def check_number(req, name, lo, hi, integer):
    """OpenAI's message for a parameter of the wrong type or range, or None."""
    v = req.get(name)
    if v is None:
        return None
    kind = "integer" if integer else "decimal"
    ok = isinstance(v, int) if integer else isinstance(v, (int, float))
    if isinstance(v, bool) or not ok:
        return ("Invalid type for '%s': expected %s %s, but got %s instead."
                % (name, "an" if integer else "a", kind, jtype(v)), name, "invalid_type")
    if lo is not None and v < lo:
        return ("Invalid '%s': %s below minimum value. Expected a value >= %s, but got %s instead."
                % (name, kind, lo, v), name, "%s_below_min_value" % kind)
    if hi is not None and v > hi:
        return ("Invalid '%s': %s above maximum value. Expected a value <= %s, but got %s instead."
                % (name, kind, hi, v), name, "%s_above_max_value" % kind)
    return None


def check_chat(req):
    """(message, param, code) for a request OpenAI refuses, or None."""
    if "messages" not in req:
        return ("Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
    msgs = req["messages"]
    if not isinstance(msgs, list):
        return ("Invalid type for 'messages': expected an array of objects, but got %s instead."
                % jtype(msgs), "messages", "invalid_type")
    if not msgs:
        return ("Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
                "messages", "empty_array")
    for i, m in enumerate(msgs):
        p = "messages[%d]" % i
        if not isinstance(m, dict):
            return ("Invalid type for '%s': expected an object, but got %s instead." % (p, jtype(m)),
                    p, "invalid_type")
        if "role" not in m:
            return ("Missing required parameter: '%s.role'." % p, p + ".role", "missing_required_parameter")
        if m["role"] not in ROLES:
            return ("Invalid value: %s. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'."
                    % (("'%s'" % m["role"]) if isinstance(m["role"], str) else json.dumps(m["role"])),
                    p + ".role", "invalid_value")
        c = m.get("content")
        if c is None and m["role"] != "assistant":
            return ("Missing required parameter: '%s.content'." % p, p + ".content", "missing_required_parameter")
        if c is not None and not isinstance(c, (str, list)):
            return ("Invalid type for '%s.content': expected one of a string or array of objects, but got %s instead."
                    % (p, jtype(c)), p + ".content", "invalid_type")
        for k, part in enumerate(c if isinstance(c, list) else []):
            q = "%s.content[%d]" % (p, k)
            if not isinstance(part, dict) or part.get("type") not in PART_TYPES:
                return ("Invalid value: %s. Supported values are: 'text', 'image_url', 'input_audio', 'refusal', and 'file'."
                        % json.dumps(part.get("type") if isinstance(part, dict) else part),
                        q + ".type", "invalid_value")
            if part["type"] == "text" and not isinstance(part.get("text"), str):
                return ("Missing required parameter: '%s.text'." % q, q + ".text", "missing_required_parameter")
        if m["role"] == "tool" and not isinstance(m.get("tool_call_id"), str):
            return ("Missing required parameter: '%s.tool_call_id'." % p, p + ".tool_call_id",
                    "missing_required_parameter")
        if "name" in m and not isinstance(m["name"], str):
            return ("Invalid type for '%s.name': expected a string, but got %s instead." % (p, jtype(m["name"])),
                    p + ".name", "invalid_type")
    for name, lo, hi, integer in (("temperature", 0, 2, False), ("top_p", 0, 1, False),
                                  ("max_tokens", 1, None, True),
                                  ("max_completion_tokens", 1, None, True),
                                  ("seed", None, None, True), ("n", 1, 128, True)):
        bad = check_number(req, name, lo, hi, integer)
        if bad:
            return bad
    stop = req.get("stop")
    if stop is not None and not isinstance(stop, str):
        if not isinstance(stop, list) or not all(isinstance(x, str) for x in stop):
            return ("Invalid type for 'stop': expected one of a string or array of strings, but got %s instead."
                    % jtype(stop), "stop", "invalid_type")
        if len(stop) > 4:
            return ("Invalid 'stop': array too long. Expected an array with maximum length 4, but got an array with length %d instead."
                    % len(stop), "stop", "array_above_max_length")
    if "stream" in req and req["stream"] is not None and not isinstance(req["stream"], bool):
        return ("Invalid type for 'stream': expected a boolean, but got %s instead." % jtype(req["stream"]),
                "stream", "invalid_type")
    return None


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
    p.add_argument("--chat-rules")
    ARGS = p.parse_args()
    ARGS.models = [m for m in ARGS.models.split(",") if m]
    reset()
    srv = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    srv.daemon_threads = True
    srv.request_queue_size = 128
    if ARGS.port_file:
        announce(ARGS.port_file, srv.server_address[1])
    srv.serve_forever()


if __name__ == "__main__":
    main()
