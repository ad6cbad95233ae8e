/* The page: the form, the worker that samples (worker.js) and the canvas that shows every
 * frame of the reverse process, one 28 x 28 digit beside the next, scaled up by CSS with
 * square pixels. Address parameters: number, guidance, steps, seed (fixes the draws),
 * model (the weights file, default model.safetensors) and autodraw=1 (draw once loaded).
 * window.ddpmResult holds the last finished draw, for the browser test (tests/web.sh). */
"use strict";

(function () {
  var MAX_DIGITS = 8;
  var q = new URLSearchParams(location.search);
  var $ = function (id) { return document.getElementById(id); };
  var form = $("form"), number = $("number"), guidance = $("guidance"), drawBtn = $("draw");
  var canvas = $("canvas"), ctx = canvas.getContext("2d"), status = $("status"), progress = $("progress");
  var steps = Math.max(1, Math.min(1000, parseInt(q.get("steps") || "20", 10) || 20));
  var seed = q.has("seed") ? parseInt(q.get("seed"), 10) >>> 0 : null;
  var side = 28, info = null, busy = false, labels = [];

  if (q.has("number")) number.value = q.get("number").replace(/[^0-9]/g, "").slice(0, MAX_DIGITS);
  if (q.has("guidance")) guidance.value = q.get("guidance");
  $("gval").textContent = guidance.value;
  progress.max = steps;
  for (var d = 0; d < 10; d++) {
    var b = document.createElement("button");
    b.type = "button";
    b.textContent = String(d);
    b.addEventListener("click", function (e) {
      number.value = e.target.textContent;
      if (!busy && info) start();
    });
    $("digits").appendChild(b);
  }
  guidance.addEventListener("input", function () { $("gval").textContent = guidance.value; });

  /* frame bytes (N, side, side) -> the canvas, digits side by side */
  function paint(bytes, n) {
    if (canvas.width !== n * side) {
      canvas.width = n * side;
      canvas.height = side;
    }
    var img = ctx.createImageData(n * side, side), px = img.data;
    for (var i = 0; i < n; i++)
      for (var y = 0; y < side; y++)
        for (var x = 0; x < side; x++) {
          var v = bytes[(i * side + y) * side + x], o = 4 * (y * n * side + i * side + x);
          px[o] = px[o + 1] = px[o + 2] = v;
          px[o + 3] = 255;
        }
    ctx.putImageData(img, 0, 0);
    /* the canvas is 28 px tall per digit: as wide as the stage allows, up to 10x */
    canvas.style.maxWidth = Math.min(n * side * 10, 860) + "px";
  }

  /* The canvas read back as gray bytes (N, side, side): what the person sees. */
  function readCanvas(n) {
    var px = ctx.getImageData(0, 0, n * side, side).data, out = new Uint8Array(n * side * side);
    for (var i = 0; i < n; i++)
      for (var y = 0; y < side; y++)
        for (var x = 0; x < side; x++) out[(i * side + y) * side + x] = px[4 * (y * n * side + i * side + x)];
    return out;
  }

  var worker = new Worker("worker.js");
  worker.onerror = function (e) {
    console.error("ddpm worker: " + e.message);
    status.textContent = "error: " + e.message;
  };
  worker.onmessage = function (e) {
    var m = e.data;
    if (m.type === "ready") {
      info = m.info;
      drawBtn.disabled = false;
      status.textContent = "model loaded in " + m.loadSeconds.toFixed(2) + " s; press draw";
      $("about").textContent = "Model: class-conditional UNet, width " + info.width + ", T = " + info.T +
        "; WebAssembly" + (m.simd ? " with SIMD" : " (no SIMD)") + ", one thread, in a Web Worker.";
      if (q.get("autodraw") === "1") start();
    } else if (m.type === "frame") {
      paint(m.bytes, labels.length);
      progress.value = m.step;
      status.textContent = "step " + m.step + " of " + m.total;
    } else if (m.type === "done") {
      paint(m.bytes, labels.length);
      busy = false;
      drawBtn.disabled = false;
      var per = m.seconds / labels.length;
      status.textContent = labels.length + (labels.length === 1 ? " digit" : " digits") + " in " +
        m.seconds.toFixed(2) + " s: " + per.toFixed(2) + " s per image (" + steps + " steps, guidance " + guidance.value + ")";
      window.ddpmResult = { labels: labels.slice(), guidance: Number(guidance.value), steps: steps,
        seconds: m.seconds, secondsPerImage: per, simd: $("about").textContent.indexOf("with SIMD") >= 0,
        canvas: Array.from(readCanvas(labels.length)) };
    } else if (m.type === "error") {
      busy = false;
      drawBtn.disabled = !info;
      console.error("ddpm: " + m.message);
      status.textContent = "error: " + m.message;
    }
  };

  function start() {
    var digits = number.value.replace(/[^0-9]/g, "").slice(0, MAX_DIGITS);
    if (!digits) {
      status.textContent = "type a number (1 to " + MAX_DIGITS + " digits)";
      return;
    }
    number.value = digits;
    labels = Array.from(digits, Number);
    busy = true;
    drawBtn.disabled = true;
    progress.value = 0;
    var s = seed !== null ? seed : (Math.random() * 4294967296) >>> 0;
    worker.postMessage({ type: "draw", labels: labels, guidance: Number(guidance.value), steps: steps, seed: s });
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    if (!busy && info) start();
  });
  worker.postMessage({ type: "load", model: q.get("model") || "model.safetensors", maxImages: MAX_DIGITS });
})();
