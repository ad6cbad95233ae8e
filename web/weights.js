/* Reading a ddpm weights file (safetensors) for the WebAssembly module: the header is JSON, so
 * it is parsed here with JSON.parse, and each tensor is handed to the module as float32 (F16
 * and BF16 files are widened here). Shared by the page's worker and the node test
 * (tests/web_node.js). Format: docs/WEIGHTS.md; the module's entry points: src/web/web_main.c. */
"use strict";

var DdpmWeights = (function () {
  /* IEEE half -> float, for every 16-bit pattern once. */
  var HALF = null;
  function halfTable() {
    if (HALF) return HALF;
    HALF = new Float32Array(65536);
    for (var h = 0; h < 65536; h++) {
      var s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, f = h & 1023;
      HALF[h] = e === 0 ? s * f * Math.pow(2, -24)
        : e === 31 ? (f ? NaN : s * Infinity)
        : s * (1 + f / 1024) * Math.pow(2, e - 15);
    }
    return HALF;
  }

  /* The tensor's values as float32, from its bytes in the file. */
  function toFloat32(dtype, bytes) {
    var n, out, i;
    if (dtype === "F32") {
      return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
    }
    if (dtype !== "F16" && dtype !== "BF16") throw new Error("weights: dtype " + dtype + " is not supported (F32, F16 or BF16)");
    var u16 = new Uint16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
    n = u16.length;
    out = new Float32Array(n);
    if (dtype === "F16") {
      var t = halfTable();
      for (i = 0; i < n; i++) out[i] = t[u16[i]];
    } else {
      var u32 = new Uint32Array(out.buffer);
      for (i = 0; i < n; i++) u32[i] = u16[i] << 16;
    }
    return out;
  }

  /* {meta, tensors: [{name, dtype, shape, data (Float32Array)}]} from the file's bytes. */
  function parse(buf) {
    var bytes = new Uint8Array(buf);
    if (bytes.length < 8) throw new Error("weights: file too short for a safetensors header");
    var dv = new DataView(buf);
    var hlen = dv.getUint32(0, true) + dv.getUint32(4, true) * 4294967296;
    if (hlen > bytes.length - 8) throw new Error("weights: header length " + hlen + " beyond the file");
    var header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + hlen)));
    var base = 8 + hlen, meta = header.__metadata__ || {}, tensors = [];
    Object.keys(header).forEach(function (name) {
      if (name === "__metadata__") return;
      var e = header[name], a = e.data_offsets[0], b = e.data_offsets[1];
      if (!(a >= 0 && b >= a && base + b <= bytes.length)) throw new Error("weights: tensor " + name + " lies outside the file");
      tensors.push({ name: name, dtype: e.dtype, shape: e.shape, data: toFloat32(e.dtype, bytes.subarray(base + a, base + b)) });
    });
    return { meta: meta, tensors: tensors };
  }

  /* What the module needs from the metadata: kind, width, options, geometry, schedule. */
  function describe(meta) {
    var kinds = { denoiser: 0, time: 1, class: 2 };
    if (!(meta["ddpm.kind"] in kinds) || !meta["ddpm.width"]) throw new Error("weights: not a ddpm model (ddpm.kind / ddpm.width missing)");
    var geom = meta["ddpm.geometry"] ? JSON.parse(meta["ddpm.geometry"]) : { channels: 1, height: 28, width: 28, classes: 10 };
    var cfg = meta["ddpm.config"] ? JSON.parse(meta["ddpm.config"]) : {};
    var attn = { "down2": 1, "7": 1, "up1": 2, "14": 2, "none": 0 }, mask = 0;
    (meta["ddpm.attention"] || "none").split(",").forEach(function (p) { mask |= attn[p.trim()] || 0; });
    return {
      kind: kinds[meta["ddpm.kind"]], width: parseInt(meta["ddpm.width"], 10),
      temb: parseInt(meta["ddpm.time_embedding"] || "0", 10), residual: meta["ddpm.residual"] === "1" ? 1 : 0,
      attention: mask, channels: geom.channels, height: geom.height, classes: geom.classes,
      schedule: cfg.schedule === "cosine" ? 1 : 0, T: cfg.T || 300,
      betaStart: cfg.beta_start || 1e-4, betaEnd: cfg.beta_end || 0.02
    };
  }

  /* A model in module M (an instantiated ddpm_web.js) from the file's bytes, with room for
   * maxImages images per draw. Returns {ptr, info, pixels}; throws with the module's message. */
  function load(M, buf, maxImages) {
    var file = parse(buf), info = describe(file.meta);
    var ptr = 0;
    var fail = function () {
      var e = new Error(M.UTF8ToString(M._web_error()));
      if (ptr) M._web_model_free(ptr);
      throw e;
    };
    ptr = M._web_model_new(info.kind, info.width, info.temb, info.residual, info.attention, info.channels,
      info.height, info.classes, 2 * maxImages, info.schedule, info.T, info.betaStart, info.betaEnd);
    if (!ptr) fail();
    /* a file with moving averages of the weights ("ema." tensors) is drawn with them, as
     * ddpm sample does */
    var ema = file.tensors.some(function (t) { return t.name.indexOf("ema.") === 0; });
    file.tensors.forEach(function (t) {
      if (ema && t.name.indexOf("ema.") !== 0) return;
      if (ema) t = { name: t.name.slice(4), data: t.data };
      var bytes = t.data.length * 4, p = M._malloc(bytes), name = M._malloc(4 * t.name.length + 1);
      M.HEAPF32.set(t.data, p >> 2);
      M.stringToUTF8(t.name, name, 4 * t.name.length + 1);
      var rc = M._web_model_tensor(ptr, name, p, t.data.length);
      M._free(p);
      M._free(name);
      if (rc !== 0) fail();
    });
    if (M._web_model_ready(ptr, file.meta["ddpm.folded"] === "1" ? 1 : 0) !== 0) fail();
    return { ptr: ptr, info: info, pixels: info.channels * info.height * info.height, maxImages: maxImages };
  }

  /* Draw one image per label (classes, -1 for none) at guidance gamma, with `steps` steps of
   * DPM-Solver++(2M) SDE (the stochastic variant; at 20 passes it reaches the full chain's FID
   * where the deterministic solvers do not, docs/EXPERIMENTS.md) from seed. onFrame(step, total, frame) sees every frame (N, P) as it is
   * made, step 0 being the noise. Returns the final images (N, P), data scale. */
  var SAMPLER_DPMPP_2M_SDE = 3; /* SamplerKind, src/diffusion/sampler.h */

  function sample(M, model, labels, gamma, steps, seed, onFrame) {
    var n = labels.length, P = model.pixels, nf = M._web_frames(steps);
    var out = M._malloc(n * P * 4), frames = M._malloc(nf * n * P * 4), lab = M._malloc(n * 4);
    M.HEAP32.set(Int32Array.from(labels), lab >> 2);
    var frame = function (k) { return M.HEAPF32.slice((frames >> 2) + k * n * P, (frames >> 2) + (k + 1) * n * P); };
    M.onStep = function (done, total) {
      if (!onFrame) return;
      if (done === 1) onFrame(0, total, frame(0));
      onFrame(done, total, frame(done));
    };
    var rc = M._web_sample(model.ptr, out, frames, lab, n, gamma, SAMPLER_DPMPP_2M_SDE, steps, seed >>> 0);
    var result = rc === 0 ? M.HEAPF32.slice(out >> 2, (out >> 2) + n * P) : null;
    var err = rc === 0 ? null : M.UTF8ToString(M._web_error());
    M._free(out);
    M._free(frames);
    M._free(lab);
    M.onStep = null;
    if (err) throw new Error(err);
    return result;
  }

  return { parse: parse, describe: describe, load: load, sample: sample };
})();

if (typeof module !== "undefined") module.exports = DdpmWeights;
