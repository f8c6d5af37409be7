// Validate the Kubernetes manifests of contrib/k8s (one JSON object per line;
// t/1200-container.bats converts each YAML file) against the official
// schemas of their kinds: the validators that the npm package
// kubernetes-models generates from Kubernetes' published OpenAPI document
// (the package t/helpers/k8s-validate.mjs uses for Pods), for ServiceAccount,
// Role, RoleBinding, Deployment, Service, Job, ConfigMap and Secret.
//
// The schemas do not forbid unknown fields, but the API server does (kubectl
// apply asks for strict field validation since Kubernetes 1.27), so a typo
// such as "imagePullPolicyy" must fail here too. The generated validators read
// every property their schema knows (and iterate over maps), so each object
// is validated through a Proxy that records which of its fields were read: a
// field never read is one no schema knows. A few rules the API server checks
// in code rather than in the schema are checked too: object, container, port
// and volume names, label syntax, a Deployment's selector matching its
// template, a Job's restartPolicy, volume mounts naming declared volumes.
//
// Usage: node k8s-manifests.mjs NPM_DIR FILE... Prints "ok N" and exits 0
// when every object is valid; else "FILE:LINE: Kind/name: error" for each
// problem, and exits 1; 2 on a usage error.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [npmDir, ...files] = process.argv.slice(2);
if (!npmDir || !files.length) {
  console.error("usage: k8s-manifests.mjs NPM_DIR FILE...");
  process.exit(2);
}
const schemaOf = {
  "v1/ServiceAccount": "IoK8sApiCoreV1ServiceAccount",
  "v1/Service": "IoK8sApiCoreV1Service",
  "v1/ConfigMap": "IoK8sApiCoreV1ConfigMap",
  "v1/Secret": "IoK8sApiCoreV1Secret",
  "rbac.authorization.k8s.io/v1/Role": "IoK8sApiRbacV1Role",
  "rbac.authorization.k8s.io/v1/RoleBinding": "IoK8sApiRbacV1RoleBinding",
  "apps/v1/Deployment": "IoK8sApiAppsV1Deployment",
  "batch/v1/Job": "IoK8sApiBatchV1Job",
};
const validators = {};
for (const [gvk, mod] of Object.entries(schemaOf)) {
  const url = pathToFileURL(join(npmDir, "node_modules", "kubernetes-models", "_schemas", mod + ".js")).href;
  validators[gvk] = (await import(url)).validate;
}

