/* The page's sampler, off the main thread: loads the WebAssembly module (the SIMD build when
 * the browser validates WebAssembly SIMD, else the fallback) and the weights, then draws on
 * request and posts every frame of the reverse process as gray bytes.
 *
 * Messages in:  {type: "load", model: URL, maxImages}
 *               {type: "draw", labels: [..], guidance, steps, seed}
 * Messages out: {type: "ready", info, simd, loadSeconds}
 *               {type: "frame", step, total, bytes (N x P, Uint8Array)}
 *               {type: "done", seconds, bytes}
 *               {type: "error", message} */
"use strict";

/* (module (func (result v128) (v128.const i32x4 0 0 0 0))): valid only where SIMD is. */
var SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0,
  10, 22, 1, 20, 0, 253, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11]);
var simd = WebAssembly.validate(SIMD_PROBE);
importScripts(simd ? "ddpm_web.js" : "ddpm_web_nosimd.js", "weights.js", "idx.js");

var M = null, model = null;

function fail(e) {
  postMessage({ type: "error", message: String(e && e.message ? e.message : e) });
}

function load(msg) {
  var t0 = performance.now();
  return Promise.all([DdpmWeb(), fetch(msg.model).then(function (r) {
    if (!r.ok) throw new Error("weights " + msg.model + ": HTTP " + r.status);
    return r.arrayBuffer();
  })]).then(function (got) {
    M = got[0];
    model = DdpmWeights.load(M, got[1], msg.maxImages);
    if (model.info.kind !== 2) throw new Error("weights " + msg.model + ": not a class model (the page draws requested digits)");
    postMessage({ type: "ready", info: model.info, simd: simd, loadSeconds: (performance.now() - t0) / 1000 });
  });
}

function draw(msg) {
  var t0 = performance.now();
  var images = DdpmWeights.sample(M, model, msg.labels, msg.guidance, msg.steps, msg.seed, function (step, total, frame) {
    var bytes = DdpmIdx.toBytes(frame);
    postMessage({ type: "frame", step: step, total: total, bytes: bytes }, [bytes.buffer]);
  });
  var bytes = DdpmIdx.toBytes(images);
  postMessage({ type: "done", seconds: (performance.now() - t0) / 1000, bytes: bytes }, [bytes.buffer]);
}

onmessage = function (e) {
  try {
    if (e.data.type === "load") load(e.data).catch(fail);
    else if (e.data.type === "draw") draw(e.data);
  } catch (err) {
    fail(err);
  }
};
