#!/usr/bin/env python3
"""A Kubernetes API test server for plumb's tests (python3 stdlib only, plus the
openssl command to make its certificates).

It follows the Kubernetes REST API (core/v1) for what dagrun's k8s executor
uses: Pods (create, get, list, watch, delete, log), ConfigMaps and Secrets
(create, get, list, delete), with Kubernetes' semantics where they matter:

  - objects carry uid, resourceVersion (one counter, like etcd's revision) and
    creationTimestamp; errors are Status objects with Kubernetes' reasons and
    messages (NotFound, AlreadyExists 409, Invalid 422 with causes, BadRequest,
    Unauthorized, TooManyRequests with Retry-After, Expired/Gone 410);
  - Pod manifests are validated as the API server validates them: names
    (DNS-1123), containers, restartPolicy, resource quantities, env, labels,
    tolerations, owner references; unknown fields are rejected under
    fieldValidation=Strict and answered with a Warning header under Warn
    (the default) as the real server does;
  - list takes labelSelector (=, ==, !=, in, notin, exists, !key),
    fieldSelector (metadata.name, metadata.namespace, status.phase), limit and
    continue; watch takes resourceVersion ("" or "0": the current objects as
    ADDED first), allowWatchBookmarks (BOOKMARK events), timeoutSeconds, and
    answers a resourceVersion older than its history with an ERROR event of
    code 410; an object that stops matching a selector is DELETED for that
    watch, one that starts matching is ADDED;
  - deleting an object deletes the Pods whose ownerReferences all point at
    deleted objects (background garbage collection);
  - authentication by bearer token, or by a client certificate signed by the
    CA it makes at start-up (--tls-dir), over TLS.

It plays the kubelet: a created Pod is "scheduled" (after --start-delay), its
containers' command+args run as local processes with the Pod's env (values,
$(VAR) references, fieldRef, configMapKeyRef, secretKeyRef, envFrom; a missing
Secret or key leaves the Pod in CreateContainerConfigError until it appears),
their stdout and stderr become the Pod's log, and its status goes Pending ->
Running -> Succeeded or Failed with containerStatuses (state.terminated with
exitCode and reason), emitting watch events. activeDeadlineSeconds ends a Pod
DeadlineExceeded. Deleting a running Pod sets deletionTimestamp, sends
SIGTERM, then SIGKILL after the grace period, then gives it a terminal phase
with its containers' exit codes (as kubelets do since Kubernetes 1.27) and
removes it. A container with neither command nor args succeeds at once with
an empty log (the test server has no images). Namespaces exist implicitly.

Beyond the API, for tests (never authenticated):
  GET    /__log[?since=N]    every request: n, method, path, query, status, user, t, fault,
                             and for a create the object's name (an audit log's objectRef)
  GET    /__stats            counters
  POST   /__reset            forget objects (killing their processes), faults, log
  POST   /__config           {"tokens": {"TOKEN": "user"}, "anonymous": bool,
                              "start_delay": s, "bookmark_interval": s}
  POST   /__compact          forget the event history: older resourceVersions get 410
  POST   /__drop-watches     drop every open watch stream (no final chunk)
  POST   /__faults           add rules (an object or a list); GET lists; DELETE clears

A fault rule matches requests by "method", "path" (substring), "query"
(substring), skips "skip" matches, applies "times" times (default 1; 0 for
always), then: waits "delay" s; answers "status" (a Status object, with
"retry_after" seconds, "reason", "message"); or "drop"s the connection. With
"watch": "gone" or "drop" it matches watch requests only and, after "after"
events on that stream, sends an ERROR 410 event and ends it, or drops it. A
rule with "pod" (a substring of a Pod's name) and "outcome" decides how that
Pod ends: "OOMKilled", "Evicted", "DeadlineExceeded" (after "after" seconds of
running, default 0.2), "ImagePullBackOff" or "ErrImagePull" (never starts).

It is a test server, not product: point plumb at a real cluster for real work.
usage: k8s-server.py [--host H] [--port N] [--port-file F] [--tls-dir D]
                     [--token TOKEN[:USER]]... [--start-delay S]
                     [--bookmark-interval S] [--history N] [--manifest-log F]
                     [--fault JSON]... [--verbose]
"""
import argparse
import base64
import copy
import datetime
import json
import os
import random
import re
import signal
import socket
import ssl
import string
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from fractions import Fraction
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from helpers.testhttp import Dispatch, announce

REASONS = {200: "OK", 201: "Created", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
           404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 410: "Gone",
           415: "Unsupported Media Type", 422: "Unprocessable Entity", 429: "Too Many Requests",
           500: "Internal Server Error", 503: "Service Unavailable", 504: "Gateway Timeout"}
STATUS_REASON = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
                 405: "MethodNotAllowed", 409: "Conflict", 410: "Gone", 415: "UnsupportedMediaType",
                 422: "Invalid", 429: "TooManyRequests", 500: "InternalError",
                 503: "ServiceUnavailable", 504: "Timeout"}
