/* Drives the web page (web/) in headless Chromium over the DevTools protocol (through a
 * pipe: no npm package, no WebSocket client): at each width the page is
 * opened with autodraw=1 and watched until it has drawn; then it is checked for sideways
 * scrolling and photographed. Every console error or warning and every uncaught exception,
 * of the page and of its worker, is counted. The last draw's canvas, read back by the page
 * (window.ddpmResult), is written as IDX for `ddpm eval`. Used by tests/web.sh.
 *
 *   node tests/web_browser.js CHROME URL OUTDIR WIDTH[,WIDTH..] [REPEAT] [-- FLAGS]
 *
 * writes OUTDIR/web-WIDTH.png, OUTDIR/page-images.idx (N REPEAT, 28, 28) and
 * OUTDIR/page-labels.idx, OUTDIR/page.json and the browser's stderr, OUTDIR/console.log; prints one line per width:
 * "width=W drawn=0|1 overflow=0|1 errors=E seconds_per_image=S simd=0|1". */
"use strict";
const fs = require("fs");
const path = require("path");
const { spawn } = require("child_process");
const Idx = require(path.join(__dirname, "..", "web", "idx.js"));

const TIMEOUT_MS = 300000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* The browser, spoken to over --remote-debugging-pipe: commands go to its fd 3 and answers
 * and events come from its fd 4, as JSON messages ended by a NUL byte (no WebSocket, no
 * port, and any node version). Returns {send(method, params, sessionId) -> result, stop()};
 * events go to onEvent. */
function launch(chrome, flags, userDir, onEvent) {
  const proc = spawn(chrome, [...flags, "--remote-debugging-pipe", "--user-data-dir=" + userDir, "about:blank"],
    { stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"] });
  let err = "", buf = "", id = 0, gone = null;
  const pending = new Map();
  proc.stderr.on("data", (d) => { err += d; });
  proc.stdio[4].on("data", (d) => {
    buf += d;
    let z;
    while ((z = buf.indexOf("\0")) >= 0) {
      const m = JSON.parse(buf.slice(0, z));
      buf = buf.slice(z + 1);
      if (m.id && pending.has(m.id)) {
        const { res, rej } = pending.get(m.id);
        pending.delete(m.id);
        if (m.error) rej(new Error(m.error.message));
        else res(m.result);
      } else if (m.method) onEvent(m);
    }
  });
  const exited = new Promise((res) => proc.on("exit", (code) => {
    gone = new Error("chromium exited (" + code + "): " + err.slice(-400));
    pending.forEach(({ rej }) => rej(gone));
    res();
  }));
  const send = (method, params, sessionId) => new Promise((res, rej) => {
    if (gone) return rej(gone);
    pending.set(++id, { res, rej });
    proc.stdio[3].write(JSON.stringify({ id, method, params: params || {}, sessionId }) + "\0");
  });
  const stop = async () => { proc.kill(); await exited; return err; };
  return { send, stop };
}

/* Console errors and warnings, exceptions and error log entries: one line each. */
function problems(m) {
  const p = m.params || {};
  if (m.method === "Runtime.consoleAPICalled" && (p.type === "error" || p.type === "warning" || p.type === "assert"))
    return "console." + p.type + ": " + (p.args || []).map((a) => a.value !== undefined ? a.value : a.description).join(" ");
  if (m.method === "Runtime.exceptionThrown")
    return "exception: " + (p.exceptionDetails.exception ? p.exceptionDetails.exception.description : p.exceptionDetails.text);
  if (m.method === "Log.entryAdded" && (p.entry.level === "error" || p.entry.level === "warning"))
    return "log " + p.entry.level + ": " + p.entry.text + (p.entry.url ? " (" + p.entry.url + ")" : "");
  return null;
}

async function visit(cdp, session, url, width, seen) {
  const phone = width < 600;
  await cdp.send("Emulation.setDeviceMetricsOverride", { width, height: phone ? 844 : 900,
    deviceScaleFactor: 1, mobile: phone }, session);
  seen.length = 0;
  await cdp.send("Page.navigate", { url }, session);
  const t0 = Date.now();
  let result = null;
  while (Date.now() - t0 < TIMEOUT_MS) {
    await sleep(500);
    const r = await cdp.send("Runtime.evaluate", { expression: "window.ddpmResult ? JSON.stringify(window.ddpmResult) : ''",
      returnByValue: true }, session);
    if (r.result.value) { result = JSON.parse(r.result.value); break; }
    if (seen.length) break; /* an error: the draw will not come */
  }
  const ov = await cdp.send("Runtime.evaluate", { expression:
    "document.documentElement.scrollWidth > window.innerWidth + 1 ? 1 : 0", returnByValue: true }, session);
  const shot = await cdp.send("Page.captureScreenshot", { format: "png", captureBeyondViewport: true }, session);
  return { result, overflow: ov.result.value, png: Buffer.from(shot.data, "base64") };
}

async function main() {
  const argv = process.argv.slice(2), dash = argv.indexOf("--");
  const [chrome, url, outdir, widths, repeat] = dash >= 0 ? argv.slice(0, dash) : argv;
  const flags = dash >= 0 ? argv.slice(dash + 1) : ["--headless"];
  const userDir = fs.mkdtempSync(path.join(outdir, "profile-"));
  const seen = [];
  const browser = launch(chrome, flags, userDir, (m) => {
    const p = problems(m);
    if (p) seen.push(p);
    if (m.method === "Target.attachedToTarget" && m.params.targetInfo.type !== "page") { /* the worker */
      const s = m.params.sessionId;
      for (const c of ["Runtime.enable", "Log.enable", "Runtime.runIfWaitingForDebugger"])
        browser.send(c, {}, s).catch(() => {});
    }
  });
  let code = 0;
  try {
    const { targetInfos } = await browser.send("Target.getTargets");
    const page = targetInfos.find((t) => t.type === "page");
    const { sessionId } = await browser.send("Target.attachToTarget", { targetId: page.targetId, flatten: true });
    for (const dom of ["Page", "Runtime", "Log"]) await browser.send(dom + ".enable", {}, sessionId);
    await browser.send("Target.setAutoAttach", { autoAttach: true, waitForDebuggerOnStart: false, flatten: true }, sessionId);
    let last = null;
    for (const w of widths.split(",").map(Number)) {
      const v = await visit(browser, sessionId, url, w, seen);
      fs.writeFileSync(path.join(outdir, "web-" + w + ".png"), v.png);
      const r = v.result;
      seen.forEach((s) => console.log("  " + s));
      console.log("width=" + w + " drawn=" + (r ? 1 : 0) + " overflow=" + v.overflow + " errors=" + seen.length +
        " seconds_per_image=" + (r ? r.secondsPerImage.toFixed(3) : "?") + " simd=" + (r && r.simd ? 1 : 0));
      if (r) last = r;
    }
    if (last) {
      const n = last.labels.length, rep = Number(repeat || 1);
      fs.writeFileSync(path.join(outdir, "page-images.idx"), Idx.images(Uint8Array.from(last.canvas), n, 28, rep));
      fs.writeFileSync(path.join(outdir, "page-labels.idx"), Idx.labels(last.labels, rep));
      delete last.canvas;
      fs.writeFileSync(path.join(outdir, "page.json"), JSON.stringify(last, null, 1) + "\n");
    }
  } catch (e) {
    console.error("web_browser: " + e.message);
    code = 1;
  }
  fs.writeFileSync(path.join(outdir, "console.log"), await browser.stop());
  fs.rmSync(userDir, { recursive: true, force: true });
  process.exit(code);
}

main();