// Wrap value so that reading a field through it is recorded in seen.
function tracked(value, path, seen) {
  if (value === null || typeof value !== "object") return value;
  const read = new Set();
  seen.push({ path, value, read });
  const wrapped = new Map();
  return new Proxy(value, {
    get(target, key, receiver) {
      const v = Reflect.get(target, key, receiver);
      if (typeof key !== "string" || !Object.hasOwn(target, key)) return v;
      read.add(key);
      if (v === null || typeof v !== "object") return v;
      if (!wrapped.has(key))
        wrapped.set(key, tracked(v, Array.isArray(target) ? `${path}[${key}]` : `${path}.${key}`, seen));
      return wrapped.get(key);
    },
  });
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const IANA_SVC_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

function apiRules(o, problems) {
  const meta = o.metadata || {};
  const name = meta.name || "";
  const isService = o.kind === "Service";
  if (!name) problems.push("metadata.name: required");
  else if (isService ? !(DNS1035_LABEL.test(name) && name.length <= 63)
                     : !(DNS1123_SUBDOMAIN.test(name) && name.length <= 253))
    problems.push(`metadata.name: '${name}' is not a valid ${isService ? "DNS-1035 label" : "DNS-1123 subdomain"}`);
  const labels = (where, map) => {
    for (const [k, v] of Object.entries(map || {})) {
      const [prefix, key] = k.includes("/") ? k.split("/", 2) : [null, k];
      if ((prefix !== null && !(DNS1123_SUBDOMAIN.test(prefix) && prefix.length <= 253)) ||
          !(LABEL_NAME.test(key) && key.length <= 63))
        problems.push(`${where}: '${k}' is not a valid label key`);
      if (typeof v !== "string" || v.length > 63 || (v !== "" && !LABEL_NAME.test(v)))
        problems.push(`${where}.${k}: '${v}' is not a valid label value`);
    }
  };
  labels("metadata.labels", meta.labels);
  const podSpec = (where, spec) => {
    if (!spec) return;
    const volumes = new Set();
    for (const [i, v] of (spec.volumes || []).entries()) {
      if (!DNS1123_LABEL.test(v.name || "")) problems.push(`${where}.volumes[${i}].name: '${v.name}' is not a DNS-1123 label`);
      volumes.add(v.name);
    }
    for (const [i, c] of (spec.containers || []).entries()) {
      const cw = `${where}.containers[${i}]`;
      if (!DNS1123_LABEL.test(c.name || "")) problems.push(`${cw}.name: '${c.name}' is not a DNS-1123 label`);
      for (const [j, p] of (c.ports || []).entries())
        if (p.name !== undefined && !(IANA_SVC_NAME.test(p.name) && p.name.length <= 15 && /[a-z]/.test(p.name) && !p.name.includes("--")))
          problems.push(`${cw}.ports[${j}].name: '${p.name}' is not an IANA service name`);
      for (const [j, m] of (c.volumeMounts || []).entries())
        if (!volumes.has(m.name)) problems.push(`${cw}.volumeMounts[${j}].name: no volume '${m.name}'`);
      for (const probe of ["readinessProbe", "livenessProbe", "startupProbe"]) {
        const port = c[probe] && (c[probe].tcpSocket || c[probe].httpGet || {}).port;
        if (typeof port === "string" && !(c.ports || []).some((p) => p.name === port))
          problems.push(`${cw}.${probe}: no container port named '${port}'`);
      }
    }
  };
  if (o.kind === "Deployment") {
    const sel = (o.spec.selector || {}).matchLabels || {};
    const tl = ((o.spec.template || {}).metadata || {}).labels || {};
    labels("spec.template.metadata.labels", tl);
    for (const [k, v] of Object.entries(sel))
      if (tl[k] !== v) problems.push("spec.template.metadata.labels: selector does not match template labels");
    podSpec("spec.template.spec", (o.spec.template || {}).spec);
  }
  if (o.kind === "Job") {
    const spec = (o.spec.template || {}).spec || {};
    if (!["Never", "OnFailure"].includes(spec.restartPolicy))
      problems.push(`spec.template.spec.restartPolicy: '${spec.restartPolicy}': a Job's Pods must be Never or OnFailure`);
    podSpec("spec.template.spec", spec);
  }
  if (o.kind === "Service") {
    for (const [i, p] of ((o.spec || {}).ports || []).entries())
      if (p.name !== undefined && !DNS1123_LABEL.test(p.name)) problems.push(`spec.ports[${i}].name: '${p.name}' is not a DNS-1123 label`);
  }
}

let n = 0, bad = 0;
for (const f of files) {
  readFileSync(f, "utf8").split("\n").forEach((line, i) => {
    if (!line.trim()) return;
    const where = `${f}:${i + 1}`;
    let obj;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      console.log(`${where}: not JSON: ${e.message}`);
      bad++;
      return;
    }
    const id = `${obj.kind}/${(obj.metadata && obj.metadata.name) || ""}`;
    const validate = validators[`${obj.apiVersion}/${obj.kind}`];
    if (!validate) {
      console.log(`${where}: ${id}: no schema here for apiVersion '${obj.apiVersion}' kind '${obj.kind}'`);
      bad++;
      return;
    }
    const problems = [];
    const seen = [];
    if (!validate(tracked(obj, "", seen)))
      for (const e of validate.errors)
        problems.push(`${e.instancePath || "/"}: ${e.keyword} ${JSON.stringify(e.params)}`);
    for (const { path, value, read } of seen) {
      if (Array.isArray(value)) continue;
      for (const k of Object.keys(value))
        if (!read.has(k)) problems.push(`${path ? path.slice(1) + "." : ""}${k}: unknown field`);
    }
    apiRules(obj, problems);
    if (problems.length) {
      for (const p of problems) console.log(`${where}: ${id}: ${p}`);
      bad++;
    } else {
      n++;
    }
  });
}
if (bad) process.exit(1);
console.log(`ok ${n}`);