NODE = "plumb-test-node"
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
QUANTITY_RE = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
SUFFIXES = {"": 1, "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000),
            "k": 1000, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
            "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
STANDARD_RESOURCES = {"cpu", "memory", "ephemeral-storage", "storage"}


class ApiError(Exception):
    def __init__(self, code, message, reason=None, details=None, headers=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or STATUS_REASON.get(code, "Unknown")
        self.details = details
        self.headers = headers or {}

    def status(self):
        s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
             "message": self.message, "reason": self.reason, "code": self.code}
        if self.details:
            s["details"] = self.details
        return s


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def not_found(kind, name):
    return ApiError(404, '%s "%s" not found' % (kind, name), "NotFound", {"name": name, "kind": kind})


def bad_request(msg):
    return ApiError(400, msg, "BadRequest")


# --- quantities, labels, selectors -------------------------------------------------------

def parse_quantity(v):
    """A resource quantity as a Fraction, or None when it does not parse."""
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return Fraction(str(v))
    if not isinstance(v, str) or not re.match(QUANTITY_RE, v):
        return None
    m = re.match(r"^([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(.*)$", v)
    if not m:
        return None
    num = Fraction(m.group(2)) * (-1 if m.group(1) == "-" else 1)
    suf = m.group(3)
    if suf in SUFFIXES:
        return num * SUFFIXES[suf]
    e = re.match(r"^[eE]([-+]?[0-9]+)$", suf)
    if e:
        return num * Fraction(10) ** int(e.group(1))
    return None


def label_key_errors(k):
    errs = []
    prefix, _, name = k.rpartition("/")
    if prefix and (len(prefix) > 253 or not DNS1123_SUBDOMAIN.match(prefix)):
        errs.append("prefix part a lowercase RFC 1123 subdomain must consist of lower case "
                    "alphanumeric characters, '-' or '.', and must start and end with an "
                    "alphanumeric character")
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part must be no more than 63 characters")
    elif not QUALIFIED_NAME.match(name):
        errs.append("name part must consist of alphanumeric characters, '-', '_' or '.', and must "
                    "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  "
                    "or '123-abc', regex used for validation is "
                    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
    return errs


def label_value_errors(v):
    if not isinstance(v, str):
        return ["must be a string"]
    if len(v) > 63:
        return ["must be no more than 63 characters"]
    if not LABEL_VALUE.match(v):
        return ["a valid label must be an empty string or consist of alphanumeric characters, "
                "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
                "'MyValue',  or 'my_value',  or '12345', regex used for validation is "
                "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"]
    return []


def split_outside_parens(s):
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def parse_label_selector(s):
    """A predicate on a labels dict; ApiError 400 when the selector does not parse."""
    reqs = []
    if not s or not s.strip():
        return lambda labels: True
    for part in split_outside_parens(s):
        p = part.strip()
        if not p:
            raise bad_request("unable to parse requirement: found '', expected: identifier")
        m = re.match(r"^(\S+)\s+(in|notin)\s+\((.*)\)$", p)
        if m:
            key, op = m.group(1), m.group(2)
            reqs.append((key, op, {v.strip() for v in m.group(3).split(",")}))
        elif p.startswith("!"):
            reqs.append((p[1:].strip(), "!exists", None))
        elif "!=" in p:
            key, val = p.split("!=", 1)
            reqs.append((key.strip(), "!=", val.strip()))
        elif "==" in p:
            key, val = p.split("==", 1)
            reqs.append((key.strip(), "=", val.strip()))
        elif "=" in p:
            key, val = p.split("=", 1)
            reqs.append((key.strip(), "=", val.strip()))
        elif re.match(r"^[^\s()=!<>]+$", p):
            reqs.append((p, "exists", None))
        else:
            raise bad_request("unable to parse requirement: <nil>: Invalid value: \"%s\": "
                              "found '%s', expected: in, notin, =, ==, !=, gt, lt" % (p, p))
    for key, op, val in reqs:
        errs = label_key_errors(key)
        if errs:
            raise bad_request("unable to parse requirement: values[0][%s]: Invalid value: \"%s\": %s"
                              % (key, key, errs[0]))
        for v in (val if isinstance(val, set) else [val] if val is not None else []):
            errs = label_value_errors(v)
            if errs:
                raise bad_request("unable to parse requirement: values[0][%s]: Invalid value: \"%s\": %s"
                                  % (key, v, errs[0]))

    def pred(labels):
        labels = labels or {}
        for key, op, val in reqs:
            have = key in labels
            cur = labels.get(key)
            if op == "=" and not (have and cur == val):
                return False
            if op == "!=" and have and cur == val:
                return False
            if op == "in" and not (have and cur in val):
                return False
            if op == "notin" and have and cur in val:
                return False
            if op == "exists" and not have:
                return False
            if op == "!exists" and have:
                return False
        return True
    return pred


FIELDS = {"metadata.name": lambda o: o["metadata"].get("name"),
          "metadata.namespace": lambda o: o["metadata"].get("namespace"),
          "status.phase": lambda o: (o.get("status") or {}).get("phase"),
          "spec.nodeName": lambda o: (o.get("spec") or {}).get("nodeName")}


def parse_field_selector(s, kind):
    reqs = []
    if not s:
        return lambda o: True
    for p in s.split(","):
        m = re.match(r"^([^=!]+)(==|=|!=)(.*)$", p.strip())
        if not m:
            raise bad_request("invalid selector: '%s'; can't understand '%s'" % (s, p))
        f = m.group(1).strip()
        if f not in FIELDS or (kind != "Pod" and f not in ("metadata.name", "metadata.namespace")):
            raise bad_request('field label not supported: %s' % f)
        reqs.append((FIELDS[f], m.group(2) != "!=", m.group(3).strip()))
    return lambda o: all((get(o) == v) == eq for get, eq, v in reqs)


# --- manifest checks ---------------------------------------------------------------------

ANY = "any"
MAP = "map"
LIST = "list"
ENV_FIELDS = {"name": None, "value": None, "valueFrom": {
    "fieldRef": {"apiVersion": None, "fieldPath": None},
    "resourceFieldRef": ANY,
    "configMapKeyRef": {"name": None, "key": None, "optional": None},
    "secretKeyRef": {"name": None, "key": None, "optional": None}}}
CONTAINER = {
    "name": None, "image": None, "command": LIST, "args": LIST, "workingDir": None, "ports": ANY,
    "envFrom": [{"prefix": None, "configMapRef": {"name": None, "optional": None},
                 "secretRef": {"name": None, "optional": None}}],
    "env": [ENV_FIELDS], "resources": {"limits": MAP, "requests": MAP, "claims": ANY},
    "resizePolicy": ANY, "restartPolicy": None, "volumeMounts": ANY, "volumeDevices": ANY,
    "livenessProbe": ANY, "readinessProbe": ANY, "startupProbe": ANY, "lifecycle": ANY,
    "terminationMessagePath": None, "terminationMessagePolicy": None, "imagePullPolicy": None,
    "securityContext": ANY, "stdin": None, "stdinOnce": None, "tty": None}
METADATA = {
    "name": None, "generateName": None, "namespace": None, "labels": MAP, "annotations": MAP,
    "ownerReferences": [{"apiVersion": None, "kind": None, "name": None, "uid": None,
                         "controller": None, "blockOwnerDeletion": None}],
    "finalizers": LIST, "uid": None, "resourceVersion": None, "creationTimestamp": None,
    "deletionTimestamp": None, "deletionGracePeriodSeconds": None, "generation": None,
    "managedFields": ANY, "selfLink": None}
POD_SPEC = {
    "volumes": ANY, "initContainers": [CONTAINER], "containers": [CONTAINER],
    "ephemeralContainers": ANY, "restartPolicy": None, "terminationGracePeriodSeconds": None,
    "activeDeadlineSeconds": None, "dnsPolicy": None, "nodeSelector": MAP,
    "serviceAccountName": None, "serviceAccount": None, "automountServiceAccountToken": None,
    "nodeName": None, "hostNetwork": None, "hostPID": None, "hostIPC": None,
    "shareProcessNamespace": None, "securityContext": ANY,
    "imagePullSecrets": [{"name": None}], "hostname": None, "subdomain": None, "affinity": ANY,
    "schedulerName": None,
    "tolerations": [{"key": None, "operator": None, "value": None, "effect": None,
                     "tolerationSeconds": None}],
    "hostAliases": ANY, "priorityClassName": None, "priority": None, "dnsConfig": ANY,
    "readinessGates": ANY, "runtimeClassName": None, "enableServiceLinks": None,
    "preemptionPolicy": None, "overhead": ANY, "topologySpreadConstraints": ANY,
    "setHostnameAsFQDN": None, "os": ANY, "hostUsers": None, "schedulingGates": ANY,
    "resourceClaims": ANY, "resources": ANY}
SCHEMAS = {
    "Pod": {"apiVersion": None, "kind": None, "metadata": METADATA, "spec": POD_SPEC, "status": ANY},
    "ConfigMap": {"apiVersion": None, "kind": None, "metadata": METADATA, "data": MAP,
                  "binaryData": MAP, "immutable": None},
    "Secret": {"apiVersion": None, "kind": None, "metadata": METADATA, "data": MAP,
               "stringData": MAP, "type": None, "immutable": None}}


def unknown_fields(obj, schema, path, out):
    if schema is None or schema in (ANY, MAP, LIST):
        return
    if isinstance(schema, list):
        if isinstance(obj, list):
            for i, it in enumerate(obj):
                unknown_fields(it, schema[0], "%s[%d]" % (path, i), out)
        return
    if not isinstance(obj, dict):
        return
    for k, v in obj.items():
        p = "%s.%s" % (path, k) if path else k
        if k not in schema:
            out.append(p)
        else:
            unknown_fields(v, schema[k], p, out)


class Causes:
    def __init__(self):
        self.list = []

    def add(self, reason, field, message):
        self.list.append({"reason": reason, "message": message, "field": field})

    def required(self, field, detail=""):
        self.add("FieldValueRequired", field, "Required value" + (": " + detail if detail else ""))

    def invalid(self, field, value, detail):
        self.add("FieldValueInvalid", field, "Invalid value: %s: %s" % (json.dumps(value), detail))

    def unsupported(self, field, value, supported):
        self.add("FieldValueNotSupported", field, "Unsupported value: %s: supported values: %s"
                 % (json.dumps(value), ", ".join('"%s"' % s for s in supported)))

    def duplicate(self, field, value):
        self.add("FieldValueDuplicate", field, "Duplicate value: %s" % json.dumps(value))

    def error(self, kind, name):
        msgs = ["%s: %s" % (c["field"], c["message"]) for c in self.list]
        text = msgs[0] if len(msgs) == 1 else "[" + ", ".join(msgs) + "]"
        return ApiError(422, '%s "%s" is invalid: %s' % (kind, name, text), "Invalid",
                        {"name": name, "kind": kind, "causes": self.list})


SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                 "'-' or '.', and must start and end with an alphanumeric character (e.g. "
                 "'example.com', regex used for validation is "
                 "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
             "'-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
             "'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")


def check_meta(meta, c, ns):
    name = meta.get("name")
    if not name and not meta.get("generateName"):
        c.required("metadata.name", "name or generateName is required")
    elif name is not None:
        if not isinstance(name, str) or len(name) > 253 or not DNS1123_SUBDOMAIN.match(name):
            c.invalid("metadata.name", name, SUBDOMAIN_MSG)
    for what in ("labels", "annotations"):
        m = meta.get(what)
        if m is None:
            continue
        if not isinstance(m, dict):
            c.invalid("metadata." + what, m, "must be a map")
            continue
        for k, v in m.items():
            for e in label_key_errors(k):
                c.invalid("metadata.%s" % what, k, e)
            if what == "labels":
                for e in label_value_errors(v):
                    c.invalid("metadata.labels", v, e)
            elif not isinstance(v, str):
                c.invalid("metadata.annotations", v, "must be a string")
    for i, o in enumerate(meta.get("ownerReferences") or []):
        f = "metadata.ownerReferences[%d]" % i
        if not isinstance(o, dict):
            c.invalid(f, o, "must be an object")
            continue
        for k in ("apiVersion", "kind", "name", "uid"):
            if not o.get(k):
                c.invalid(f + "." + k, o.get(k, ""), k + " must not be empty")


def check_resources(res, f, c, quantity_errors):
    if res is None:
        return
    parsed = {}
    for part in ("limits", "requests"):
        m = res.get(part) or {}
        if not isinstance(m, dict):
            continue
        for rname, q in m.items():
            v = parse_quantity(q)
            if v is None:
                quantity_errors.append(q)
                continue
            if rname not in STANDARD_RESOURCES and "/" not in rname and not rname.startswith("hugepages-"):
                c.invalid("%s.resources.%s[%s]" % (f, part, rname), rname,
                          "must be a standard resource type or fully qualified")
            if v < 0:
                c.invalid("%s.resources.%s[%s]" % (f, part, rname), q,
                          "must be greater than or equal to 0")
            parsed.setdefault(part, {})[rname] = (q, v)
    lim, req = parsed.get("limits", {}), parsed.get("requests", {})
    for rname, (q, v) in req.items():
        extended = "/" in rname and not rname.startswith("kubernetes.io/")
        if extended:
            if rname not in lim:
                c.required("%s.resources.limits" % f,
                           "Limit must be set for non overcommitable resources")
            elif lim[rname][1] != v:
                c.invalid("%s.resources.requests" % f, q,
                          "must be equal to %s limit of %s" % (rname, lim[rname][0]))
        elif rname in lim and v > lim[rname][1]:
            c.invalid("%s.resources.requests" % f, q,
                      "must be less than or equal to %s limit of %s" % (rname, lim[rname][0]))


def check_container(ct, f, c, names, quantity_errors):
    if not isinstance(ct, dict):
        c.invalid(f, ct, "must be an object")
        return
    name = ct.get("name")
    if not name:
        c.required(f + ".name")
    elif not isinstance(name, str) or len(name) > 63 or not DNS1123_LABEL.match(name):
        c.invalid(f + ".name", name, LABEL_MSG)
    elif name in names:
        c.duplicate(f + ".name", name)
    else:
        names.add(name)
    if not ct.get("image"):
        c.required(f + ".image")
    for what in ("command", "args"):
        v = ct.get(what)
        if v is not None and (not isinstance(v, list) or not all(isinstance(x, str) for x in v)):
            c.invalid(f + "." + what, v, "must be a list of strings")
    seen_env = 0
    for j, e in enumerate(ct.get("env") or []):
        ef = "%s.env[%d]" % (f, j)
        if not isinstance(e, dict):
            c.invalid(ef, e, "must be an object")
            continue
        seen_env += 1
        n = e.get("name")
        if not n:
            c.required(ef + ".name")
        elif not ENV_NAME.match(n):
            c.invalid(ef + ".name", n, "a valid environment variable name must consist of "
                      "alphabetic characters, digits, '_', '-', or '.', and must not start with a "
                      "digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used "
                      "for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')")
        vf = e.get("valueFrom")
        if vf is not None:
            if e.get("value"):
                c.invalid(ef + ".valueFrom", "", "may not be specified when `value` is not empty")
            sources = [k for k in ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef")
                       if isinstance(vf, dict) and vf.get(k) is not None]
            if len(sources) != 1:
                c.invalid(ef + ".valueFrom", "", "must specify one of: `fieldRef`, "
                          "`resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`" if not sources
                          else "may not have more than one field specified at a time")
            for k in ("configMapKeyRef", "secretKeyRef"):
                ref = vf.get(k) if isinstance(vf, dict) else None
                if isinstance(ref, dict):
                    if not ref.get("name"):
                        c.required("%s.valueFrom.%s.name" % (ef, k))
                    if not ref.get("key"):
                        c.required("%s.valueFrom.%s.key" % (ef, k))
            fr = vf.get("fieldRef") if isinstance(vf, dict) else None
            if isinstance(fr, dict) and not fr.get("fieldPath"):
                c.required(ef + ".valueFrom.fieldRef.fieldPath")
    for j, e in enumerate(ct.get("envFrom") or []):
        ef = "%s.envFrom[%d]" % (f, j)
        refs = [k for k in ("configMapRef", "secretRef") if isinstance(e, dict) and e.get(k)]
        if len(refs) != 1:
            c.invalid(ef, "", "must specify one of: `configMapRef` or `secretRef`")
    check_resources(ct.get("resources"), f, c, quantity_errors)
    pp = ct.get("imagePullPolicy")
    if pp is not None and pp not in ("Always", "IfNotPresent", "Never"):
        c.unsupported(f + ".imagePullPolicy", pp, ["Always", "IfNotPresent", "Never"])


def check_pod(pod, ns):
    """Raises the ApiError the API server would answer for this Pod."""
    c = Causes()
    meta = pod.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
        pod["metadata"] = meta
    check_meta(meta, c, ns)
    spec = pod.get("spec")
    quantity_errors = []
    if not isinstance(spec, dict):
        c.required("spec.containers")
        spec = {}
    cts = spec.get("containers")
    if not cts:
        c.required("spec.containers")
    elif not isinstance(cts, list):
        c.invalid("spec.containers", cts, "must be a list")
    else:
        names = set()
        for i, ct in enumerate(cts):
            check_container(ct, "spec.containers[%d]" % i, c, names, quantity_errors)
        for i, ct in enumerate(spec.get("initContainers") or []):
            check_container(ct, "spec.initContainers[%d]" % i, c, names, quantity_errors)
    rp = spec.get("restartPolicy")
    if rp is not None and rp not in ("Always", "OnFailure", "Never"):
        c.unsupported("spec.restartPolicy", rp, ["Always", "OnFailure", "Never"])
    ads = spec.get("activeDeadlineSeconds")
    if ads is not None and (isinstance(ads, bool) or not isinstance(ads, int) or not 1 <= ads <= 2147483647):
        c.invalid("spec.activeDeadlineSeconds", ads, "must be between 1 and 2147483647, inclusive")
    tg = spec.get("terminationGracePeriodSeconds")
    if tg is not None and (isinstance(tg, bool) or not isinstance(tg, int) or tg < 0):
        c.invalid("spec.terminationGracePeriodSeconds", tg, "must be greater than or equal to 0")
    for k, v in (spec.get("nodeSelector") or {}).items():
        for e in label_key_errors(k):
            c.invalid("spec.nodeSelector", k, e)
        for e in label_value_errors(v):
            c.invalid("spec.nodeSelector", v, e)
    sa = spec.get("serviceAccountName")
    if sa is not None and (not isinstance(sa, str) or not DNS1123_SUBDOMAIN.match(sa)):
        c.invalid("spec.serviceAccountName", sa, SUBDOMAIN_MSG)
    for i, t in enumerate(spec.get("tolerations") or []):
        f = "spec.tolerations[%d]" % i
        if not isinstance(t, dict):
            c.invalid(f, t, "must be an object")
            continue
        op = t.get("operator", "Equal")
        if op not in ("Equal", "Exists"):
            c.unsupported(f + ".operator", op, ["Equal", "Exists"])
        if op == "Exists" and t.get("value"):
            c.invalid(f + ".operator", t.get("value"), "value must be empty when `operator` is 'Exists'")
        if not t.get("key") and op != "Exists":
            c.invalid(f + ".operator", op, "operator must be Exists when `key` is empty, which "
                      "means \"match all values and all keys\"")
        eff = t.get("effect")
        if eff and eff not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            c.unsupported(f + ".effect", eff, ["NoExecute", "NoSchedule", "PreferNoSchedule"])
        if t.get("tolerationSeconds") is not None and eff != "NoExecute":
            c.invalid(f + ".effect", eff or "", "effect must be 'NoExecute' when `tolerationSeconds` is set")
    for i, s in enumerate(spec.get("imagePullSecrets") or []):
        if not isinstance(s, dict) or not s.get("name"):
            c.required("spec.imagePullSecrets[%d].name" % i)
    if quantity_errors:
        raise bad_request('Pod in version "v1" cannot be handled as a Pod: quantities must match '
                          "the regular expression '%s'" % QUANTITY_RE)
    if c.list:
        raise c.error("Pod", meta.get("name") or meta.get("generateName") or "")


# --- the store and its events ---------------------------------------------------------------

class Faults:
    def __init__(self):
        self.rules = []
        self.lock = threading.Lock()

    def add(self, spec):
        for s in spec if isinstance(spec, list) else [spec]:
            if not isinstance(s, dict):
                raise bad_request("a fault rule is a JSON object")
            r = dict(s)
            r.setdefault("times", 1)
            r.setdefault("skip", 0)
            r["hits"] = 0
            with self.lock:
                self.rules.append(r)

    def match(self, method, path, query, watch):
        with self.lock:
            for r in self.rules:
                if "pod" in r:
                    continue
                if bool(r.get("watch")) and not watch:
                    continue
                if r.get("path") and r["path"] not in path:
                    continue
                if r.get("query") and r["query"] not in query:
                    continue
                if r.get("method") and r["method"].upper() != method:
                    continue
                if r["times"] and r["hits"] >= r["times"]:
                    continue
                if r["skip"] > 0:
                    r["skip"] -= 1
                    continue
                r["hits"] += 1
                return r
        return None

    def outcome(self, name):
        with self.lock:
            for r in self.rules:
                if "pod" not in r or r["pod"] not in name:
                    continue
                if r["times"] and r["hits"] >= r["times"]:
                    continue
                r["hits"] += 1
                return r
        return None


class Store:
    """Objects by (kind, namespace, name), one resourceVersion counter, and the
    event history watches read. Every change happens under cond."""

    def __init__(self, opts):
        self.cond = threading.Condition(threading.RLock())
        self.opts = opts
        self.workdir = tempfile.mkdtemp(prefix="k8s-server.")
        self.reset()

    def reset(self):
        with self.cond:
            for p in list(getattr(self, "procs", {}).values()):
                for proc in p:
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
            self.objs = {}
            self.procs = {}
            self.rv = 1
            self.events = []
            self.compacted = 1
            self.faults = Faults()
            for f in self.opts.fault:
                self.faults.add(json.loads(f))
            self.log = []
            self.seq = 0
            self.tokens = dict(self.opts.tokens)
            self.anonymous = not self.tokens and not self.opts.tls_dir
            self.start_delay = self.opts.start_delay
            self.bookmark_interval = self.opts.bookmark_interval
            self.generation = getattr(self, "generation", 0) + 1
            self.watch_epoch = 0
            self.stats = {"pods_created": 0, "pods_started": 0, "watches": 0, "bookmarks": 0}
            self.cond.notify_all()

    def next_rv(self):
        self.rv += 1
        return str(self.rv)

    def record(self, etype, kind, old, new):
        """Store an event (under cond) for watches: old and new object states."""
        self.events.append((self.rv, etype, kind, copy.deepcopy(old) if old else None, copy.deepcopy(new)))
        if len(self.events) > self.opts.history:
            drop = len(self.events) - self.opts.history
            self.compacted = self.events[drop - 1][0]
            del self.events[:drop]
        self.cond.notify_all()

    def put(self, kind, obj, etype):
        key = (kind, obj["metadata"]["namespace"], obj["metadata"]["name"])
        old = self.objs.get(key)
        obj["metadata"]["resourceVersion"] = self.next_rv()
        self.objs[key] = obj
        self.record(etype, kind, old, obj)

    def remove(self, kind, ns, name):
        key = (kind, ns, name)
        old = self.objs.pop(key, None)
        if old is None:
            return None
        old = copy.deepcopy(old)
        old["metadata"]["resourceVersion"] = self.next_rv()
        self.record("DELETED", kind, old, old)
        self.collect_garbage(ns)
        return old

    def collect_garbage(self, ns):
        """Delete Pods whose owners are all gone (background propagation)."""
        uids = {o["metadata"]["uid"] for o in self.objs.values()}
        for (kind, pns, name), o in list(self.objs.items()):
            if kind != "Pod" or pns != ns:
                continue
            owners = o["metadata"].get("ownerReferences") or []
            if owners and not any(r.get("uid") in uids for r in owners):
                delete_pod(self, ns, name, None)


def pod_key(ns, name):
    return ("Pod", ns, name)


# --- the kubelet -----------------------------------------------------------------------------

def set_status(st, ns, name, fn):
    """Apply fn to a copy of the Pod's status and store it (MODIFIED); False if gone."""
    with st.cond:
        pod = st.objs.get(pod_key(ns, name))
        if pod is None:
            return False
        pod = copy.deepcopy(pod)
        fn(pod)
        st.put("Pod", pod, "MODIFIED")
        return True


def condition(ctype, status, reason=None):
    c = {"type": ctype, "status": status, "lastProbeTime": None, "lastTransitionTime": now_rfc3339()}
    if reason:
        c["reason"] = reason
    return c


def resolve_env(st, pod, ct):
    """The container's environment, or raises LookupError(message) for
    CreateContainerConfigError."""
    ns = pod["metadata"]["namespace"]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOSTNAME": pod["metadata"]["name"],
           "KUBERNETES_SERVICE_HOST": "127.0.0.1",
           "KUBERNETES_SERVICE_PORT": str(st.opts.port)}
    for k in ("HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH"):
        if k in os.environ:
            env[k] = os.environ[k]

    def source(kind, name, optional):
        o = st.objs.get((kind, ns, name))
        if o is None and not optional:
            raise LookupError('%s "%s" not found' % (kind.lower(), name))
        if o is None:
            return None
        if kind == "Secret":
            return {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (o.get("data") or {}).items()}
        return dict(o.get("data") or {})

    for ef in ct.get("envFrom") or []:
        prefix = ef.get("prefix", "")
        for kind, ref in (("ConfigMap", ef.get("configMapRef")), ("Secret", ef.get("secretRef"))):
            if ref:
                data = source(kind, ref.get("name"), ref.get("optional"))
                for k, v in (data or {}).items():
                    env[prefix + k] = v

    def expand(s):
        return re.sub(r"\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)|\$\$",
                      lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), s)

    for e in ct.get("env") or []:
        name = e["name"]
        vf = e.get("valueFrom")
        if vf is None:
            env[name] = expand(e.get("value", ""))
            continue
        for kind, ref in (("ConfigMap", vf.get("configMapKeyRef")), ("Secret", vf.get("secretKeyRef"))):
            if ref:
                data = source(kind, ref["name"], ref.get("optional"))
                if data is None:
                    continue
                if ref["key"] not in data:
                    if ref.get("optional"):
                        continue
                    raise LookupError("couldn't find key %s in %s %s/%s" % (ref["key"], kind, ns, ref["name"]))
                env[name] = data[ref["key"]]
        fr = vf.get("fieldRef")
        if fr:
            path = fr["fieldPath"]
            m = re.match(r"^metadata\.(labels|annotations)\['(.*)'\]$", path)
            if m:
                env[name] = (pod["metadata"].get(m.group(1)) or {}).get(m.group(2), "")
            else:
                vals = {"metadata.name": pod["metadata"]["name"], "metadata.namespace": ns,
                        "metadata.uid": pod["metadata"]["uid"], "spec.nodeName": NODE,
                        "spec.serviceAccountName": pod["spec"].get("serviceAccountName", ""),
                        "status.podIP": pod.get("status", {}).get("podIP", ""),
                        "status.hostIP": "127.0.0.1"}
                env[name] = vals.get(path, "")
    argv = [expand(a) for a in (ct.get("command") or []) + (ct.get("args") or [])]
    return env, argv


