/* Images as IDX files (unsigned bytes), for `ddpm eval --samples`: the page's test hook and
 * the node test write the drawn digits with it. Floats in the data scale become bytes as
 * src/core/pixel.c does: clamp to [0, 1], times 255, round half to even (NaN: 0). */
"use strict";

var DdpmIdx = (function () {
  function toByte(v) {
    if (!(v > 0)) return 0;
    if (v >= 1) return 255;
    var x = Math.fround(v * 255), r = Math.round(x); /* the float product, as in C */
    if (x - Math.floor(x) === 0.5 && r % 2) r -= 1; /* half to even */
    return r;
  }

  function header(type, dims) {
    var h = new Uint8Array(4 + 4 * dims.length), dv = new DataView(h.buffer);
    h[2] = type;
    h[3] = dims.length;
    dims.forEach(function (d, i) { dv.setUint32(4 + 4 * i, d, false); });
    return h;
  }

  function concat(h, body) {
    var out = new Uint8Array(h.length + body.length);
    out.set(h, 0);
    out.set(body, h.length);
    return out;
  }

  /* floats in the data scale as bytes */
  function toBytes(data) {
    var out = new Uint8Array(data.length);
    for (var i = 0; i < data.length; i++) out[i] = toByte(data[i]);
    return out;
  }

  /* n images of side x side bytes, all of them written `repeat` times in turn:
   * (n repeat, side, side). */
  function images(bytes, n, side, repeat) {
    var P = side * side, body = new Uint8Array(repeat * n * P);
    for (var r = 0; r < repeat; r++) body.set(bytes.subarray(0, n * P), r * n * P);
    return concat(header(0x08, [repeat * n, side, side]), body);
  }

  /* the labels, `repeat` times in turn: (n repeat) */
  function labels(ls, repeat) {
    var body = new Uint8Array(repeat * ls.length);
    for (var r = 0; r < repeat; r++) body.set(ls, r * ls.length);
    return concat(header(0x08, [body.length]), body);
  }

  return { toByte: toByte, toBytes: toBytes, images: images, labels: labels };
})();

if (typeof module !== "undefined") module.exports = DdpmIdx;
