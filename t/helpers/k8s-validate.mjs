// Validate Kubernetes manifests (one JSON object per line, as t/k8s-server.py
// --manifest-log writes them) against the official core/v1 schemas, through the
// validators that the npm package kubernetes-models generates from Kubernetes'
// published OpenAPI document. Usage: node k8s-validate.mjs NPM_DIR [FILE...]
// (stdin when no file). Prints "ok N" and exits 0 when every manifest is
// valid; else prints "FILE:LINE: kind/name: error" for each invalid one, exits 1.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [npmDir, ...files] = process.argv.slice(2);
if (!npmDir) {
  console.error("usage: k8s-validate.mjs NPM_DIR [FILE...]");
  process.exit(2);
}
// the models live in NPM_DIR (t/npm/install), not next to this script
const load = (rel) => import(pathToFileURL(join(npmDir, "node_modules", "kubernetes-models", rel)).href);
const kinds = {
  Pod: (await load("v1/Pod.js")).Pod,
  ConfigMap: (await load("v1/ConfigMap.js")).ConfigMap,
  Secret: (await load("v1/Secret.js")).Secret,
};

let n = 0, bad = 0;
const inputs = files.length ? files : ["/dev/stdin"];
for (const f of inputs) {
  const lines = readFileSync(f, "utf8").split("\n");
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    const where = `${f === "/dev/stdin" ? "stdin" : f}:${i + 1}`;
    let obj;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      console.log(`${where}: not JSON: ${e.message}`);
      bad++;
      return;
    }
    const kind = obj.kind || "Pod";
    const Model = kinds[kind];
    const name = (obj.metadata && (obj.metadata.name || obj.metadata.generateName)) || "";
    if (!Model) {
      console.log(`${where}: ${kind}/${name}: no schema for this kind here`);
      bad++;
      return;
    }
    try {
      new Model({ ...obj, apiVersion: obj.apiVersion || "v1", kind }).validate();
      n++;
    } catch (e) {
      console.log(`${where}: ${kind}/${name}: ${e.message}`);
      bad++;
    }
  });
}
if (bad) process.exit(1);
console.log(`ok ${n}`);
