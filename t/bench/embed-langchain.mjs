// The peer for embed's http benchmark: LangChain JS's OpenAIEmbeddings
// embedding the "text" of every record of a JSONL file against the same
// server, with the same batch size and concurrency, writing JSONL like embed.
// usage: node embed-langchain.mjs FILE BASE_URL MODEL DIM BATCH PARALLEL
import { readFileSync } from "node:fs";
import { OpenAIEmbeddings } from "@langchain/openai";

const [file, baseURL, model, dim, batch, parallel] = process.argv.slice(2);
const records = readFileSync(file, "utf8").split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
const withText = records.filter((r) => typeof r.text === "string");
const emb = new OpenAIEmbeddings({
  model, dimensions: Number(dim), batchSize: Number(batch), maxConcurrency: Number(parallel),
  stripNewLines: false, apiKey: process.env.OPENAI_API_KEY || "sk-none",
  configuration: { baseURL },
});
const vectors = await emb.embedDocuments(withText.map((r) => r.text));
let i = 0;
const out = [];
for (const r of records) {
  if (typeof r.text === "string") { r.vector = vectors[i++]; r.model = model; }
  out.push(JSON.stringify(r));
}
process.stdout.write(out.join("\n") + "\n");
