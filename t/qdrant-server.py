#!/usr/bin/env python3
"""A Qdrant test server for plumb's tests and benchmarks (python3 stdlib only).

It follows Qdrant's REST API (OpenAPI v1.19) for what plumb and Qdrant's own
clients use: collections (create, get, list, exists, delete), payload indexes,
points (upsert in the list and the batch form, retrieve, delete by ids or by
filter, scroll, count), query and query/batch, and the older search and
search/batch. Requests are validated as Qdrant validates them and answered in
Qdrant's envelope: {"result":...,"status":"ok","time":...}, or on error
{"status":{"error":"..."},"time":...} with Qdrant's status codes (400 format
or input errors, 422 validation errors, 404 missing collection, 409 existing
collection, 401 without the configured API key). Cosine collections hold
normalized vectors, as Qdrant's do. Everything lives in memory.

Beyond the API, for tests (never authenticated):
  GET    /__stats            request counters
  GET    /__log[?since=N]    every request: method, path, status, fault, points
  GET    /__points/NAME      all points of a collection, ordered by id
  POST   /__reset            forget collections, faults, log, counters, config
  POST   /__config           {"api_key":..., "read_only_api_key":...}
  POST   /__faults           add fault rules (an object, or a list of them)
  GET    /__faults           the rules, with what is left of them
  DELETE /__faults           remove all rules

A fault rule matches requests by "path" (a substring of the path), "method",
skips the first "skip" matches, applies to "times" of them (default 1; 0 for
every one) or a "fraction" (probability), and then: waits "delay" seconds;
answers "status" (with "retry_after" seconds and an error "body"); or "drop"s
the connection without a response. With "apply": true the request is carried
out first and only its response is replaced or dropped (a write that happened
but whose answer was lost).

It is a test server, not product: point plumb at a real Qdrant for real work.
usage: qdrant-server.py [--host H] [--port N] [--port-file F] [--api-key K]
                        [--read-only-api-key K] [--fault JSON]... [--log-bodies]
                        [--tls-cert PEM --tls-key PEM] [--verbose]
"""
import argparse
import json
import math
import random
import re
import socket
import sys
import threading
import time
import uuid
from array import array
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from helpers.testhttp import Dispatch, announce

VERSION = "1.19.0"
MAX_DIM = 65536
DISTANCES = ("Cosine", "Euclid", "Dot", "Manhattan")
SCHEMA_TYPES = ("keyword", "integer", "float", "geo", "text", "bool", "datetime", "uuid")
UUID_RE = re.compile(
    r"^(?:urn:uuid:)?(?:\{[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}"
    r"|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{32})$")
REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 408: "Request Timeout", 409: "Conflict",
           422: "Unprocessable Entity", 429: "Too Many Requests", 500: "Internal Server Error",
           501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
           504: "Gateway Timeout"}