def terminated(ct_name, image, code, reason, started, message=None):
    t = {"exitCode": code, "reason": reason, "startedAt": started, "finishedAt": now_rfc3339(),
         "containerID": "plumb-test://" + uuid.uuid4().hex}
    if message:
        t["message"] = message
    return {"name": ct_name, "image": image, "imageID": "", "ready": False, "restartCount": 0,
            "started": False, "state": {"terminated": t}}


def waiting(ct, reason, message=None):
    w = {"reason": reason}
    if message:
        w["message"] = message
    return {"name": ct["name"], "image": ct.get("image", ""), "imageID": "", "ready": False,
            "restartCount": 0, "started": False, "state": {"waiting": w}}


def finish_pod(pod, statuses, phase, reason=None, message=None):
    s = pod["status"]
    s["phase"] = phase
    s["containerStatuses"] = statuses
    s["conditions"] = [c for c in s.get("conditions", []) if c["type"] in ("PodScheduled", "Initialized")]
    s["conditions"] += [condition("Ready", "False", "PodCompleted" if phase == "Succeeded" else "PodFailed"),
                        condition("ContainersReady", "False", "PodCompleted" if phase == "Succeeded" else "PodFailed")]
    if reason:
        s["reason"] = reason
    if message:
        s["message"] = message


