// The peer for upsert-qdrant's benchmark: Qdrant's own JavaScript client
// (@qdrant/js-client-rest) writing the same vector records (JSONL) to the same
// server as plumb does: the same point ids (UUIDv5 of the record id in plumb's
// namespace), the payload being the record without its vector, the same batch
// size and requests in flight, wait=true. Like upsert-qdrant it creates the
// collection (size from the first vector, Cosine) and a keyword index on
// doc_id when the collection is missing. Markers ({"op":…}) are skipped: the
// benchmark's records have none.
// usage: node qdrant-upsert.mjs FILE URL COLLECTION BATCH PARALLEL
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { QdrantClient } from "@qdrant/js-client-rest";

const [file, url, collection, batchArg, parallelArg] = process.argv.slice(2);
const batchSize = Number(batchArg);
const parallel = Number(parallelArg);

// plumb's namespace for record ids: uuid5(NS_URL, "urn:plumb:record-id")
const NS = Buffer.from("c3af16aa7183587bac6ca7527abcbe70", "hex");
function uuid5(name) {
  const h = createHash("sha1").update(NS).update(name, "utf8").digest();
  h[6] = (h[6] & 0x0f) | 0x50;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString("hex");
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

const client = new QdrantClient({ url, apiKey: process.env.QDRANT_API_KEY });
let ready = false;
const inflight = new Set();
let points = [];
let written = 0;

async function ensure(size) {
  const { exists } = await client.collectionExists(collection);
  if (!exists) {
    await client.createCollection(collection, { vectors: { size, distance: "Cosine" } });
    await client.createPayloadIndex(collection, { field_name: "doc_id", field_schema: "keyword", wait: true });
  }
  ready = true;
}

async function send(batch) {
  const p = client.upsert(collection, { wait: true, points: batch }).then(() => {
    written += batch.length;
    inflight.delete(p);
  });
  inflight.add(p);
  if (inflight.size >= parallel) await Promise.race(inflight);
}

const rl = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
for await (const line of rl) {
  if (!line.trim()) continue;
  const rec = JSON.parse(line);
  if (rec.op !== undefined) continue;
  const { vector, ...payload } = rec;
  if (!ready) await ensure(vector.length);
  points.push({ id: uuid5(rec.id), vector, payload });
  if (points.length >= batchSize) {
    const batch = points;
    points = [];
    await send(batch);
  }
}
if (points.length) await send(points);
await Promise.all(inflight);
process.stderr.write(`qdrant-upsert.mjs: ${written} points\n`);