class ApiError(Exception):
    """An error answer: Qdrant's JSON shape, or plain text (auth errors)."""

    def __init__(self, status, message, plain=False, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.plain = plain
        self.headers = headers or {}


def format_error(msg):
    return ApiError(400, "Format error in JSON body: " + msg)


def validation_error(path, msg):
    return ApiError(422, "Validation error in JSON body: [%s: %s]" % (path, msg))


def wrong_input(msg):
    return ApiError(400, "Wrong input: " + msg)


def unsupported(what):
    return ApiError(501, "the Qdrant test server does not implement " + what)


def no_collection(name):
    return ApiError(404, "Not found: Collection `%s` doesn't exist!" % name)


def jtype(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean `%s`" % ("true" if v else "false")
    if isinstance(v, int):
        return "integer `%d`" % v
    if isinstance(v, float):
        return "floating point `%s`" % v
    if isinstance(v, str):
        return "string %s" % json.dumps(v)
    if isinstance(v, list):
        return "sequence"
    return "map"


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# --- point ids -------------------------------------------------------------------

def parse_id(v):
    """A normalized point id: an int, or a lower-case hyphenated UUID string."""
    if is_int(v) and 0 <= v < 2 ** 64:
        return v
    if isinstance(v, str) and UUID_RE.match(v):
        return str(uuid.UUID(v))
    shown = v if isinstance(v, str) else json.dumps(v)
    raise format_error("value %s is not a valid point ID, valid values are either an unsigned "
                       "integer or a UUID" % shown)


def id_key(pid):
    """Qdrant's order of ids: integers first, by value; then UUIDs, by value."""
    return (0, pid) if isinstance(pid, int) else (1, uuid.UUID(pid).int)


# --- payloads and filters ----------------------------------------------------------

def field_values(payload, key):
    """The values at a payload key path ("a.b", "a[].b"), arrays flattened."""
    cur = [payload]
    for part in key.split("."):
        name = part[:-2] if part.endswith("[]") else part
        nxt = []
        for c in cur:
            if isinstance(c, dict) and name in c:
                v = c[name]
                if isinstance(v, list):
                    nxt.extend(v)
                else:
                    nxt.append(v)
        cur = nxt
    return cur


PATH_PART = re.compile(r"^([^\[\]]*)((?:\[\d*\])*)$")


def path_values(payload, key):
    """The values at a key path as Qdrant's JsonPath finds them: "a.b" looks
    into objects only, "a[]" into every element of an array, "a[2]" into one.
    A value found is not flattened: an array is one value."""
    cur = [payload]
    for part in key.split("."):
        mo = PATH_PART.match(part)
        if not mo:
            return []
        name, steps = mo.group(1), re.findall(r"\[(\d*)\]", mo.group(2))
        nxt = []
        for c in cur:
            if not (isinstance(c, dict) and name in c):
                continue
            vals = [c[name]]
            for step in steps:
                vals = [x for v in vals if isinstance(v, list)
                        for x in (v if step == "" else v[int(step):int(step) + 1])]
            nxt.extend(vals)
        cur = nxt
    return cur


# Qdrant deserializes filters with serde (lib/segment/src/types.rs): the
# messages below are serde's for those types, and where a type is an untagged
# enum, what went wrong inside a variant is not said, only that none matched.
CONDITION_EXPECTING = (
    'Expected some form of condition, which can be a field condition (like {"key": ..., '
    '"match": ... }), or some other mentioned in the documentation: '
    "https://qdrant.tech/documentation/concepts/filtering/#filtering-conditions")
FILTER_KEYS = ("should", "min_should", "must", "must_not")
BOUNDS = ("lt", "gt", "gte", "lte")


def untagged(name):
    return format_error("data did not match any variant of untagged enum %s" % name)


def any_variants(lst):
    """AnyVariants: a list of strings, or of integers (an empty one is strings)."""
    if isinstance(lst, list) and all(isinstance(x, str) for x in lst):
        return str, set(lst)
    if isinstance(lst, list) and all(is_int(x) and -2 ** 63 <= x < 2 ** 63 for x in lst):
        return int, set(lst)
    return None


def compile_match(m):
    """Match (via MatchInterface, untagged): a test of one payload value."""
    if isinstance(m, dict):
        want = m.get("value")
        if isinstance(want, (str, bool)) or (is_int(want) and -2 ** 63 <= want < 2 ** 63):
            if isinstance(want, bool):
                return lambda v: isinstance(v, bool) and v == want
            if isinstance(want, str):
                return lambda v: isinstance(v, str) and v == want
            return lambda v: is_int(v) and v == want
        for k in ("text", "phrase"):
            if isinstance(m.get(k), str):
                t = m[k]
                return lambda v: isinstance(v, str) and t in v
        if isinstance(m.get("text_any"), str):
            toks = m["text_any"].split()
            return lambda v: isinstance(v, str) and any(t in v for t in toks)
        if isinstance(m.get("prefix"), str):
            pre = m["prefix"]
            return lambda v: isinstance(v, str) and v.startswith(pre)
        if "any" in m and any_variants(m["any"]):
            kind, vals = any_variants(m["any"])
            if kind is str:
                return lambda v: isinstance(v, str) and v in vals
            return lambda v: is_int(v) and v in vals
        if "except" in m and any_variants(m["except"]):
            kind, vals = any_variants(m["except"])

            def except_(v):
                if v is None:
                    return False
                if kind is str and isinstance(v, str):
                    return v not in vals
                if kind is int and is_num(v):
                    return not is_int(v) or v not in vals	# a float is no i64: matches
                return True
            return except_
    raise untagged("MatchInterface")


def compile_range(r):
    """RangeInterface: numeric bounds (unknown members ignored); a string
    bound makes it a datetime range."""
    if isinstance(r, dict) and any(isinstance(r.get(k), str) for k in BOUNDS):
        raise unsupported("datetime ranges")
    if not isinstance(r, dict) or any(r.get(k) is not None and not is_num(r[k]) for k in BOUNDS):
        raise untagged("RangeInterfaceUntagged")
    lt, gt, gte, lte = (None if r.get(k) is None else float(r[k]) for k in BOUNDS)

    def ok(v):
        if not is_num(v):
            return False
        x = float(v)
        return (lt is None or x < lt) and (gt is None or x > gt) and \
            (gte is None or x >= gte) and (lte is None or x <= lte)
    return ok


def compile_values_count(vc):
    if not isinstance(vc, dict):
        raise format_error("invalid type: %s, expected struct ValuesCount" % jtype(vc))
    for k in BOUNDS:
        v = vc.get(k)
        if v is not None and not is_int(v):
            raise format_error("invalid type: %s, expected usize" % jtype(v))
        if v is not None and v < 0:
            raise format_error("invalid value: integer `%d`, expected usize" % v)
    lt, gt, gte, lte = (vc.get(k) for k in BOUNDS)
    return lambda n: (lt is None or n < lt) and (gt is None or n > gt) and \
        (gte is None or n >= gte) and (lte is None or n <= lte)


def opt_bool(v):
    if v is None or isinstance(v, bool):
        return v
    raise format_error("invalid type: %s, expected a boolean" % jtype(v))


def compile_field_condition(c, path, invalid):
    """FieldCondition, checked as Qdrant's condition_checker.rs does: each value
    at the key (an array's elements for match and range), any one passing;
    values_count, is_empty and is_null take precedence in that order, and a
    missing key passes only those."""
    key = c["key"]
    tests = []
    if c.get("match") is not None:
        tests.append(compile_match(c["match"]))
    if c.get("range") is not None:
        tests.append(compile_range(c["range"]))
    for geo in ("geo_bounding_box", "geo_radius", "geo_polygon"):
        if c.get(geo) is not None:
            raise unsupported("geo conditions")
    count = compile_values_count(c["values_count"]) if c.get("values_count") is not None else None
    empty, null = opt_bool(c.get("is_empty")), opt_bool(c.get("is_null"))
    if not tests and count is None and empty is None and null is None:
        invalid.append((path, "At least one field condition must be specified"))

    def one(v):
        if count is not None:
            return count(0 if v is None else len(v) if isinstance(v, list) else 1)
        if empty is not None:
            return (v is None or v == []) == empty
        if null is not None:
            return (v is None or (isinstance(v, list) and None in v)) == null
        return any(t(x) for x in (v if isinstance(v, list) else [v]) for t in tests)

    def missing():
        if count is not None:
            return count(0)
        if empty is not None:
            return empty
        if null is not None:
            return not null
        return False

    def pred(p):
        vals = path_values(p.payload, key)
        return any(one(v) for v in vals) if vals else missing()
    return pred


def compile_other_condition(c, path, invalid):
    """The other Condition variants, untagged: the first that fits."""
    if isinstance(c, dict):
        for kind in ("is_empty", "is_null"):
            spec = c.get(kind)
            if isinstance(spec, dict) and isinstance(spec.get("key"), str):
                key = spec["key"]
                if kind == "is_empty":
                    return lambda p: all(v is None or v == [] for v in path_values(p.payload, key))
                return lambda p: any(v is None for v in path_values(p.payload, key))
        if isinstance(c.get("has_id"), list):
            try:
                want = {parse_id(i) for i in c["has_id"]}
                return lambda p: p.id in want
            except ApiError:
                pass
        if isinstance(c.get("has_vector"), str):
            name = c["has_vector"]
            return lambda p: name == ""
        if "slice" in c:
            raise unsupported("slice conditions")
        if "nested" in c:
            raise unsupported("nested conditions")
        if all(k in FILTER_KEYS for k in c):
            mark = len(invalid)
            try:
                return compile_filter_into(c, path, invalid)
            except ApiError as e:
                if e.status != 400:
                    raise
                del invalid[mark:]
    raise format_error(CONDITION_EXPECTING)


def compile_condition(c, path, invalid):
    if isinstance(c, dict) and "key" in c:
        if not isinstance(c["key"], str):
            raise format_error("Filter condition 'key' must be a string")
        return compile_field_condition(c, path, invalid)
    return compile_other_condition(c, path, invalid)


def compile_filter_into(f, path, invalid):
    """A Filter's predicate; validation errors (422, reported only when the
    whole body deserializes) are added to invalid. Members are read in their
    order, so the first error is the one serde meets."""
    if not isinstance(f, dict):
        raise format_error("invalid type: %s, expected struct Filter" % jtype(f))
    got = {}
    for name, v in f.items():
        if name not in FILTER_KEYS:
            raise format_error("unknown field `%s`, expected one of `should`, `min_should`, "
                               "`must`, `must_not`" % name)
        if v is None:
            got[name] = None
        elif name == "min_should":
            got[name] = compile_min_should(v, path + ".min_should", invalid)
        elif isinstance(v, dict):	# MaybeOneOrMany: one condition, or a list
            got[name] = [compile_condition(v, "%s.%s" % (path, name), invalid)]
        elif isinstance(v, list):
            got[name] = [compile_condition(c, "%s.%s[%d]" % (path, name, i), invalid)
                         for i, c in enumerate(v)]
        else:
            raise format_error("invalid type: %s, expected null, array or map" % jtype(v))
    should, must, must_not = got.get("should"), got.get("must"), got.get("must_not")
    min_should = got.get("min_should")

    # lib/segment/src/payload_storage/query_checker.rs: a clause that is absent
    # passes; a "should" that is present needs one of its conditions, so an
    # empty one passes nothing
    def pred(p):
        return (should is None or any(c(p) for c in should)) and \
            (min_should is None or min_should(p)) and \
            (must is None or all(c(p) for c in must)) and \
            (must_not is None or not any(c(p) for c in must_not))
    return pred


def compile_min_should(ms, path, invalid):
    if not isinstance(ms, dict):
        raise format_error("invalid type: %s, expected struct MinShould" % jtype(ms))
    conds, count = None, None
    for k, v in ms.items():
        if k == "conditions":
            if not isinstance(v, list):
                raise format_error("invalid type: %s, expected a sequence" % jtype(v))
            conds = [compile_condition(c, path + ".conditions[%d]" % i, invalid)
                     for i, c in enumerate(v)]
        elif k == "min_count":
            if not is_int(v):
                raise format_error("invalid type: %s, expected usize" % jtype(v))
            if v < 0:
                raise format_error("invalid value: integer `%d`, expected usize" % v)
            count = v
    for k, v in (("conditions", conds), ("min_count", count)):
        if v is None:
            raise format_error("missing field `%s`" % k)
    if count < 1:
        invalid.append((path + ".min_count", "min_count must be greater than 0"))
    return lambda p: sum(1 for c in conds if c(p)) >= count


def compile_filter(f, path="filter"):
    """A predicate on points for a Qdrant Filter (None: every point), or
    ApiError as Qdrant answers an invalid one: 400 if it does not
    deserialize, else 422 if it does not validate."""
    if f is None:
        return lambda p: True
    invalid = []
    pred = compile_filter_into(f, path, invalid)
    if invalid:
        raise ApiError(422, "Validation error in JSON body: [%s]" %
                       "; ".join("%s: %s" % pm for pm in invalid))
    return pred


def select_payload(payload, spec, default):
    """A point's payload as WithPayloadInterface asks, or None for none."""
    if spec is None:
        spec = default
    if spec is True:
        return payload
    if spec is False:
        return None
    if isinstance(spec, list) and all(isinstance(k, str) for k in spec):
        return {k: payload[k] for k in spec if k in payload}
    if isinstance(spec, dict) and set(spec) == {"include"} and isinstance(spec["include"], list):
        return {k: payload[k] for k in spec["include"] if k in payload}
    if isinstance(spec, dict) and set(spec) == {"exclude"} and isinstance(spec["exclude"], list):
        return {k: v for k, v in payload.items() if k not in spec["exclude"]}
    raise format_error("data did not match any variant of untagged enum WithPayloadInterface")


def want_vector(spec):
    if spec is None or spec is False:
        return False
    if spec is True:
        return True
    if isinstance(spec, list):
        return "" in spec
    raise format_error("data did not match any variant of untagged enum WithVector")


# --- collections and points -----------------------------------------------------------

class Point:
    __slots__ = ("id", "vec", "payload", "version", "normed")

    def __init__(self, pid, vec, payload, version):
        self.id, self.vec, self.payload, self.version = pid, vec, payload, version
        self.normed = False


class Collection:
    def __init__(self, name, size, distance, params):
        self.name, self.size, self.distance, self.params = name, size, distance, params
        self.points = {}
        self.indexes = {}
        self.kw = {}  # keyword index: field -> value -> ids, to find a document's points fast
        self.op = 0

    def index_point(self, p, add):
        for field, ids in self.kw.items():
            for v in field_values(p.payload, field):
                if isinstance(v, str):
                    if add:
                        ids.setdefault(v, set()).add(p.id)
                    else:
                        ids.get(v, set()).discard(p.id)

    def put(self, p):
        old = self.points.get(p.id)
        if old is not None and self.kw:
            self.index_point(old, False)
        self.points[p.id] = p
        if self.kw:
            self.index_point(p, True)

    def remove(self, pid):
        old = self.points.pop(pid, None)
        if old is not None and self.kw:
            self.index_point(old, False)

    def add_index(self, field, schema):
        self.indexes[field] = schema
        if schema == "keyword":
            self.kw[field] = {}
            for p in self.points.values():
                self.index_point(p, True)
        else:
            self.kw.pop(field, None)

    def select(self, f, pred):
        """The points matching filter f (compiled as pred), narrowed first by
        a keyword index when f's "must" names an indexed field."""
        cand = None
        must = f.get("must") if isinstance(f, dict) else None
        for c in (must if isinstance(must, list) else [must] if isinstance(must, dict) else []):
            if isinstance(c, dict) and c.get("key") in self.kw and isinstance(c.get("match"), dict) \
                    and isinstance(c["match"].get("value"), str):
                cand = self.kw[c["key"]].get(c["match"]["value"], set())
                break
        pts = self.points.values() if cand is None else \
            [self.points[i] for i in cand if i in self.points]
        return [p for p in pts if pred(p)]

    def vector(self, p):
        """A point's stored vector: Cosine collections hold it normalized.
        Normalizing when first read gives the same answers as at upsert."""
        if self.distance == "Cosine" and not p.normed:
            n = math.sqrt(sum(x * x for x in p.vec))
            if n > 0:
                p.vec = array("f", [x / n for x in p.vec])
            p.normed = True
        return p.vec

    def check_vector(self, v, path):
        if isinstance(v, dict):
            for name in v:
                if name != "":
                    raise wrong_input("Not existing vector name error: %s" % name)
            v = v.get("")
        if not isinstance(v, list):
            raise format_error("data did not match any variant of untagged enum VectorStruct")
        if v and isinstance(v[0], list):
            raise wrong_input("Conversion between multi and regular vectors failed")
        kinds = set(map(type, v))
        if not kinds <= {int, float}:
            raise format_error("data did not match any variant of untagged enum VectorStruct")
        if not v:
            raise validation_error(path, "dense vector must not be empty")
        if self.size is None:
            raise wrong_input("Not existing vector name error: ")
        if len(v) != self.size:
            raise wrong_input("Vector dimension error: expected dim: %d, got %d" % (self.size, len(v)))
        return array("f", v)

    def info(self):
        schema = {}
        for field, typ in self.indexes.items():
            n = sum(1 for p in self.points.values() if field_values(p.payload, field))
            schema[field] = {"data_type": typ, "params": None, "points": n}
        vectors = {"size": self.size, "distance": self.distance} if self.size else {}
        return {
            "status": "green",
            "optimizer_status": "ok",
            "indexed_vectors_count": 0,
            "points_count": len(self.points),
            "segments_count": 1,
            "config": {
                "params": {"vectors": vectors, "shard_number": 1, "replication_factor": 1,
                           "write_consistency_factor": 1, "on_disk_payload": True},
                "hnsw_config": {"m": 16, "ef_construct": 100, "full_scan_threshold": 10000,
                                "max_indexing_threads": 0, "on_disk": False},
                "optimizer_config": {"deleted_threshold": 0.2, "vacuum_min_vector_number": 1000,
                                     "default_segment_number": 0, "max_segment_size": None,
                                     "memmap_threshold": None, "indexing_threshold": 10000,
                                     "flush_interval_sec": 5, "max_optimization_threads": None},
                "wal_config": {"wal_capacity_mb": 32, "wal_segments_ahead": 0},
                "quantization_config": None,
            },
            "payload_schema": schema,
        }

    def record(self, p, with_payload, with_vector, payload_default):
        r = {"id": p.id}
        pl = select_payload(p.payload, with_payload, payload_default)
        if pl is not None:
            r["payload"] = pl
        if want_vector(with_vector):
            r["vector"] = self.vector(p).tolist()
        return r

    def score(self, qv, p):
        v = self.vector(p)
        if self.distance in ("Cosine", "Dot"):
            return sum(a * b for a, b in zip(qv, v))
        if self.distance == "Euclid":
            return math.sqrt(sum((a - b) * (a - b) for a, b in zip(qv, v)))
        return sum(abs(a - b) for a, b in zip(qv, v))

    def sorted_points(self, pred, f=None):
        return sorted(self.select(f, pred), key=lambda p: id_key(p.id))


class Faults:
    def __init__(self):
        self.rules = []
        self.lock = threading.Lock()

    def add(self, spec):
        specs = spec if isinstance(spec, list) else [spec]
        for s in specs:
            if not isinstance(s, dict):
                raise ApiError(400, "a fault rule is a JSON object")
            r = dict(s)
            r.setdefault("times", 1)
            r.setdefault("skip", 0)
            r["hits"] = 0
            with self.lock:
                self.rules.append(r)

    def match(self, method, path):
        with self.lock:
            for r in self.rules:
                if r.get("path") and r["path"] not in path:
                    continue
                if r.get("method") and r["method"].upper() != method:
                    continue
                if r["skip"] > 0:
                    r["skip"] -= 1
                    continue
                if r["times"] and r["hits"] >= r["times"]:
                    continue
                if "fraction" in r and random.random() >= float(r["fraction"]):
                    continue
                r["hits"] += 1
                return r
        return None


class State:
    def __init__(self, api_key=None, ro_key=None, faults=()):
        self.lock = threading.RLock()
        self.base_config = (api_key, ro_key)
        self.base_faults = list(faults)
        self.reset()

    def reset(self):
        with self.lock:
            self.collections = {}
            self.api_key, self.ro_key = self.base_config
            self.faults = Faults()
            for f in self.base_faults:
                self.faults.add(f)
            self.log = []
            self.seq = 0
            self.by_route = {}
            self.points_upserted = 0
            self.faulted = 0


# --- request handling ------------------------------------------------------------------

ROUTES = [
    ("GET", r"/", "root"),
    ("GET", r"/healthz", "health"), ("GET", r"/livez", "health"), ("GET", r"/readyz", "health"),
    ("GET", r"/collections", "list_collections"),
    ("GET", r"/collections/{name}", "get_collection"),
    ("PUT", r"/collections/{name}", "create_collection"),
    ("DELETE", r"/collections/{name}", "delete_collection"),
    ("PATCH", r"/collections/{name}", "update_collection"),
    ("GET", r"/collections/{name}/exists", "collection_exists"),
    ("PUT", r"/collections/{name}/index", "create_index"),
    ("DELETE", r"/collections/{name}/index/{field}", "delete_index"),
    ("PUT", r"/collections/{name}/points", "upsert"),
    ("POST", r"/collections/{name}/points", "retrieve"),
    ("GET", r"/collections/{name}/points/{id}", "get_point"),
    ("POST", r"/collections/{name}/points/delete", "delete_points"),
    ("POST", r"/collections/{name}/points/scroll", "scroll"),
    ("POST", r"/collections/{name}/points/count", "count"),
    ("POST", r"/collections/{name}/points/query", "query"),
    ("POST", r"/collections/{name}/points/query/batch", "query_batch"),
    ("POST", r"/collections/{name}/points/search", "search"),
    ("POST", r"/collections/{name}/points/search/batch", "search_batch"),
]
COMPILED = [(m, re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", p) + "$"), p, h)
            for m, p, h in ROUTES]
# Qdrant lets a read-only key do these POSTs (src/actix/auth.rs)
READ_ONLY_POSTS = {"retrieve", "count", "scroll", "query", "query_batch", "search", "search_batch"}
WRITES = {"create_collection", "delete_collection", "update_collection", "create_index",
          "delete_index", "upsert", "delete_points"}


def route(method, path):
    """(handler, params, pattern), or an ApiError: 404 unknown path, 405 method."""
    seen = False
    for m, rx, pattern, h in COMPILED:
        mo = rx.match(path)
        if mo:
            seen = True
            if m == method:
                return h, {k: unquote(v) for k, v in mo.groupdict().items()}, pattern
    raise ApiError(405 if seen else 404, "", plain=True)


class Api:
    """The Qdrant endpoints; each takes (params, query, body) and returns a result."""

    def __init__(self, state):
        self.s = state

    def coll(self, name):
        c = self.s.collections.get(name)
        if c is None:
            raise no_collection(name)
        return c

    def update_result(self, c, query):
        c.op += 1
        wait = query.get("wait", ["false"])[-1]
        if wait not in ("true", "false"):
            raise ApiError(400, "Query deserialize error: provided string was not `true` or `false`")
        return {"operation_id": c.op, "status": "completed" if wait == "true" else "acknowledged"}

    # collections

    def root(self, p, q, b):
        return {"title": "qdrant - vector search engine", "version": VERSION,
                "commit": "0000000000000000000000000000000000000000"}

    def health(self, p, q, b):
        return "healthz check passed"

    def list_collections(self, p, q, b):
        return {"collections": [{"name": n} for n in sorted(self.s.collections)]}

    def get_collection(self, p, q, b):
        return self.coll(p["name"]).info()

    def collection_exists(self, p, q, b):
        return {"exists": p["name"] in self.s.collections}

    def create_collection(self, p, q, b):
        name = p["name"]
        if not (1 <= len(name.encode()) <= 255) or any(ch in name for ch in "/\\\0"):
            raise ApiError(422, "Validation error in path parameters: [name: collection name "
                                "must be 1 to 255 characters without / or \\]")
        if b is None:
            b = {}
        if not isinstance(b, dict):
            raise format_error("invalid type: %s, expected struct CreateCollection" % jtype(b))
        vectors = b.get("vectors")
        size = distance = None
        if vectors is not None:
            if not isinstance(vectors, dict):
                raise format_error("data did not match any variant of untagged enum VectorsConfig")
            if "size" in vectors or "distance" in vectors:
                size, distance = vectors.get("size"), vectors.get("distance")
                if not is_int(size) or size < 0 or distance not in DISTANCES:
                    raise format_error("data did not match any variant of untagged enum VectorsConfig")
                if not 1 <= size <= MAX_DIM:
                    raise validation_error("vectors.size", "value %d invalid, must be from 1 to %d"
                                           % (size, MAX_DIM))
            elif vectors:
                raise unsupported("named vectors")
        if b.get("sparse_vectors"):
            raise unsupported("sparse vectors")
        for k in ("shard_number", "replication_factor", "write_consistency_factor"):
            v = b.get(k)
            if v is not None and (not is_int(v) or v < 1):
                if is_int(v):
                    raise validation_error(k, "value %d invalid, must be 1 or larger" % v)
                raise format_error("invalid type: %s, expected u32" % jtype(v))
        if name in self.s.collections:
            raise ApiError(409, "Wrong input: Collection `%s` already exists!" % name)
        self.s.collections[name] = Collection(name, size, distance, b)
        return True

    def delete_collection(self, p, q, b):
        return self.s.collections.pop(p["name"], None) is not None

    def update_collection(self, p, q, b):
        self.coll(p["name"])
        return True

    def create_index(self, p, q, b):
        c = self.coll(p["name"])
        if not isinstance(b, dict) or "field_name" not in b:
            raise format_error("missing field `field_name`")
        field = b["field_name"]
        if not isinstance(field, str):
            raise format_error("invalid type: %s, expected a string" % jtype(field))
        schema = b.get("field_schema")
        if isinstance(schema, dict):
            schema = schema.get("type")
        if schema is None:
            raise wrong_input("Can't auto-detect field type, please specify `field_schema` in the request")
        if schema not in SCHEMA_TYPES:
            raise format_error("data did not match any variant of untagged enum PayloadFieldSchema")
        c.add_index(field, schema)
        return self.update_result(c, q)

    def delete_index(self, p, q, b):
        c = self.coll(p["name"])
        c.indexes.pop(p["field"], None)
        c.kw.pop(p["field"], None)
        return self.update_result(c, q)

    # points

    def upsert(self, p, q, b):
        c = self.coll(p["name"])
        if not isinstance(b, dict) or ("points" not in b and "batch" not in b):
            raise format_error("data did not match any variant of untagged enum PointInsertOperations")
        if b.get("update_filter") is not None or b.get("shard_key") is not None:
            raise unsupported("update_filter and shard_key")
        mode = b.get("update_mode")
        if mode not in (None, "upsert", "insert_only", "update_only"):
            raise format_error("unknown variant `%s`, expected one of `upsert`, `insert_only`, "
                               "`update_only`" % mode)
        todo = []
        if "points" in b:
            pts = b["points"]
            if not isinstance(pts, list):
                raise format_error("invalid type: %s, expected a sequence" % jtype(pts))
            for i, pt in enumerate(pts):
                if not isinstance(pt, dict):
                    raise format_error("invalid type: %s, expected struct PointStruct" % jtype(pt))
                if "id" not in pt:
                    raise format_error("missing field `id`")
                if "vector" not in pt:
                    raise format_error("missing field `vector`")
                todo.append((parse_id(pt["id"]), pt["vector"], pt.get("payload"),
                             "points[%d].vector" % i))
        else:
            bt = b["batch"]
            if not isinstance(bt, dict) or "ids" not in bt or "vectors" not in bt:
                raise format_error("missing field `%s`" % ("ids" if isinstance(bt, dict) and
                                                          "ids" not in bt else "vectors"))
            ids, vecs, pls = bt["ids"], bt["vectors"], bt.get("payloads")
            if not isinstance(ids, list) or not isinstance(vecs, list) or \
                    (pls is not None and not isinstance(pls, list)):
                raise format_error("data did not match any variant of untagged enum BatchVectorStruct")
            if len(ids) != len(vecs) or (pls is not None and len(pls) != len(ids)):
                raise wrong_input("number of ids, vectors and payloads must be equal")
            for i, pid in enumerate(ids):
                todo.append((parse_id(pid), vecs[i], pls[i] if pls is not None else None,
                             "batch.vectors[%d]" % i))
        if not todo:
            # lib/collection/src/collection/point_ops.rs: no shard gets an operation
            raise ApiError(400, "Bad request: Empty update request")
        checked = []
        for pid, vec, payload, path in todo:
            if payload is not None and not isinstance(payload, dict):
                raise format_error("invalid type: %s, expected a map" % jtype(payload))
            checked.append((pid, c.check_vector(vec, path), payload or {}))
        res = self.update_result(c, q)
        for pid, vec, payload in checked:
            exists = pid in c.points
            if (mode == "insert_only" and exists) or (mode == "update_only" and not exists):
                continue
            c.put(Point(pid, vec, payload, c.op))
        self.s.points_upserted += len(checked)
        self.s.current["points"] = len(checked)
        return res

    def retrieve(self, p, q, b):
        c = self.coll(p["name"])
        if not isinstance(b, dict) or "ids" not in b:
            raise format_error("missing field `ids`")
        out = []
        for i in b["ids"]:
            pt = c.points.get(parse_id(i))
            if pt:
                out.append(c.record(pt, b.get("with_payload"), b.get("with_vector"), True))
        return out

    def get_point(self, p, q, b):
        c = self.coll(p["name"])
        raw = p["id"]
        pid = parse_id(int(raw) if raw.isdigit() else raw)
        pt = c.points.get(pid)
        if pt is None:
            raise ApiError(404, "Not found: No point with id %s found" % raw)
        return c.record(pt, True, True, True)

    def delete_points(self, p, q, b):
        c = self.coll(p["name"])
        # PointsSelector is an untagged enum of PointIdsList and FilterSelector:
        # the first that deserializes is taken, and when none does, what went
        # wrong is not said (validation comes after)
        ids = pred = None
        if isinstance(b, dict) and isinstance(b.get("points"), list):
            try:
                ids = [parse_id(i) for i in b["points"]]
            except ApiError:
                pass
        if ids is None and isinstance(b, dict) and "filter" in b:
            try:
                pred = compile_filter_into(b["filter"], "filter", [])
            except ApiError as e:
                if e.status != 400:
                    raise
            if pred is not None:
                pred = compile_filter(b["filter"])	# now for its validation errors
        if ids is None and pred is None:
            raise untagged("PointsSelector")
        if ids is not None:
            if not ids:
                raise ApiError(400, "Bad request: Empty update request")
            res = self.update_result(c, q)
            for i in ids:
                c.remove(i)
            self.s.current["ids"] = len(ids)
        else:
            res = self.update_result(c, q)
            gone = [pt.id for pt in c.select(b["filter"], pred)]
            for pid in gone:
                c.remove(pid)
            self.s.current["filter"] = b["filter"]
            self.s.current["deleted"] = len(gone)
        return res

    def limit(self, b, default, path="limit"):
        v = b.get("limit")
        if v is None:
            return default
        if not is_int(v) or v < 0:
            raise format_error("invalid type: %s, expected usize" % jtype(v))
        if v < 1:
            raise validation_error(path, "value %d invalid, must be 1 or larger" % v)
        return v

    def offset(self, b):
        v = b.get("offset")
        if v is None:
            return 0
        if not is_int(v) or v < 0:
            raise format_error("invalid type: %s, expected usize" % jtype(v))
        return v

    def scroll(self, p, q, b):
        c = self.coll(p["name"])
        b = b or {}
        if b.get("order_by") is not None:
            raise unsupported("order_by")
        limit = self.limit(b, 10)
        pred = compile_filter(b.get("filter"))
        start = b.get("offset")
        pts = c.sorted_points(pred, b.get("filter"))
        if start is not None:
            k = id_key(parse_id(start))
            pts = [pt for pt in pts if id_key(pt.id) >= k]
        page = pts[:limit]
        return {"points": [c.record(pt, b.get("with_payload"), b.get("with_vector"), True)
                           for pt in page],
                "next_page_offset": pts[limit].id if len(pts) > limit else None}

    def count(self, p, q, b):
        c = self.coll(p["name"])
        b = b or {}
        if not isinstance(b, dict):
            raise format_error("invalid type: %s, expected struct CountRequest" % jtype(b))
        # CountRequest flattens CountRequestInternal: unknown members pass,
        # members in input order
        pred = lambda p: True
        for k, v in b.items():
            if k == "exact":
                if not isinstance(v, bool):
                    raise format_error("invalid type: %s, expected a boolean" % jtype(v))
            elif k == "filter":
                pred = compile_filter(v)
        return {"count": len(c.select(b.get("filter"), pred))}

    def nearest(self, c, qv, b, limit, payload_default, exclude=None):
        """ScoredPoints for query vector qv (already checked) under b's options."""
        pred = compile_filter(b.get("filter"))
        with_payload, with_vector = b.get("with_payload"), b.get("with_vector")
        select_payload({}, with_payload, payload_default)
        want_vector(with_vector)
        offset = self.offset(b)
        thr = b.get("score_threshold")
        if thr is not None and not is_num(thr):
            raise format_error("invalid type: %s, expected f32" % jtype(thr))
        if c.distance == "Cosine":
            n = math.sqrt(sum(x * x for x in qv))
            qv = [x / n for x in qv] if n > 0 else list(qv)
        similarity = c.distance in ("Cosine", "Dot")
        scored = []
        for pt in c.select(b.get("filter"), pred):
            if pt.id == exclude:
                continue
            s = array("f", [c.score(qv, pt)])[0]
            if thr is not None and (s < thr if similarity else s > thr):
                continue
            scored.append((-s if similarity else s, id_key(pt.id), s, pt))
        scored.sort(key=lambda t: (t[0], t[1]))
        out = []
        for _, _, s, pt in scored[offset:offset + limit]:
            r = {"id": pt.id, "version": pt.version, "score": s}
            pl = select_payload(pt.payload, with_payload, payload_default)
            if pl is not None:
                r["payload"] = pl
            if want_vector(with_vector):
                r["vector"] = c.vector(pt).tolist()
            out.append(r)
        return out

    def query_vector(self, c, qi, path):
        """(vector, excluded point id) of a QueryInterface."""
        if isinstance(qi, dict):
            if "nearest" in qi:
                if qi.get("mmr") is not None:
                    raise unsupported("MMR")
                return self.query_vector(c, qi["nearest"], path + ".nearest")
            raise unsupported("query variants other than nearest")
        if isinstance(qi, list):
            if qi and not all(is_num(x) for x in qi):
                raise format_error("data did not match any variant of untagged enum QueryInterface")
            return c.check_vector(qi, path), None
        if is_int(qi) or isinstance(qi, str):
            pid = parse_id(qi)
            pt = c.points.get(pid)
            if pt is None:
                raise ApiError(404, "Not found: No point with id %s found" % pid)
            return c.vector(pt), pid
        raise format_error("data did not match any variant of untagged enum QueryInterface")

    def query_one(self, c, b, path=""):
        if not isinstance(b, dict):
            raise format_error("invalid type: %s, expected struct QueryRequest" % jtype(b))
        if b.get("prefetch") is not None:
            raise unsupported("prefetch")
        if b.get("lookup_from") is not None or b.get("shard_key") is not None:
            raise unsupported("lookup_from and shard_key")
        using = b.get("using")
        if using not in (None, ""):
            raise wrong_input("Not existing vector name error: %s" % using)
        limit = self.limit(b, 10, (path + ".limit").lstrip("."))
        if b.get("query") is None:
            pred = compile_filter(b.get("filter"))
            pts = c.sorted_points(pred, b.get("filter"))[self.offset(b):][:limit]
            return {"points": [dict({"version": pt.version, "score": 0.0},
                                    **c.record(pt, b.get("with_payload"), b.get("with_vector"), False))
                               for pt in pts]}
        qv, exclude = self.query_vector(c, b["query"], (path + ".query").lstrip("."))
        return {"points": self.nearest(c, qv, b, limit, False, exclude)}

    def query(self, p, q, b):
        return self.query_one(self.coll(p["name"]), b or {})

    def query_batch(self, p, q, b):
        c = self.coll(p["name"])
        if not isinstance(b, dict) or "searches" not in b:
            raise format_error("missing field `searches`")
        if not isinstance(b["searches"], list):
            raise format_error("invalid type: %s, expected a sequence" % jtype(b["searches"]))
        return [self.query_one(c, s, "searches[%d]" % i) for i, s in enumerate(b["searches"])]

    def search_one(self, c, b, path=""):
        if not isinstance(b, dict):
            raise format_error("invalid type: %s, expected struct SearchRequest" % jtype(b))
        if "vector" not in b:
            raise format_error("missing field `vector`")
        if "limit" not in b:
            raise format_error("missing field `limit`")
        vec = b["vector"]
        if isinstance(vec, dict) and "vector" in vec:
            if vec.get("name") not in (None, ""):
                raise wrong_input("Not existing vector name error: %s" % vec.get("name"))
            vec = vec["vector"]
        limit = self.limit(b, 10, (path + ".limit").lstrip("."))
        qv = c.check_vector(vec, (path + ".vector").lstrip("."))
        return self.nearest(c, qv, b, limit, False)

    def search(self, p, q, b):
        return self.search_one(self.coll(p["name"]), b or {})

    def search_batch(self, p, q, b):
        c = self.coll(p["name"])
        if not isinstance(b, dict) or "searches" not in b:
            raise format_error("missing field `searches`")
        return [self.search_one(c, s, "searches[%d]" % i) for i, s in enumerate(b["searches"])]


class Handler(Dispatch):
    # a reply is written at once; Nagle's algorithm would hold its tail for
    # the client's delayed ACK, 40 ms a request
    disable_nagle_algorithm = True
    server_version = "qdrant-test-server"
    sys_version = ""

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("qdrant-server: %s\n" % (fmt % args))

    def send(self, status, obj=None, text=None, headers=None):
        if text is not None:
            data = text.encode()
            ctype = "text/plain; charset=utf-8"
        elif obj is not None:
            data = json.dumps(obj, separators=(",", ":")).encode()
            ctype = "application/json"
        else:
            data = b""
            ctype = None
        self.send_response(status, REASONS.get(status))
        if ctype:
            self.send_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.send_header("Content-Length", str(len(data)))
        # headers and body in one write
        self._headers_buffer.append(b"\r\n" + data)
        self.flush_headers()

    def send_error_obj(self, e, t0):
        if e.plain:
            self.send(e.status, text=e.message, headers=e.headers)
        else:
            self.send(e.status, {"status": {"error": e.message}, "time": time.perf_counter() - t0},
                      headers=e.headers)

    def drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def serve(self, method):
        t0 = time.perf_counter()
        st = self.server.state
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query)
        raw = self.read_body()
        if path.startswith("/__"):
            return self.control(method, path, query, raw)
        entry = {"method": method, "path": path, "query": url.query, "status": None, "fault": None,
                 "t": time.time()}
        if self.server.log_bodies:
            entry["body"] = raw[:65536].decode("utf-8", "replace")
        with st.lock:
            st.seq += 1
            entry["n"] = st.seq
            st.log.append(entry)
        fault = st.faults.match(method, path)
        if fault:
            with st.lock:
                st.faulted += 1
            if fault.get("delay"):
                time.sleep(float(fault["delay"]))
            if not fault.get("apply") and (fault.get("drop") or fault.get("status")):
                return self.inject(fault, entry, t0)
        try:
            handler, params, pattern = route(method, path)
            entry["route"] = "%s %s" % (method, pattern)
            self.authorize(handler, st)
            body = None
            if raw:
                ctype = self.headers.get("Content-Type", "")
                if not ctype.startswith("application/json"):
                    raise ApiError(400, "Content type error")
                try:
                    body = json.loads(raw)
                except (ValueError, UnicodeDecodeError) as e:
                    raise format_error(str(e)) from None
            with st.lock:
                st.current = entry
                result = getattr(Api(st), handler)(params, query, body)
                st.by_route[entry["route"]] = st.by_route.get(entry["route"], 0) + 1
            status = 200
        except ApiError as e:
            if fault and fault.get("apply") and (fault.get("drop") or fault.get("status")):
                return self.inject(fault, entry, t0)
            entry["status"] = e.status
            entry["error"] = e.message
            if e.message == "" and e.plain:
                return self.send(e.status)
            return self.send_error_obj(e, t0)
        if fault and (fault.get("drop") or fault.get("status")):
            return self.inject(fault, entry, t0)
        entry["status"] = status
        if handler == "root":
            return self.send(200, result)
        if handler == "health":
            return self.send(200, text=result)
        self.send(200, {"result": result, "status": "ok", "time": time.perf_counter() - t0})

    def inject(self, fault, entry, t0):
        if fault.get("drop"):
            entry["fault"] = "drop"
            return self.drop()
        status = int(fault["status"])
        entry["fault"] = status
        entry["status"] = status
        headers = {}
        if fault.get("retry_after") is not None:
            headers["Retry-After"] = fault["retry_after"]
        msg = fault.get("body") or {
            429: "Too many requests: rate limit exceeded, retry later",
            503: "Service internal error: the service is temporarily unavailable"}.get(
                status, "Service internal error: injected fault")
        self.send_error_obj(ApiError(status, msg, headers=headers), t0)

    def authorize(self, handler, st):
        if handler in ("root", "health") or not (st.api_key or st.ro_key):
            return
        key = self.headers.get("api-key")
        if key is None:
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Bearer "):
                key = auth[7:]
        if key is None:
            raise ApiError(401, "Must provide an API key or an Authorization bearer token", plain=True)
        if st.api_key and key == st.api_key:
            return
        if st.ro_key and key == st.ro_key:
            if handler in WRITES:
                raise ApiError(403, "Forbidden: Write access denied: read-only API key")
            return
        raise ApiError(401, "Invalid API key or JWT", plain=True)

    def control(self, method, path, query, raw):
        st = self.server.state
        try:
            body = json.loads(raw) if raw else None
        except ValueError as e:
            return self.send(400, {"error": "bad JSON: %s" % e})
        with st.lock:
            if path == "/__reset" and method == "POST":
                st.reset()
                return self.send(200, {"ok": True})
            if path == "/__config" and method == "POST":
                body = body or {}
                if "api_key" in body:
                    st.api_key = body["api_key"]
                if "read_only_api_key" in body:
                    st.ro_key = body["read_only_api_key"]
                return self.send(200, {"ok": True})
            if path == "/__faults":
                if method == "POST":
                    try:
                        st.faults.add(body)
                    except ApiError as e:
                        return self.send(400, {"error": e.message})
                    return self.send(200, {"ok": True})
                if method == "DELETE":
                    st.faults = Faults()
                    return self.send(200, {"ok": True})
                if method == "GET":
                    return self.send(200, {"faults": st.faults.rules})
            if path == "/__stats" and method == "GET":
                return self.send(200, {"requests": st.seq, "by_route": st.by_route,
                                       "points_upserted": st.points_upserted,
                                       "faulted": st.faulted})
            if path == "/__log" and method == "GET":
                since = int(query.get("since", ["0"])[-1])
                return self.send(200, {"log": [e for e in st.log if e["n"] > since]})
            if path.startswith("/__points/") and method == "GET":
                c = st.collections.get(unquote(path[len("/__points/"):]))
                if c is None:
                    return self.send(404, {"error": "no such collection"})
                pts = c.sorted_points(lambda p: True)
                return self.send(200, {"points": [
                    {"id": p.id, "vector": c.vector(p).tolist(), "payload": p.payload,
                     "version": p.version} for p in pts]})
        self.send(404, {"error": "unknown control endpoint"})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description="A Qdrant test server (see the module docstring).")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 (the default) picks a free port")
    ap.add_argument("--port-file", help="write the port here once listening")
    ap.add_argument("--api-key")
    ap.add_argument("--read-only-api-key")
    ap.add_argument("--fault", action="append", default=[], help="a fault rule, as JSON")
    ap.add_argument("--log-bodies", action="store_true", help="keep request bodies in /__log")
    ap.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    ap.add_argument("--tls-key", help="and this key (PEM)")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    srv = Server((a.host, a.port), Handler)
    srv.verbose = a.verbose
    srv.log_bodies = a.log_bodies
    srv.state = State(a.api_key, a.read_only_api_key, [json.loads(f) for f in a.fault])
    if a.tls_cert:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    port = srv.server_address[1]
    if a.port_file:
        announce(a.port_file, port)
    else:
        print("listening on %s:%d" % (a.host, port), flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
