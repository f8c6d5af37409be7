// The peer for chunk's benchmark and compatibility test: reads document
// records (JSONL) from a file, splits each "text" with @langchain/textsplitters'
// RecursiveCharacterTextSplitter, writes one JSON line per chunk to stdout.
// usage: node langchain-chunk.mjs FILE SIZE OVERLAP [codepoints]
// With "codepoints", the last-resort split("") yields whole code points instead
// of UTF-16 units (lengths still count UTF-16 units): the model of chunk
// --compat langchain, which never cuts a character (docs/chunk.1).
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { RecursiveCharacterTextSplitter } from "@langchain/textsplitters";

const [file, size, overlap, mode] = process.argv.slice(2);
class WholeCharacterSplitter extends RecursiveCharacterTextSplitter {
  splitOnSeparator(text, separator) {
    return separator === "" ? Array.from(text) : super.splitOnSeparator(text, separator);
  }
}
const Splitter = mode === "codepoints" ? WholeCharacterSplitter : RecursiveCharacterTextSplitter;
const splitter = new Splitter({
  chunkSize: Number(size), chunkOverlap: Number(overlap),
});
const rl = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
let out = [];
let pending = 0;
const flush = () => { process.stdout.write(out.join("")); out = []; pending = 0; };
for await (const line of rl) {
  if (!line.trim()) continue;
  const doc = JSON.parse(line);
  const chunks = await splitter.splitText(doc.text);
  chunks.forEach((text, i) => {
    const s = JSON.stringify({ id: `${doc.id}#${i}`, doc_id: doc.id, chunk: i, text, meta: doc.meta }) + "\n";
    out.push(s);
    pending += s.length;
  });
  if (pending > 65536) flush();
}
flush();