def kubelet(st, ns, name, generation, outcome):
    delay = st.start_delay
    if delay:
        time.sleep(delay)
    with st.cond:
        if st.generation != generation:
            return
        pod = st.objs.get(pod_key(ns, name))
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return
        pod = copy.deepcopy(pod)
    cts = pod["spec"]["containers"]
    what = (outcome or {}).get("outcome")
    if what in ("ImagePullBackOff", "ErrImagePull"):
        set_status(st, ns, name, lambda p: p["status"].update(containerStatuses=[
            waiting(c, what, 'Back-off pulling image "%s"' % c.get("image", "") if what == "ImagePullBackOff"
                    else 'failed to pull and unpack image "%s": not found' % c.get("image", ""))
            for c in cts]))
        return
    # the containers' environments; a missing Secret or key waits for it
    while True:
        with st.cond:
            if st.generation != generation:
                return
            cur = st.objs.get(pod_key(ns, name))
            if cur is None or cur["metadata"].get("deletionTimestamp"):
                return
            try:
                envs = [resolve_env(st, cur, c) for c in cts]
                break
            except LookupError as e:
                msg = str(e)
                if cur["status"].get("containerStatuses", [{}])[0].get("state", {}).get("waiting", {}).get("message") != msg:
                    set_status(st, ns, name, lambda p: p["status"].update(containerStatuses=[
                        waiting(c, "CreateContainerConfigError", msg) for c in cts]))
        time.sleep(0.2)
    logdir = os.path.join(st.workdir, ns, name)
    os.makedirs(logdir, exist_ok=True)
    started = now_rfc3339()
    procs, statuses = [], []
    with st.cond:
        if st.generation != generation or pod_key(ns, name) not in st.objs:
            return
        for c, (env, argv) in zip(cts, envs):
            logf = open(os.path.join(logdir, c["name"] + ".log"), "wb")
            if not argv:
                procs.append(None)
                logf.close()
                continue
            try:
                p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=logf,
                                     stderr=subprocess.STDOUT, cwd=c.get("workingDir") or logdir,
                                     start_new_session=True)
                procs.append(p)
            except OSError as e:
                procs.append(e)
            logf.close()
        st.procs[(ns, name)] = [p for p in procs if isinstance(p, subprocess.Popen)]
        st.stats["pods_started"] += 1

        def running(p):
            p["status"].update(phase="Running", startTime=started, podIP="10.244.0.%d" % random.randint(2, 250),
                               containerStatuses=[
                                   {"name": c["name"], "image": c.get("image", ""), "imageID": "",
                                    "ready": True, "restartCount": 0, "started": True,
                                    "containerID": "plumb-test://" + uuid.uuid4().hex,
                                    "state": {"running": {"startedAt": started}}} for c in cts])
            p["status"]["conditions"] = [condition("PodScheduled", "True"), condition("Initialized", "True"),
                                         condition("ContainersReady", "True"), condition("Ready", "True")]
        set_status(st, ns, name, running)
    t0 = time.monotonic()
    deadline = pod["spec"].get("activeDeadlineSeconds")
    after = float((outcome or {}).get("after", 0.2))
    forced = None
    while True:
        alive = [p for p in procs if isinstance(p, subprocess.Popen) and p.poll() is None]
        with st.cond:
            cur = st.objs.get(pod_key(ns, name))
            gone = st.generation != generation or cur is None
            deleting = cur is not None and cur["metadata"].get("deletionTimestamp")
        if gone:
            kill(alive, signal.SIGKILL)
            return
        if deleting:
            return  # delete_pod's reaper owns the Pod now
        if not alive:
            break
        elapsed = time.monotonic() - t0
        if what in ("OOMKilled", "Evicted", "DeadlineExceeded") and elapsed >= after:
            forced = what
        elif deadline and elapsed >= deadline:
            forced = "DeadlineExceeded"
        if forced:
            kill(alive, signal.SIGKILL)
            for p in alive:
                p.wait()
            break
        time.sleep(0.01)
    statuses = []
    for c, p in zip(cts, procs):
        if p is None:
            statuses.append(terminated(c["name"], c.get("image", ""), 0, "Completed", started))
        elif isinstance(p, OSError):
            statuses.append(terminated(c["name"], c.get("image", ""), 128, "StartError", started,
                                       'failed to create containerd task: exec: "%s": %s'
                                       % ((c.get("command") or c.get("args"))[0], p.strerror)))
        elif forced == "OOMKilled":
            statuses.append(terminated(c["name"], c.get("image", ""), 137, "OOMKilled", started))
        else:
            code = p.returncode if p.returncode >= 0 else 128 - p.returncode
            statuses.append(terminated(c["name"], c.get("image", ""), code,
                                       "Completed" if code == 0 else "Error", started))
    ok = all(s["state"]["terminated"]["exitCode"] == 0 for s in statuses)
    with st.cond:
        st.procs.pop((ns, name), None)
        if forced == "Evicted":
            set_status(st, ns, name, lambda p: finish_pod(
                p, statuses, "Failed", "Evicted",
                "The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi."))
        elif forced == "DeadlineExceeded":
            set_status(st, ns, name, lambda p: finish_pod(
                p, statuses, "Failed", "DeadlineExceeded",
                "Pod was active on the node longer than the specified deadline"))
        else:
            set_status(st, ns, name, lambda p: finish_pod(p, statuses, "Succeeded" if ok else "Failed"))


