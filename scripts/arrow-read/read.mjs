// Reads an Arrow IPC file (as 'ckpt export --manifest' writes it) with the
// apache-arrow npm package and prints, as JSON: the row count, the column
// names in order, the schema's ckptio.job and ckptio.version, and the
// SHA-256 of the hash column's 32-byte values concatenated in row order.
// Usage: node read.mjs FILE.arrow
import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tableFromIPC } from "apache-arrow";

const file = process.argv[2];
if (!file) {
  console.error("usage: node read.mjs FILE.arrow");
  process.exit(2);
}
const table = tableFromIPC(readFileSync(file));
const hash = table.getChild("hash");
if (!hash) {
  console.error(`${file}: no hash column`);
  process.exit(1);
}
const digest = createHash("sha256");
for (let i = 0; i < table.numRows; i++) {
  const v = hash.get(i);
  if (!(v instanceof Uint8Array) || v.length !== 32) {
    console.error(`${file}: row ${i}: hash is not 32 bytes`);
    process.exit(1);
  }
  digest.update(v);
}
const meta = table.schema.metadata;
console.log(JSON.stringify({
  rows: table.numRows,
  columns: table.schema.fields.map((f) => f.name),
  job: meta.get("ckptio.job") ?? null,
  version: meta.get("ckptio.version") ?? null,
  hash_sha256: digest.digest("hex"),
}));
