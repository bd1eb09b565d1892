// srbench's browser page: runs one exported SR model with ONNX Runtime Web loaded from ./ort/
// (same origin, never a CDN). The same page serves two masters:
//  * a person: drop an image, see it upscaled and the time per inference;
//  * srbench's browser backend: window.srbench.load() then window.srbench.runBlob(), with
//    tensors passed as raw float32 bytes through the local server's /blob/ endpoints.
(function () {
  "use strict";

  // ORT's own log lines (node placements, warnings) arrive on the console; keep a copy so
  // the page can report which execution provider each node was placed on. Installed before
  // ORT loads, because its WASM module binds console.log when it starts.
  var logLines = [];
  ["log", "info", "warn", "error"].forEach(function (level) {
    var original = console[level].bind(console);
    console[level] = function () {
      logLines.push(Array.prototype.map.call(arguments, String).join(" "));
      original.apply(null, arguments);
    };
  });

  var BUNDLES = { wasm: "ort.wasm.min.js", webgpu: "ort.webgpu.min.js", webgl: "ort.webgl.min.js" };
  var state = { config: null, session: null, info: null, lastInput: null };

  function loadScript(src) {
    return new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = src;
      s.onload = resolve;
      s.onerror = function () { reject(new Error("cannot load " + src + " (is ONNX Runtime Web in ort/?)")); };
      document.head.appendChild(s);
    });
  }

  function show(id, text, isError) {
    var el = document.getElementById(id);
    el.textContent = text;
    el.className = isError ? "error" : "";
  }

  // Create the session for `opts.provider` ("wasm" | "webgpu" | "webgl") with exactly that
  // execution provider: no silent whole-session fallback to another one. Verbose session
  // logging makes ORT print where every node was placed (VerifyEachNodeIsAssignedToAnEp).
  async function load(opts) {
    var provider = opts.provider || "wasm";
    if (!BUNDLES[provider]) { throw new Error("unknown provider " + provider); }
    if (typeof ort === "undefined") { await loadScript("ort/" + BUNDLES[provider]); }
    // Threads must be set before the first session; more than one needs cross-origin
    // isolation (COOP/COEP headers), without which ORT-Web quietly uses one thread.
    ort.env.wasm.numThreads = opts.threads || 1;
    ort.env.wasm.wasmPaths = new URL("ort/", location.href).href;
    var first = logLines.length;
    var t0 = performance.now();
    state.session = await ort.InferenceSession.create(opts.model, {
      executionProviders: [provider],
      graphOptimizationLevel: "all",
      logSeverityLevel: 0,
      logVerbosityLevel: 0,
    });
    var createMs = performance.now() - t0;
    var placements = logLines.slice(first).filter(function (l) {
      return l.indexOf("VerifyEachNodeIsAssignedToAnEp") >= 0;
    });
    state.info = {
      provider: provider,
      ortWeb: ort.env.versions ? ort.env.versions.web : null,
      threads: ort.env.wasm.numThreads,
      crossOriginIsolated: self.crossOriginIsolated === true,
      hardwareConcurrency: navigator.hardwareConcurrency,
      userAgent: navigator.userAgent,
      inputNames: state.session.inputNames,
      outputNames: state.session.outputNames,
      sessionCreateMs: createMs,
      placements: placements,
      warnings: logLines.slice(first).filter(function (l) { return /\[W:|\[E:|warn/i.test(l); }).slice(0, 20),
    };
    return state.info;
  }

  // One timed inference: performance.now() around session.run only.
  async function runTimed(data, dims) {
    var feeds = {};
    feeds[state.session.inputNames[0]] = new ort.Tensor("float32", data, dims);
    var t0 = performance.now();
    var out = await state.session.run(feeds);
    var ms = performance.now() - t0;
    var y = out[state.session.outputNames[0]];
    return { data: y.data, dims: y.dims, ms: ms };
  }

  // The backend's call: input from /blob/NAME (float32, little-endian, NCHW `dims`),
  // `warmup` untimed runs, `repeat` timed runs; the last output goes to /blob/NAME.out.
  async function runBlob(name, dims, warmup, repeat) {
    var response = await fetch("blob/" + name);
    if (!response.ok) { throw new Error("input blob " + name + ": HTTP " + response.status); }
    var x = new Float32Array(await response.arrayBuffer());
    var warm = [];
    for (var i = 0; i < warmup; i++) { warm.push((await runTimed(x, dims)).ms); }
    var times = [];
    var last = null;
    for (var j = 0; j < Math.max(1, repeat); j++) {
      last = await runTimed(x, dims);
      times.push(last.ms);
    }
    var posted = await fetch("blob/" + name + ".out", { method: "POST", body: last.data });
    if (!posted.ok) { throw new Error("output blob " + name + ": HTTP " + posted.status); }
    return { dims: Array.from(last.dims), times: times, warmup: warm };
  }

  // ---------------------------------------------------------------- the demo
  function median(values) {
    var v = values.slice().sort(function (a, b) { return a - b; });
    var m = v.length >> 1;
    return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
  }

  async function upscale(file) {
    var cfg = state.config;
    var bitmap = await createImageBitmap(file);
    var w = bitmap.width, h = bitmap.height;
    var canvas = document.createElement("canvas");
    canvas.width = w; canvas.height = h;
    var ctx = canvas.getContext("2d");
    ctx.drawImage(bitmap, 0, 0);
    var rgba = ctx.getImageData(0, 0, w, h).data;
    var plane = w * h, x = new Float32Array(3 * plane), div = Math.fround(255 / cfg.input_range);
    for (var p = 0; p < plane; p++) {
      for (var c = 0; c < 3; c++) { x[c * plane + p] = Math.fround(rgba[4 * p + c] / div); }
    }
    state.lastInput = { data: x, dims: [1, 3, h, w] };
    show("status", "Running on " + w + "×" + h + "…");
    var r = await runTimed(x, state.lastInput.dims);
    draw(r);
    show("time", r.ms.toFixed(1) + " ms (first run on this page: includes WASM tier-up; time more runs)");
    show("sizes", w + "×" + h + " → " + r.dims[3] + "×" + r.dims[2]);
    show("status", "Done.");
    document.getElementById("again").disabled = false;
  }

  function draw(r) {
    var H = r.dims[2], W = r.dims[3], plane = H * W, scale = 255 / state.config.input_range;
    var out = document.getElementById("out");
    out.width = W; out.height = H;
    var ctx = out.getContext("2d"), img = ctx.createImageData(W, H);
    for (var p = 0; p < plane; p++) {
      for (var c = 0; c < 3; c++) {
        img.data[4 * p + c] = Math.round(Math.min(255, Math.max(0, r.data[c * plane + p] * scale)));
      }
      img.data[4 * p + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    var save = document.getElementById("save");
    save.href = out.toDataURL("image/png");
    save.hidden = false;
  }

  async function timeMore() {
    var times = [];
    for (var i = 0; i < 10; i++) { times.push((await runTimed(state.lastInput.data, state.lastInput.dims)).ms); }
    show("time", median(times).toFixed(1) + " ms (median of 10 runs; min " + Math.min.apply(null, times).toFixed(1) + ")");
  }

  async function startDemo() {
    var response = await fetch("srbench-web.json");
    if (!response.ok) { throw new Error("srbench-web.json not found next to this page"); }
    state.config = await response.json();
    var params = new URLSearchParams(location.search);
    var provider = params.get("provider") || state.config.provider || "wasm";
    var threads = Number(params.get("threads") || state.config.threads || navigator.hardwareConcurrency || 1);
    show("model", state.config.name + " ×" + state.config.scale);
    var info = await load({ model: state.config.model, provider: provider, threads: threads });
    show("provider", provider + (info.placements.length ? "" : " (no per-node placement log)"));
    show("ortversion", String(info.ortWeb));
    show("threads", info.threads + (info.crossOriginIsolated ? "" : " (page not cross-origin isolated: one thread)"));
    document.getElementById("placements").textContent = info.placements.join("\n");
    show("status", "Ready: drop an image.");
  }

  function wire() {
    var drop = document.getElementById("drop");
    function take(file) { if (file) { upscale(file).catch(function (e) { show("status", String(e), true); }); } }
    drop.addEventListener("dragover", function (e) { e.preventDefault(); drop.className = "over"; });
    drop.addEventListener("dragleave", function () { drop.className = ""; });
    drop.addEventListener("drop", function (e) { e.preventDefault(); drop.className = ""; take(e.dataTransfer.files[0]); });
    document.getElementById("file").addEventListener("change", function (e) { take(e.target.files[0]); });
    document.getElementById("again").addEventListener("click", function () {
      timeMore().catch(function (e) { show("status", String(e), true); });
    });
  }

  window.srbench = { load: load, runBlob: runBlob, runTimed: runTimed, upscale: upscale, logLines: logLines };
  wire();
  // ?driver=1: srbench's backend drives the page itself.
  if (new URLSearchParams(location.search).get("driver") !== "1") {
    startDemo().catch(function (e) { show("status", String(e), true); });
  }
})();