def kill(procs, sig):
    for p in procs:
        try:
            os.killpg(p.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def delete_pod(st, ns, name, grace):
    """Delete a Pod (under cond): at once unless it runs, else gracefully."""
    pod = st.objs.get(pod_key(ns, name))
    if pod is None:
        raise not_found("pods", name)
    procs = [p for p in st.procs.get((ns, name), []) if p.poll() is None]
    if grace is None:
        grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
    if not procs or grace == 0:
        kill(procs, signal.SIGKILL)
        st.procs.pop((ns, name), None)
        return st.remove("Pod", ns, name)
    if pod["metadata"].get("deletionTimestamp"):
        return copy.deepcopy(pod)
    pod = copy.deepcopy(pod)
    pod["metadata"]["deletionTimestamp"] = now_rfc3339()
    pod["metadata"]["deletionGracePeriodSeconds"] = grace
    st.put("Pod", pod, "MODIFIED")
    kill(procs, signal.SIGTERM)
    generation = st.generation
    every = list(st.procs.get((ns, name), []))

    def terminal(p):
        """As the kubelet does since Kubernetes 1.27: a deleted Pod that will not
        be restarted gets a terminal phase, with its containers' exit codes,
        before it goes."""
        cts = p["spec"]["containers"]
        codes = [q.returncode if q.returncode >= 0 else 128 - q.returncode for q in every]
        codes += [137] * (len(cts) - len(codes))
        started = p["status"].get("startTime") or now_rfc3339()
        finish_pod(p, [terminated(c["name"], c.get("image", ""), code, "Completed" if code == 0 else "Error",
                                  started) for c, code in zip(cts, codes)],
                   "Succeeded" if all(code == 0 for code in codes[:len(cts)]) else "Failed")

    def reaper():
        end = time.monotonic() + grace
        while time.monotonic() < end and any(p.poll() is None for p in procs):
            time.sleep(0.02)
        kill(procs, signal.SIGKILL)
        for p in procs:
            p.wait()
        with st.cond:
            if st.generation == generation and pod_key(ns, name) in st.objs:
                st.procs.pop((ns, name), None)
                set_status(st, ns, name, terminal)
                st.remove("Pod", ns, name)
    threading.Thread(target=reaper, daemon=True).start()
    return copy.deepcopy(pod)


# --- HTTP ------------------------------------------------------------------------------------

RESOURCES = {"pods": "Pod", "configmaps": "ConfigMap", "secrets": "Secret"}
ROUTE = re.compile(r"^/api/v1(?:/namespaces/(?P<ns>[^/]+))?/(?P<res>pods|configmaps|secrets)"
                   r"(?:/(?P<name>[^/]+)(?:/(?P<sub>log|status))?)?$")


def load_json_strict(raw):
    dups = []

    def hook(pairs):
        seen = {}
        for k, v in pairs:
            if k in seen:
                dups.append(k)
            seen[k] = v
        return seen
    return json.loads(raw, object_pairs_hook=hook), dups


def matches(kind, obj, ns, lsel, fsel):
    if obj is None:
        return False
    if ns and obj["metadata"]["namespace"] != ns:
        return False
    return lsel((obj["metadata"].get("labels") or {})) and fsel(obj)


class Handler(Dispatch):
    server_version = "k8s-test-server"

    def log_message(self, fmt, *args):
        if self.server.opts.verbose:
            sys.stderr.write("k8s-server: " + (fmt % args) + "\n")

    def send(self, code, obj=None, text=None, headers=None):
        if text is not None:
            data, ctype = text.encode(), "text/plain"
        else:
            data, ctype = json.dumps(obj, separators=(",", ":")).encode() + b"\n", "application/json"
        self.send_response(code, REASONS.get(code))
        self.send_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            for one in v if isinstance(v, list) else [v]:
                self.send_header(k, str(one))
        self.send_header("Content-Length", str(len(data)))
        self._headers_buffer.append(b"\r\n" + data)
        self.flush_headers()

    def send_error_status(self, e):
        self.entry["status"] = e.code
        self.entry["reason"] = e.reason
        self.send(e.code, e.status(), headers=e.headers)

    def drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def user(self):
        st = self.server.store
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            tok = auth[7:].strip()
            if tok in st.tokens:
                return st.tokens[tok]
            raise ApiError(401, "Unauthorized", "Unauthorized")
        cert = getattr(self.connection, "getpeercert", lambda: None)()
        if cert:
            for rdn in cert.get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        return "cert:" + v
        if st.anonymous:
            return "system:anonymous"
        raise ApiError(401, "Unauthorized", "Unauthorized")

    def serve(self, method):
        st = self.server.store
        url = urlsplit(self.path)
        path, qs = url.path, url.query
        query = {k: v[-1] for k, v in parse_qs(qs, keep_blank_values=True).items()}
        raw = self.read_body()
        if path.startswith("/__"):
            return self.control(method, path, query, raw)
        entry = {"method": method, "path": path, "query": qs, "status": None, "fault": None,
                 "t": time.time()}
        self.entry = entry
        with st.cond:
            st.seq += 1
            entry["n"] = st.seq
            st.log.append(entry)
        watch = method == "GET" and query.get("watch") in ("true", "1")
        fault = st.faults.match(method, path, qs, watch)
        if fault:
            entry["fault"] = fault.get("status") or fault.get("watch") or ("drop" if fault.get("drop") else "delay")
            if fault.get("delay"):
                time.sleep(float(fault["delay"]))
            if fault.get("drop"):
                return self.drop()
            if fault.get("status"):
                code = int(fault["status"])
                headers = {}
                details = None
                if fault.get("retry_after") is not None:
                    headers["Retry-After"] = fault["retry_after"]
                    details = {"retryAfterSeconds": int(float(fault["retry_after"]))}
                msg = fault.get("message") or {
                    409: "pods \"%s\" already exists" % path.rsplit("/", 1)[-1],
                    410: "too old resource version: 1 (%d)" % st.compacted,
                    429: "Too many requests, please try again later.",
                    500: "Internal error occurred: injected fault",
                    503: "the server is currently unable to handle the request"}.get(code, "injected fault")
                reason = fault.get("reason") or {409: "AlreadyExists", 410: "Expired"}.get(code)
                return self.send_error_status(ApiError(code, msg, reason, details, headers))
        try:
            entry["user"] = self.user()
            m = ROUTE.match(path)
            if path in ("/version", "/api", "/api/v1", "/healthz", "/livez", "/readyz"):
                return self.discovery(path)
            if not m:
                raise ApiError(404, "the server could not find the requested resource", "NotFound")
            ns, res, name, sub = (unquote(m.group(g)) if m.group(g) else None
                                  for g in ("ns", "res", "name", "sub"))
            kind = RESOURCES[res]
            if watch:
                if name:
                    raise ApiError(405, "the server does not allow this method on the requested resource",
                                   "MethodNotAllowed")
                return self.watch(kind, ns, query, fault)
            if method == "GET" and not name:
                return self.ok(200, self.list(kind, ns, query))
            if method == "POST" and not name and ns:
                return self.create(kind, res, ns, query, raw)
            if method == "GET" and name and sub == "log" and kind == "Pod":
                return self.pod_log(ns, name, query)
            if method == "GET" and name and ns and sub in (None, "status"):
                with st.cond:
                    o = st.objs.get((kind, ns, name))
                    if o is None:
                        raise not_found(res, name)
                    return self.ok(200, copy.deepcopy(o))
            if method == "DELETE" and name and ns and not sub:
                return self.delete(kind, res, ns, name, query, raw)
            raise ApiError(405, "the server does not allow this method on the requested resource",
                           "MethodNotAllowed")
        except ApiError as e:
            return self.send_error_status(e)

    def ok(self, code, obj, headers=None):
        self.entry["status"] = code
        self.send(code, obj, headers=headers)

    def discovery(self, path):
        if path == "/version":
            return self.ok(200, {"major": "1", "minor": "31", "gitVersion": "v1.31.0-plumb-test"})
        if path == "/api":
            return self.ok(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
        if path == "/api/v1":
            return self.ok(200, {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                {"name": r, "namespaced": True, "kind": k,
                 "verbs": ["create", "delete", "get", "list", "watch"]} for r, k in RESOURCES.items()]})
        self.entry["status"] = 200
        self.send(200, text="ok")

    # --- reads

    def selectors(self, kind, query):
        return (parse_label_selector(query.get("labelSelector", "")),
                parse_field_selector(query.get("fieldSelector", ""), kind))

    def list(self, kind, ns, query):
        st = self.server.store
        lsel, fsel = self.selectors(kind, query)
        limit = query.get("limit")
        start = ""
        with st.cond:
            rv = st.rv
            if query.get("continue"):
                try:
                    tok = json.loads(base64.b64decode(query["continue"]))
                    start, rv = tok["start"], int(tok["rv"])
                except (ValueError, KeyError, TypeError):
                    raise bad_request("continue key is not valid: illegal base64 data") from None
                if rv < st.compacted:
                    raise ApiError(410, "The provided continue parameter is too old to display a "
                                   "consistent list result. You can start a new list without the "
                                   "continue parameter.", "Expired")
            items = sorted(((k[1], k[2]), copy.deepcopy(o)) for k, o in st.objs.items()
                           if k[0] == kind and matches(kind, o, ns, lsel, fsel))
            items = [o for key, o in items if "/".join(key) > start]
            meta = {"resourceVersion": str(st.rv if not query.get("continue") else rv)}
            if limit and limit.isdigit() and int(limit) > 0 and len(items) > int(limit):
                items = items[:int(limit)]
                last = items[-1]["metadata"]
                meta["continue"] = base64.b64encode(json.dumps(
                    {"start": last["namespace"] + "/" + last["name"], "rv": rv}).encode()).decode()
                meta["remainingItemCount"] = None
            for o in items:
                o.setdefault("apiVersion", "v1")
                o.setdefault("kind", kind)
        meta = {k: v for k, v in meta.items() if v is not None}
        return {"kind": kind + "List", "apiVersion": "v1", "metadata": meta, "items": items}

    def pod_log(self, ns, name, query):
        st = self.server.store
        with st.cond:
            pod = st.objs.get(pod_key(ns, name))
            if pod is None:
                raise not_found("pods", name)
            cts = [c["name"] for c in pod["spec"]["containers"]]
            c = query.get("container")
            if not c:
                if len(cts) > 1:
                    raise bad_request("a container name must be specified for pod %s, choose one of: [%s]"
                                      % (name, " ".join(cts)))
                c = cts[0]
            if c not in cts:
                raise bad_request("container %s is not valid for pod %s" % (c, name))
            if query.get("previous") in ("true", "1"):
                raise bad_request('previous terminated container "%s" in pod "%s" not found' % (c, name))
            cs = {s["name"]: s for s in pod["status"].get("containerStatuses") or []}
            state = cs.get(c, {}).get("state", {"waiting": {"reason": "ContainerCreating"}})
            if "waiting" in state:
                raise bad_request('container "%s" in pod "%s" is waiting to start: %s'
                                  % (c, name, state["waiting"].get("reason", "ContainerCreating")))
            follow = query.get("follow") in ("true", "1") and "running" in state
        path = os.path.join(st.workdir, ns, name, c + ".log")
        if follow:
            return self.follow_log(ns, name, path)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            data = b""
        tail = query.get("tailLines")
        if tail and tail.isdigit():
            lines = data.splitlines(keepends=True)
            data = b"".join(lines[-int(tail):]) if int(tail) else b""
        lb = query.get("limitBytes")
        if lb and lb.isdigit():
            data = data[:int(lb)]
        self.entry["status"] = 200
        self.send_response(200, "OK")
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self._headers_buffer.append(b"\r\n" + data)
        self.flush_headers()

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def start_stream(self, ctype):
        self.entry["status"] = 200
        self.send_response(200, "OK")
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def follow_log(self, ns, name, path):
        st = self.server.store
        self.start_stream("text/plain")
        pos = 0
        try:
            while True:
                try:
                    with open(path, "rb") as f:
                        f.seek(pos)
                        data = f.read()
                except OSError:
                    data = b""
                if data:
                    pos += len(data)
                    self.chunk(data)
                with st.cond:
                    running = bool(st.procs.get((ns, name)))
                if not running and not data:
                    break
                time.sleep(0.02)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def watch(self, kind, ns, query, fault):
        st = self.server.store
        lsel, fsel = self.selectors(kind, query)
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        timeout = query.get("timeoutSeconds")
        end = time.monotonic() + (int(timeout) if timeout and timeout.isdigit() else 1800)
        rv = query.get("resourceVersion", "")
        out = []
        with st.cond:
            st.stats["watches"] += 1
            generation = st.generation
            epoch = st.watch_epoch
            if rv in ("", "0"):
                for k, o in sorted(st.objs.items(), key=lambda kv: kv[0]):
                    if k[0] == kind and matches(kind, o, ns, lsel, fsel):
                        out.append({"type": "ADDED", "object": o})
                last = st.rv
            else:
                if not rv.isdigit():
                    raise bad_request('invalid resource version: strconv.ParseUint: parsing "%s": invalid syntax' % rv)
                last = int(rv)
                if last < st.compacted:
                    out.append({"type": "ERROR", "object": ApiError(
                        410, "too old resource version: %d (%d)" % (last, st.compacted), "Expired").status()})
                    last = None
            out = [json.dumps(e, separators=(",", ":")).encode() + b"\n" for e in out]
        self.start_stream("application/json")
        sent = 0
        next_bm = time.monotonic() + st.bookmark_interval

        def faulted():
            """A watch fault whose turn came: drop, or an ERROR 410 and the end."""
            if not (fault and fault.get("watch")) or sent < int(fault.get("after", 0)):
                return False
            if fault["watch"] == "drop":
                self.entry["fault"] = "drop"
                self.drop()
                return True
            self.chunk(json.dumps({"type": "ERROR", "object": ApiError(
                410, "too old resource version: %d (%d)" % (last or 0, (last or 0) + 1), "Expired").status()},
                separators=(",", ":")).encode() + b"\n")
            self.end_stream()
            return True
        try:
            for line in out:
                if faulted():
                    return
                self.chunk(line)
                sent += 1
            while last is not None:
                if faulted():
                    return
                batch = []
                with st.cond:
                    if st.generation != generation:
                        break
                    if st.watch_epoch != epoch:
                        self.entry["fault"] = "drop"
                        return self.drop()
                    for (erv, etype, ekind, old, new) in st.events:
                        if erv <= last or ekind != kind:
                            continue
                        was, now_ = matches(kind, old, ns, lsel, fsel), matches(kind, new, ns, lsel, fsel)
                        if etype == "DELETED":
                            t = "DELETED" if was or now_ else None
                        elif was and now_:
                            t = "MODIFIED"
                        elif now_:
                            t = "ADDED"
                        elif was:
                            t = "DELETED"
                        else:
                            t = None
                        if t:
                            o = copy.deepcopy(new)
                            o.setdefault("apiVersion", "v1")
                            o.setdefault("kind", kind)
                            batch.append(json.dumps({"type": t, "object": o}, separators=(",", ":")).encode() + b"\n")
                        last = erv
                    if not batch:
                        wait = min(end, next_bm if bookmarks else end) - time.monotonic()
                        if wait > 0:
                            st.cond.wait(min(wait, 1.0))
                    cur_rv = st.rv
                    interval = st.bookmark_interval
                for line in batch:
                    if faulted():
                        return
                    self.chunk(line)
                    sent += 1
                t = time.monotonic()
                if t >= end:
                    break
                if bookmarks and t >= next_bm:
                    self.chunk(json.dumps({"type": "BOOKMARK", "object": {
                        "kind": kind, "apiVersion": "v1",
                        "metadata": {"resourceVersion": str(max(cur_rv, last))}}},
                        separators=(",", ":")).encode() + b"\n")
                    with st.cond:
                        st.stats["bookmarks"] += 1
                    next_bm = t + interval
            self.end_stream()
        except OSError:
            self.close_connection = True

    def end_stream(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # --- writes

    def create(self, kind, res, ns, query, raw):
        """POST: validate, store, and for a Pod start the kubelet. With
        --manifest-log, the Pod manifests accepted go to that file and those
        refused to FILE.rejected, verbatim, one a line."""
        try:
            self.create1(kind, res, ns, query, raw)
            accepted = True
        except ApiError:
            accepted = False
            raise
        finally:
            if kind == "Pod" and self.server.manifest_log:
                name = self.server.manifest_log + ("" if accepted else ".rejected")
                with self.server.store.cond, open(name, "a") as f:
                    f.write(raw.decode("utf-8", "replace").replace("\n", " ") + "\n")

    def create1(self, kind, res, ns, query, raw):
        st = self.server.store
        fv = query.get("fieldValidation", "Warn")
        if fv not in ("Ignore", "Warn", "Strict"):
            raise bad_request('fieldValidation parameter unsupported: "%s", must be one of: Ignore, Warn, Strict' % fv)
        ctype = self.headers.get("Content-Type", "")
        if ctype.split(";")[0].strip() not in ("application/json", ""):
            raise ApiError(415, 'the body of the request was in an unknown format - accepted media '
                           'types include: application/json, application/yaml, '
                           'application/vnd.kubernetes.protobuf', "UnsupportedMediaType")
        try:
            obj, dups = load_json_strict(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise bad_request("error decoding request body: %s" % e) from None
        if not isinstance(obj, dict):
            raise bad_request("json: cannot unmarshal %s into Go value of type struct { APIVersion string "
                              "\"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }"
                              % type(obj).__name__)
        if obj.get("apiVersion", "v1") != "v1":
            raise bad_request("the API version in the data (%s) does not match the expected API version (v1)"
                              % obj.get("apiVersion"))
        if obj.get("kind", kind) != kind:
            raise bad_request("the kind in the data (%s) does not match the expected kind (%s)"
                              % (obj.get("kind"), kind))
        unknown = []
        unknown_fields(obj, SCHEMAS[kind], "", unknown)
        problems = ['unknown field "%s"' % u for u in unknown] + ['duplicate field "%s"' % d for d in dups]
        headers = {}
        if problems and fv == "Strict":
            raise bad_request("strict decoding error: " + ", ".join(problems))
        if problems and fv == "Warn":
            headers["Warning"] = ['299 - "%s"' % p.replace('"', '\\"') for p in problems]
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        if meta.get("namespace") and meta["namespace"] != ns:
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        if kind == "Pod":
            check_pod(obj, ns)
        else:
            c = Causes()
            obj["metadata"] = meta
            check_meta(meta, c, ns)
            for k in (obj.get("data") or {}):
                if not re.match(r"^[-._a-zA-Z0-9]+$", k) or len(k) > 253:
                    c.invalid("data", k, "a valid config key must consist of alphanumeric characters, "
                              "'-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex "
                              "used for validation is '[-._a-zA-Z0-9]+')")
            if c.list:
                raise c.error(kind, meta.get("name") or "")
            if kind == "Secret":
                data = {}
                for k, v in (obj.get("data") or {}).items():
                    try:
                        base64.b64decode(v, validate=True)
                    except (ValueError, TypeError):
                        raise bad_request("Secret in version \"v1\" cannot be handled as a Secret: illegal "
                                          "base64 data at input byte 0") from None
                    data[k] = v
                for k, v in (obj.pop("stringData", None) or {}).items():
                    data[k] = base64.b64encode(str(v).encode()).decode()
                obj["data"] = data
                obj.setdefault("type", "Opaque")
        for u in unknown:
            drop_field(obj, u)
        meta = obj["metadata"]
        if not meta.get("name"):
            meta["name"] = meta["generateName"] + "".join(random.choice("bcdfghjklmnpqrstvwxz2456789")
                                                          for _ in range(5))
        name = meta["name"]
        self.entry["name"] = name  # as an audit log's objectRef.name
        with st.cond:
            if (kind, ns, name) in st.objs:
                raise ApiError(409, '%s "%s" already exists' % (res, name), "AlreadyExists",
                               {"name": name, "kind": res})
            meta.update(namespace=ns, uid=str(uuid.uuid4()), creationTimestamp=now_rfc3339())
            for k in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
                meta.pop(k, None)
            obj["apiVersion"], obj["kind"] = "v1", kind
            outcome = None
            if kind == "Pod":
                default_pod(obj)
                outcome = st.faults.outcome(name)
                st.stats["pods_created"] += 1
            st.put(kind, obj, "ADDED")
            result = copy.deepcopy(obj)
            if kind == "Pod":
                threading.Thread(target=kubelet, args=(st, ns, name, st.generation, outcome),
                                 daemon=True).start()
        self.ok(201, result, headers)

    def delete(self, kind, res, ns, name, query, raw):
        st = self.server.store
        grace = query.get("gracePeriodSeconds")
        policy = None
        if raw:
            try:
                opts = json.loads(raw)
            except ValueError as e:
                raise bad_request("error decoding request body: %s" % e) from None
            if isinstance(opts, dict):
                grace = opts.get("gracePeriodSeconds", grace)
                policy = opts.get("propagationPolicy")
        if grace is not None:
            try:
                grace = int(grace)
            except (TypeError, ValueError):
                raise bad_request("gracePeriodSeconds must be an integer") from None
        if policy not in (None, "Orphan", "Background", "Foreground"):
            raise ApiError(422, 'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported '
                           'value: "%s": supported values: "Foreground", "Background", "Orphan", "nil"'
                           % policy, "Invalid")
        with st.cond:
            o = st.objs.get((kind, ns, name))
            if o is None:
                raise not_found(res, name)
            if kind == "Pod":
                result = delete_pod(st, ns, name, grace)
            else:
                if policy == "Orphan":
                    uid = o["metadata"]["uid"]
                    for (k2, ns2, n2), dep in list(st.objs.items()):
                        refs = dep["metadata"].get("ownerReferences") or []
                        if ns2 == ns and any(r.get("uid") == uid for r in refs):
                            dep = copy.deepcopy(dep)
                            dep["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != uid]
                            st.put(k2, dep, "MODIFIED")
                result = st.remove(kind, ns, name)
        if kind == "Pod":
            return self.ok(200, result)
        return self.ok(200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                             "details": {"name": name, "kind": res, "uid": result["metadata"]["uid"]}})

    # --- control

    def control(self, method, path, query, raw):
        st = self.server.store
        try:
            body = json.loads(raw) if raw else None
        except ValueError as e:
            return self.send(400, {"error": "bad JSON: %s" % e})
        if path == "/__reset" and method == "POST":
            st.reset()
            return self.send(200, {"ok": True})
        if path == "/__drop-watches" and method == "POST":
            with st.cond:
                st.watch_epoch += 1
                st.cond.notify_all()
            return self.send(200, {"ok": True})
        if path == "/__compact" and method == "POST":
            with st.cond:
                st.compacted = st.rv
                st.events = []
            return self.send(200, {"ok": True, "compacted": st.rv})
        if path == "/__config" and method == "POST":
            body = body or {}
            with st.cond:
                if "tokens" in body:
                    st.tokens = dict(body["tokens"])
                if "anonymous" in body:
                    st.anonymous = bool(body["anonymous"])
                if "start_delay" in body:
                    st.start_delay = float(body["start_delay"])
                if "bookmark_interval" in body:
                    st.bookmark_interval = float(body["bookmark_interval"])
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
        if path == "/__log" and method == "GET":
            since = int(query.get("since", "0"))
            with st.cond:
                return self.send(200, {"log": [e for e in st.log if e["n"] > since]})
        if path == "/__stats" and method == "GET":
            with st.cond:
                s = dict(st.stats, requests=st.seq, resourceVersion=st.rv, compacted=st.compacted,
                         running=sum(len(v) for v in st.procs.values()))
            return self.send(200, s)
        self.send(404, {"error": "unknown control endpoint"})


def drop_field(obj, dotted):
    """Remove an unknown field (by its path) as the decoder drops it."""
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", dotted)
    cur = obj
    for p in parts[:-1]:
        cur = cur[int(p[1:-1])] if p.startswith("[") else cur.get(p)
        if cur is None:
            return
    if isinstance(cur, dict):
        cur.pop(parts[-1], None)


def default_pod(pod):
    spec = pod["spec"]
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("securityContext", {})
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("priority", 0)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    spec["nodeName"] = NODE
    for c in spec["containers"] + spec.get("initContainers", []):
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        image = c.get("image", "")
        tagged = ":" in image.rsplit("/", 1)[-1] or "@" in image
        c.setdefault("imagePullPolicy", "IfNotPresent" if tagged and not image.endswith(":latest") else "Always")
        c.setdefault("resources", {})
    reqs = [c.get("resources", {}) for c in spec["containers"]]
    if all(not r for r in reqs):
        qos = "BestEffort"
    elif all(r.get("limits") and r.get("limits", {}).get("cpu") and r.get("limits", {}).get("memory") and
             all(r.get("requests", r["limits"]).get(k) == r["limits"].get(k) for k in ("cpu", "memory"))
             for r in reqs):
        qos = "Guaranteed"
    else:
        qos = "Burstable"
    pod["status"] = {"phase": "Pending", "qosClass": qos, "hostIP": "127.0.0.1",
                     "conditions": [condition("PodScheduled", "True")],
                     "containerStatuses": [waiting(c, "ContainerCreating") for c in spec["containers"]]}


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512
    allow_reuse_address = True

    def finish_request(self, request, client_address):
        # the TLS handshake happens here, in the request's own thread, so a
        # client that stalls or fails it holds up no one else
        if self.ssl_ctx is not None:
            try:
                request = self.ssl_ctx.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as e:
                if self.opts.verbose:
                    sys.stderr.write("k8s-server: TLS handshake failed: %s\n" % e)
                return
        self.RequestHandlerClass(request, client_address, self)


class Server6(Server):
    address_family = socket.AF_INET6


def make_certs(d):
    """A CA, a server certificate for loopback, and client certificates, with openssl."""
    os.makedirs(d, exist_ok=True)

    def run(*args):
        subprocess.run(["openssl"] + list(args), check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)

    def key(name):
        run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", os.path.join(d, name))

    def ca(prefix, cn):
        key(prefix + ".key")
        run("req", "-x509", "-new", "-key", os.path.join(d, prefix + ".key"), "-days", "3", "-subj", "/CN=" + cn,
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-out", os.path.join(d, prefix + ".crt"))

    def leaf(prefix, subj, ext, ca_prefix):
        key(prefix + ".key")
        extf = os.path.join(d, prefix + ".ext")
        with open(extf, "w") as f:
            f.write(ext + "\n")
        run("req", "-new", "-key", os.path.join(d, prefix + ".key"), "-subj", subj,
            "-out", os.path.join(d, prefix + ".csr"))
        run("x509", "-req", "-in", os.path.join(d, prefix + ".csr"), "-CA", os.path.join(d, ca_prefix + ".crt"),
            "-CAkey", os.path.join(d, ca_prefix + ".key"), "-CAcreateserial", "-days", "3",
            "-extfile", extf, "-out", os.path.join(d, prefix + ".crt"))
    ca("ca", "plumb-test-ca")
    ca("other-ca", "some-other-ca")
    leaf("server", "/CN=kube-apiserver",
         "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth", "ca")
    leaf("client", "/O=system:masters/CN=plumb-admin", "extendedKeyUsage=clientAuth", "ca")
    leaf("stranger", "/CN=stranger", "extendedKeyUsage=clientAuth", "other-ca")


def main():
    ap = argparse.ArgumentParser(description="A Kubernetes API test server (see the module docstring).")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 (the default) picks a free port")
    ap.add_argument("--port-file", help="write the port here once listening")
    ap.add_argument("--tls-dir", help="serve HTTPS with a CA and certificates made here")
    ap.add_argument("--token", action="append", default=[], help="TOKEN[:USER] accepted as a bearer token")
    ap.add_argument("--start-delay", type=float, default=0.0, help="seconds before a Pod starts")
    ap.add_argument("--bookmark-interval", type=float, default=60.0)
    ap.add_argument("--history", type=int, default=100000, help="watch events kept")
    ap.add_argument("--manifest-log", help="append every Pod manifest created to this file")
    ap.add_argument("--fault", action="append", default=[], help="a fault rule, as JSON")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    a.tokens = {}
    for t in a.token:
        tok, _, user = t.partition(":")
        a.tokens[tok] = user or "token-user"
    cls = Server6 if ":" in a.host else Server
    srv = cls((a.host, a.port), Handler)
    a.port = srv.server_address[1]
    srv.opts = a
    srv.manifest_log = a.manifest_log
    srv.ssl_ctx = None
    if a.tls_dir:
        make_certs(a.tls_dir)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(a.tls_dir, "server.crt"), os.path.join(a.tls_dir, "server.key"))
        ctx.load_verify_locations(os.path.join(a.tls_dir, "ca.crt"))
        ctx.verify_mode = ssl.CERT_OPTIONAL
        srv.ssl_ctx = ctx
    srv.store = Store(a)
    if a.port_file:
        announce(a.port_file, a.port)
    else:
        print("listening on %s:%d" % (a.host, a.port), flush=True)

    def stop(*_):
        srv.store.reset()
        os._exit(0)
    signal.signal(signal.SIGTERM, stop)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        stop()


if __name__ == "__main__":
    main()
