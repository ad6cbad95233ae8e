/* The web build's module run in node, without a browser: load a weights file with the page's
 * own loader (web/weights.js), draw the digits of a number, write them as IDX for `ddpm eval`
 * and print the time per image (wall clock and CPU time: on a busy machine the latter is the
 * fairer measure). Used by tests/web.sh and for the timings of docs/WEB.md.
 *
 *   node tests/web_node.js MODULE.js WEIGHTS NUMBER GUIDANCE SEED STEPS OUT-PREFIX [REPEAT]
 *
 * writes OUT-PREFIX-images.idx (N, 28, 28) and OUT-PREFIX-labels.idx (N), each image REPEAT
 * times (ddpm eval needs at least 10 images; copies leave the share judged right unchanged). */
"use strict";
const fs = require("fs");
const path = require("path");
const W = require(path.join(__dirname, "..", "web", "weights.js"));
const Idx = require(path.join(__dirname, "..", "web", "idx.js"));

async function main() {
  const [modJs, weights, number, gamma, seed, steps, prefix, repeat] = process.argv.slice(2);
  if (!prefix) throw new Error("usage: web_node.js MODULE.js WEIGHTS NUMBER GUIDANCE SEED STEPS OUT-PREFIX [REPEAT]");
  const factory = require(path.resolve(modJs));
  /* the module's own loader would fetch() the .wasm, which node cannot do from a path */
  const M = await factory({ wasmBinary: fs.readFileSync(modJs.replace(/\.js$/, ".wasm")) });
  const buf = fs.readFileSync(weights);
  const labels = Array.from(number, (ch) => Number(ch));
  const model = W.load(M, buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length), labels.length);
  let frames = 0;
  const t0 = process.hrtime.bigint(), c0 = process.cpuUsage();
  const images = W.sample(M, model, labels, Number(gamma), Number(steps), Number(seed), () => frames++);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9, c1 = process.cpuUsage(c0);
  const cpu = (c1.user + c1.system) / 1e6;
  const rep = Number(repeat || 1);
  fs.writeFileSync(prefix + "-images.idx", Idx.images(Idx.toBytes(images), labels.length, 28, rep));
  fs.writeFileSync(prefix + "-labels.idx", Idx.labels(labels, rep));
  console.log(JSON.stringify({ images: labels.length, frames: frames, seconds: secs,
    seconds_per_image: secs / labels.length, cpu_seconds_per_image: cpu / labels.length }));
}

main().catch((e) => { console.error("web_node: " + e.message); process.exit(1); });
