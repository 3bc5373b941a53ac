// The official openai npm client against lvs-gateway: creates, polls,
// downloads, lists (cursor pages) and deletes videos, and reads errors.
// Run by openai_client_test.py with OPENAI_BASE_URL, OPENAI_API_KEY and
// LVS_OPENAI_DIR (the npm install of package.json beside this file).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(process.env.LVS_OPENAI_DIR + "/package.json");
const OpenAI = require("openai");
const client = new OpenAI({ maxRetries: 0, timeout: 60000 });

async function poll(id) {
  for (let i = 0; i < 600; i++) {
    const v = await client.videos.retrieve(id);
    if (v.status === "completed" || v.status === "failed") return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("video " + id + " did not finish");
}

const made = [];
for (const prompt of ["a kite over the dunes", "rain on a tin roof", "a slow tram"]) {
  // `steps` and `fps` are lvs parameters; the client sends them as form fields.
  const v = await client.videos.create({ prompt, size: "64x96", seconds: "1", fps: 8, steps: 3 });
  assert.equal(v.object, "video");
  assert.ok(["queued", "in_progress"].includes(v.status), v.status);
  assert.equal(v.size, "64x96");
  assert.equal(v.seconds, "1");
  made.push(v.id);
}
for (const id of made) {
  const v = await poll(id);
  assert.equal(v.status, "completed", JSON.stringify(v));
  assert.equal(v.progress, 100);
  const res = await client.videos.downloadContent(id);
  assert.equal(res.headers.get("content-type"), "video/mp4");
  const mp4 = Buffer.from(await res.arrayBuffer());
  assert.equal(mp4.subarray(4, 8).toString("latin1"), "ftyp");
  assert.equal(mp4.length, v.lvs.size_bytes);
}
// Auto-pagination walks the cursor pages (limit 2: two pages of three).
const seen = [];
for await (const v of client.videos.list({ limit: 2 })) seen.push(v.id);
assert.deepEqual(seen.filter((id) => made.includes(id)), [...made].reverse());
const page = await client.videos.list({ limit: 2, order: "asc" });
assert.equal(page.data.length, 2);
assert.equal(page.has_more, true);

await assert.rejects(client.videos.create({ prompt: "x", size: "65x96", seconds: "1" }), (e) => {
  assert.ok(e instanceof OpenAI.BadRequestError, String(e));
  assert.equal(e.status, 400);
  assert.equal(e.param, "width");
  return true;
});
await assert.rejects(client.videos.retrieve("0123456789abcdef"), OpenAI.NotFoundError);
const bad = new OpenAI({ apiKey: "not-a-key", maxRetries: 0 });
await assert.rejects(bad.videos.list(), OpenAI.AuthenticationError);

const deleted = await client.videos.delete(made[0]);
assert.deepEqual({ id: deleted.id, deleted: deleted.deleted }, { id: made[0], deleted: true });
await assert.rejects(client.videos.retrieve(made[0]), OpenAI.NotFoundError);
const version = JSON.parse(readFileSync(process.env.LVS_OPENAI_DIR + "/node_modules/openai/package.json")).version;
console.log("openai " + version + ": created, polled, downloaded, listed and deleted " + made.length + " videos");
