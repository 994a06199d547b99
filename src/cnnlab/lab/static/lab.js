/* cnnlab lab: draws what cnnlab computed (window.LAB) and asks the server for the rest.
 * Served, `api` fetches /api/...; exported, it answers from LAB.precomputed.
 * The only arithmetic here is the convolution view's dot products and output-size formula,
 * which the page must redo instantly under the sliders (tests check them against torch). */
"use strict";
(function () {
  const LAB = window.LAB;
  const served = LAB.mode === "served";
  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs = {}, children = []) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "text") node.textContent = v;
      else if (k === "html") node.innerHTML = v;
      else node.setAttribute(k, v);
    }
    for (const child of children) node.append(child);
    return node;
  };
  const status = (text) => { $("status").textContent = text || ""; };
  const fmt = (n) => n >= 1e9 ? (n / 1e9).toFixed(2) + " G" : n >= 1e6 ? (n / 1e6).toFixed(2) + " M"
    : n >= 1e3 ? (n / 1e3).toFixed(1) + " k" : String(n);
  const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf"];
  const window_ = window;
  // Plotly comes after this script (async when served): the first view never waits for it;
  // the load event comes after every script, async ones included.
  const plotly = new Promise((resolve) => {
    if (window.Plotly) resolve(window.Plotly);
    else window.addEventListener("load", () => resolve(window.Plotly));
  });
  window_.labState = { conv: {}, race: { paths: {} }, network: {}, landscape: {}, saliency: {} };

  function api(name, params) {
    if (served) {
      const query = new URLSearchParams(params).toString();
      return fetch(`api/${name}?${query}`).then((r) => r.json().then((body) => {
        if (!r.ok) throw new Error(body.error || r.statusText);
        return body;
      }));
    }
    const P = LAB.precomputed;
    let found;
    if (name === "features") found = P.features[params.layer];
    if (name === "saliency") found = P.saliency[params.target === undefined ? "top" : params.target];
    if (name === "landscape") found = P.landscape;
    if (name === "race") found = P.race[raceKey(params)];
    return found ? Promise.resolve(found) : Promise.reject(new Error(
      "not precomputed in this exported page; run `cnnlab lab` for every setting"));
  }

  // ------------------------------------------------------------------------ tabs
  const views = [];
  function addView(id, title, build) {
    const section = el("section", { id: `view-${id}`, class: "view" });
    $("views").append(section);
    const button = el("button", { id: `tab-${id}`, text: title });
    button.onclick = () => show(id);
    $("tabs").append(button);
    views.push({ id, build, built: false, section });
  }
  function show(id) {
    for (const v of views) {
      const on = v.id === id;
      v.section.classList.toggle("active", on);
      $(`tab-${v.id}`).classList.toggle("active", on);
      if (on && !v.built) { v.built = true; v.build(v.section); }
    }
  }
  window_.labShow = show;

  function slider(parent, id, label, min, max, value, step = 1) {
    const input = el("input", { id, type: "range", min, max, step, value });
    const out = el("span", { id: `${id}-value`, text: String(value) });
    parent.append(el("label", { for: id, text: label }), input, out);
    return { input, out };
  }

  // ------------------------------------------------------------------------ 1. convolution
  function buildConv(section) {
    const C = LAB.conv;
    const S = window_.labState.conv;
    const inputSel = el("select", { id: "conv-input" });
    C.inputs.forEach((p, i) => inputSel.append(el("option", { value: i, text: p.label })));
    const kernelSel = el("select", { id: "conv-kernel" });
    C.kernels.forEach((k, i) => kernelSel.append(el("option", { value: i, text: k.label })));
    kernelSel.append(el("option", { value: "box", text: "box filter (F×F mean)" }));
    const modeSel = el("select", { id: "conv-mode" });
    for (const m of ["custom", "valid", "same", "full"]) modeSel.append(el("option", { value: m, text: m }));
    const controls = el("div", { class: "controls" });
    controls.append(el("label", { text: "input" }), inputSel, el("span"));
    controls.append(el("label", { text: "kernel" }), kernelSel, el("span"));
    const size = slider(controls, "conv-size", "kernel size F", 1, 9, 3);
    const stride = slider(controls, "conv-stride", "stride S", 1, 5, 1);
    controls.append(el("label", { text: "padding mode" }), modeSel, el("span"));
    const pad = slider(controls, "conv-padding", "padding P", 0, 8, 0);
    const dil = slider(controls, "conv-dilation", "dilation D", 1, 4, 1);
    const buttons = el("div");
    const play = el("button", { id: "conv-play", text: "play" });
    const stepB = el("button", { id: "conv-step", text: "step" });
    const allB = el("button", { id: "conv-all", text: "whole output" });
    buttons.append(play, stepB, allB);
    const formula = el("div", { id: "conv-formula", class: "formula" });
    const warning = el("div", { id: "conv-warning", class: "warn" });
    const inCanvas = el("canvas", { id: "conv-in-canvas", width: 360, height: 360 });
    const outCanvas = el("canvas", { id: "conv-out-canvas", width: 240, height: 240 });
    const terms = el("div", { id: "conv-terms", class: "terms" });
    const note = el("div", { id: "conv-note", class: "muted" });
    section.append(el("div", { class: "row" }, [
      el("div", {}, [controls, buttons, formula, warning, note]),
      el("div", {}, [el("div", { text: "input (padding shaded), window in red" }), inCanvas]),
      el("div", {}, [el("div", { text: "output" }), outCanvas,
        el("div", { text: "current dot product, term by term" }), terms]),
    ]));
    let timer = null;

    function kernel() {
      if (kernelSel.value === "box") {
        const F = +size.input.value;
        return { channels: 1, size: F, data: new Array(F * F).fill(1 / (F * F)), label: "box" };
      }
      return C.kernels[+kernelSel.value];
    }
    function recompute() {
      const img = C.inputs[+inputSel.value];
      const k = kernel();
      const fixed = kernelSel.value !== "box";
      size.input.disabled = fixed;
      if (fixed) size.input.value = k.size;
      const F = k.size, Sd = +stride.input.value, D = +dil.input.value;
      const Fe = D * (F - 1) + 1;
      if (modeSel.value === "valid") pad.input.value = 0;
      if (modeSel.value === "same") pad.input.value = Math.floor((Fe - 1) / 2);
      if (modeSel.value === "full") pad.input.value = Fe - 1;
      pad.input.disabled = modeSel.value !== "custom";
      const P = +pad.input.value;
      for (const s of [size, stride, pad, dil]) s.out.textContent = s.input.value;
      const spanH = img.h - Fe + 2 * P, spanW = img.w - Fe + 2 * P;
      Object.assign(S, { img, k, F, Fe, S: Sd, P, D, index: 0 });
      warning.textContent = "";
      if (spanH < 0 || spanW < 0) {
        S.outH = S.outW = 0;
        formula.innerHTML = `(W − F + 2P)/S + 1 with F = ${Fe}: the kernel is larger than the padded input`;
        $("conv-outsize") && ($("conv-outsize").textContent = "none");
        warning.textContent = `the ${Fe}×${Fe} window does not fit in ${img.h + 2 * P}×${img.w + 2 * P}: pad more or shrink the kernel`;
        draw();
        return;
      }
      S.outH = Math.floor(spanH / Sd) + 1;
      S.outW = Math.floor(spanW / Sd) + 1;
      const exactW = spanW / Sd + 1;
      const dilNote = D > 1 ? ` (F = D(k − 1) + 1 = ${Fe} with dilation)` : "";
      formula.innerHTML = `output = ⌊(W − F + 2P)/S⌋ + 1 = ⌊(${img.w} − ${Fe} + 2·${P})/${Sd}⌋ + 1 = `
        + `<span id="conv-outsize">${S.outH} × ${S.outW}</span>${dilNote}`
        + (Number.isInteger(exactW) ? "" : ` <span class="muted">(exact: ${exactW.toFixed(2)})</span>`);
      const leftH = spanH % Sd, leftW = spanW % Sd;
      if (leftH || leftW) {
        warning.textContent = `stride ${Sd} does not tile: the last ${leftW} column(s) and ${leftH} row(s) `
          + "of the padded input are never covered (cnnlab summary warns about this)";
      }
      note.textContent = channelNote(img, k);
      S.output = convolveAll();
      draw();
    }
    function channelNote(img, k) {
      if (img.channels === k.channels) return img.channels > 1 ? `sum over ${img.channels} channels` : "";
      if (k.channels === 1) return `the kernel is applied to each of the ${img.channels} channels and the responses summed`;
      return `the ${k.channels}-channel kernel on a ${img.channels}-channel input: its channels are summed`;
    }
    function pixel(c, y, x) { // value of the padded input at padded coordinates
      const { img, P } = S;
      const yy = y - P, xx = x - P;
      if (yy < 0 || xx < 0 || yy >= img.h || xx >= img.w) return 0;
      return img.data[(c * img.h + yy) * img.w + xx];
    }
    function weight(c, ky, kx) {
      const { k, img } = S;
      const F = k.size;
      if (k.channels === img.channels) return k.data[(c * F + ky) * F + kx];
      if (k.channels === 1) return k.data[ky * F + kx];
      let sum = 0;
      for (let kc = 0; kc < k.channels; kc++) sum += k.data[(kc * F + ky) * F + kx];
      return sum;
    }
    function dot(oy, ox, collect) {
      const { img, F, S: Sd, D } = S;
      let sum = 0;
      for (let c = 0; c < img.channels; c++)
        for (let ky = 0; ky < F; ky++)
          for (let kx = 0; kx < F; kx++) {
            const v = pixel(c, oy * Sd + ky * D, ox * Sd + kx * D), w = weight(c, ky, kx);
            sum += v * w;
            if (collect) collect.push([v, w]);
          }
      return sum;
    }
    function convolveAll() {
      const out = new Float64Array(S.outH * S.outW);
      for (let y = 0; y < S.outH; y++) for (let x = 0; x < S.outW; x++) out[y * S.outW + x] = dot(y, x);
      return out;
    }
    function draw() {
      const { img, P, F, D, S: Sd } = S;
      const H = img.h + 2 * P, W = img.w + 2 * P;
      const cell = Math.max(2, Math.floor(360 / Math.max(H, W)));
      inCanvas.width = W * cell; inCanvas.height = H * cell;
      const g = inCanvas.getContext("2d");
      for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
        const inside = y >= P && x >= P && y < P + img.h && x < P + img.w;
        if (!inside) { g.fillStyle = "#f3d6dc"; }
        else if (img.channels === 3) {
          const r = pixel(0, y, x), gg = pixel(1, y, x), b = pixel(2, y, x);
          g.fillStyle = `rgb(${r * 255},${gg * 255},${b * 255})`;
        } else { const v = pixel(0, y, x) * 255; g.fillStyle = `rgb(${v},${v},${v})`; }
        g.fillRect(x * cell, y * cell, cell, cell);
      }
      const g2 = outCanvas.getContext("2d");
      const ocell = Math.max(2, Math.floor(240 / Math.max(S.outH || 1, S.outW || 1)));
      outCanvas.width = Math.max(1, S.outW * ocell); outCanvas.height = Math.max(1, S.outH * ocell);
      if (!S.outH) { terms.textContent = ""; return; }
      let peak = 1e-12;
      for (const v of S.output) peak = Math.max(peak, Math.abs(v));
      const total = S.outH * S.outW;
      for (let i = 0; i <= Math.min(S.index, total - 1); i++) {
        const v = S.output[i] / peak; // red positive, blue negative
        g2.fillStyle = v >= 0 ? `rgb(255,${255 * (1 - v)},${255 * (1 - v)})` : `rgb(${255 * (1 + v)},${255 * (1 + v)},255)`;
        g2.fillRect((i % S.outW) * ocell, Math.floor(i / S.outW) * ocell, ocell, ocell);
      }
      const oy = Math.floor(S.index / S.outW), ox = S.index % S.outW;
      g.strokeStyle = "#e00"; g.lineWidth = 1;
      for (let ky = 0; ky < F; ky++) for (let kx = 0; kx < F; kx++)
        g.strokeRect((ox * Sd + kx * D) * cell + 0.5, (oy * Sd + ky * D) * cell + 0.5, cell - 1, cell - 1);
      g2.strokeStyle = "#000"; g2.strokeRect(ox * ocell + 0.5, oy * ocell + 0.5, ocell - 1, ocell - 1);
      const pairs = [];
      const value = dot(oy, ox, pairs);
      const shown = pairs.slice(0, 81).map(([v, w]) => `${v.toFixed(2)}×${w.toFixed(2)}`).join(" + ");
      const more = pairs.length > 81 ? ` + … (${pairs.length - 81} more terms)` : "";
      terms.textContent = `out[${oy}, ${ox}] = ${shown}${more} = ${value.toFixed(3)}`;
    }
    function step() {
      const total = S.outH * S.outW;
      if (!total) return;
      S.index = (S.index + 1) % total;
      draw();
    }
    play.onclick = () => {
      if (timer) { clearInterval(timer); timer = null; play.textContent = "play"; return; }
      timer = setInterval(step, 150); play.textContent = "pause";
    };
    stepB.onclick = step;
    allB.onclick = () => { S.index = S.outH * S.outW - 1; draw(); };
    for (const input of [inputSel, kernelSel, modeSel, size.input, stride.input, pad.input, dil.input]) {
      input.addEventListener("input", recompute);
      input.addEventListener("change", recompute);
    }
    recompute();
  }

  // ------------------------------------------------------------------------ 2. network
  function buildNetwork(section) {
    const N = LAB.network;
    if (!N) { section.append(el("p", { text: "Pass a model name or a checkpoint to explore a network: cnnlab lab resnet20" })); return; }
    const T = N.summary;
    section.append(el("p", { html: `<b>${T.model}</b>, input ${T.input_size.join("×")}, `
      + `${fmt(T.total_params)} parameters, ${fmt(T.macs)} MACs, ${(T.activation_bytes / 1e6).toFixed(2)} MB activations; `
      + `feature maps of the ${N.weights}. Click a layer.` }));
    const maxMacs = Math.max(1, ...T.rows.map((r) => r.macs));
    const maxMem = Math.max(1, ...T.rows.map((r) => r.activations));
    const table = el("table", { class: "summary", id: "net-table" });
    table.append(el("tr", { html: "<th>layer</th><th>type</th><th>output</th><th>params</th>"
      + "<th>MACs</th><th>memory (float32)</th><th>RF</th>" }));
    T.rows.forEach((r, i) => {
      const rf = r.receptive_field ? r.receptive_field.join("×") : "";
      const tr = el("tr", { "data-row": i, "data-name": r.name, class: r.maps ? "clickable" : "" });
      const indent = "&nbsp;".repeat(Math.max(0, r.depth - 1) * 2);
      tr.innerHTML = `<td>${indent}${r.name}</td><td>${r.type}</td><td>${r.output_shape.join("×")}</td>`
        + `<td>${fmt(r.params)}</td>`
        + `<td><span class="bar macs" style="width:${80 * r.macs / maxMacs}px"></span>${fmt(r.macs)}</td>`
        + `<td><span class="bar mem" style="width:${80 * r.activations / maxMem}px"></span>${(4 * r.activations / 1e6).toFixed(3)} MB</td>`
        + `<td>${rf}</td>`;
      if (r.maps) tr.onclick = () => pick(i, tr);
      table.append(tr);
    });
    const inputCanvas = el("canvas", { id: "net-input", width: 256, height: 256 });
    const maps = el("div", { id: "net-maps", class: "maps" });
    section.append(el("div", { class: "row" }, [
      el("div", { class: "scroll" }, [table]),
      el("div", {}, [el("div", { text: "input, with the receptive field of the centre unit" }),
        inputCanvas, maps]),
    ]));
    const picture = new Image();
    picture.onload = () => drawInput(null);
    picture.src = N.input;
    function drawInput(rf) {
      const g = inputCanvas.getContext("2d");
      g.imageSmoothingEnabled = false;
      g.drawImage(picture, 0, 0, 256, 256);
      if (!rf) return;
      const [h, w] = N.input_size.slice(1);
      const sy = 256 / h, sx = 256 / w;
      const top = Math.max(0, h / 2 - rf[0] / 2), left = Math.max(0, w / 2 - rf[1] / 2);
      g.strokeStyle = "#ff2020"; g.lineWidth = 2;
      g.strokeRect(left * sx, top * sy, Math.min(rf[1], w) * sx, Math.min(rf[0], h) * sy);
    }
    function pick(i, tr) {
      const r = T.rows[i];
      for (const row of table.querySelectorAll("tr.selected")) row.classList.remove("selected");
      tr.classList.add("selected");
      drawInput(r.receptive_field);
      status(`feature maps of ${r.name} ...`);
      api("features", { layer: r.name }).then((f) => {
        status("");
        const [c, h, w] = f.shape;
        maps.innerHTML = "";
        const rf = r.receptive_field ? `receptive field ${r.receptive_field.join("×")} px` : "receptive field: not a single chain here";
        maps.append(el("div", { class: "maps-caption", id: "net-maps-shape", text: `${r.name}: ${c} × ${h} × ${w}` }),
          el("div", { class: "muted", text: `first ${f.shown} of ${c} maps, each scaled to its own range; ${rf}` }));
        const strip = new Image();
        strip.onload = () => {
          for (let k = 0; k < f.shown; k++) {
            const canvas = el("canvas", { width: w, height: h, class: "map" });
            canvas.getContext("2d").drawImage(strip, k * w, 0, w, h, 0, 0, w, h);
            maps.append(canvas);
          }
          maps.dataset.layer = r.name;
        };
        strip.src = f.strip;
      }).catch((e) => status(e.message));
    }
  }

  // ------------------------------------------------------------------------ 3. race
  function raceKey(p) {
    const uses = { momentum: ["lr_scale", "momentum"], nesterov: ["lr_scale", "momentum"],
      adam: ["lr_scale", "beta1", "beta2"], rmsprop: ["lr_scale", "beta2"], sgd: ["lr_scale"],
      adagrad: ["lr_scale"] }[p.optimizer] || [];
    return [p.surface, p.optimizer, ...uses.map((s) => `${s}=${Number(p[s])}`)].join("|");
  }
  function buildRace(section) {
    const R = LAB.race;
    const state = window_.labState.race;
    const surfaceSel = el("select", { id: "race-surface" });
    for (const name of Object.keys(R.surfaces)) surfaceSel.append(el("option", { value: name, text: name }));
    const controls = el("div", { class: "controls" });
    controls.append(el("label", { text: "surface" }), surfaceSel, el("span"));
    const sliders = {};
    for (const [name, label] of [["lr_scale", "lr × tuned"], ["momentum", "momentum"], ["beta1", "β1 (Adam)"], ["beta2", "β2 (Adam, RMSprop)"]]) {
      const values = LAB.sliders[name];
      const s = slider(controls, `race-${name}`, label, 0, values.length - 1, values.indexOf(LAB.defaults[name]));
      s.values = values; s.out.textContent = values[+s.input.value];
      sliders[name] = s;
    }
    const boxes = el("div", { id: "race-optimizers" });
    R.optimizers.forEach((o) => {
      const box = el("input", { type: "checkbox", value: o, id: `race-opt-${o}` });
      box.checked = true;
      boxes.append(el("label", {}, [box, ` ${o} `]));
    });
    const go = el("button", { id: "race-go", text: "race" });
    const stepSlider = el("input", { id: "race-step", type: "range", min: 0, max: 100, value: 100 });
    const stepOut = el("span", { id: "race-step-value" });
    const canvas = el("canvas", { id: "race-map", width: 460, height: 380, style: "cursor: crosshair" });
    const loss = el("div", { id: "race-loss", style: "width:460px;height:380px" });
    const table = el("table", { class: "plain", id: "race-table" });
    const lesson = el("p", { id: "race-lesson", class: "muted" });
    const startNote = el("div", { class: "muted", text: served ? "click the map to set the start point"
      : "start points are fixed in an exported page (run `cnnlab lab` to click a start)" });
    section.append(el("div", { class: "row" }, [
      el("div", {}, [controls, boxes, go, el("div", {}, ["step ", stepSlider, stepOut]), startNote, lesson, table]),
      canvas, loss,
    ]));
    const background = new Image();
    let surface, start, generation = 0;

    function settings() {
      const values = {};
      for (const [name, s] of Object.entries(sliders)) {
        values[name] = s.values[+s.input.value];
        s.out.textContent = values[name];
      }
      return values;
    }
    function chosen() { return R.optimizers.filter((o) => $(`race-opt-${o}`).checked); }
    function toCanvas(x, y) {
      return [(x - surface.xlim[0]) / (surface.xlim[1] - surface.xlim[0]) * canvas.width,
        (surface.ylim[1] - y) / (surface.ylim[1] - surface.ylim[0]) * canvas.height];
    }
    function setSurface() {
      surface = R.surfaces[surfaceSel.value];
      start = surface.start.slice();
      lesson.textContent = surface.lesson;
      background.src = surface.background;
      run();
    }
    function run() {
      const id = ++generation;
      const names = chosen();
      const values = settings();
      state.paths = {};
      state.pending = names.length;
      canvas.dataset.drawn = "";
      drawAll();
      status(`racing ${names.length} optimizers ...`);
      const began = performance.now();
      for (const o of names) {
        const params = { surface: surfaceSel.value, optimizer: o, ...values };
        if (served) { params.x = start[0]; params.y = start[1]; }
        api("race", params).then((path) => {
          if (id !== generation) return;
          state.paths[o] = path;
          if (--state.pending === 0) { status(""); state.seconds = (performance.now() - began) / 1000; }
          drawAll();
        }).catch((e) => { if (id === generation) { state.pending--; status(`${o}: ${e.message}`); } });
      }
    }
    function drawAll() {
      const names = Object.keys(state.paths);
      const longest = Math.max(1, ...names.map((o) => state.paths[o].x.length - 1));
      stepSlider.max = longest;
      if (+stepSlider.value > longest || state.follow !== false) stepSlider.value = longest;
      const upTo = +stepSlider.value;
      stepOut.textContent = ` ${upTo} / ${longest}`;
      const g = canvas.getContext("2d");
      g.clearRect(0, 0, canvas.width, canvas.height);
      if (background.complete) g.drawImage(background, 0, 0, canvas.width, canvas.height);
      g.fillStyle = "#fff";
      for (const m of surface.minima) { const [u, v] = toCanvas(...m); g.fillRect(u - 3, v - 3, 6, 6); }
      const [su, sv] = toCanvas(...start);
      g.beginPath(); g.arc(su, sv, 5, 0, 2 * Math.PI); g.fillStyle = "#000"; g.fill();
      const drawn = [];
      R.optimizers.forEach((o, i) => {
        const p = state.paths[o];
        if (!p) return;
        g.strokeStyle = COLORS[i % COLORS.length]; g.lineWidth = 2; g.beginPath();
        for (let k = 0; k <= Math.min(upTo, p.x.length - 1); k++) {
          const [u, v] = toCanvas(p.x[k], p.y[k]);
          if (k === 0) g.moveTo(u, v); else g.lineTo(u, v);
        }
        g.stroke();
        drawn.push(o);
      });
      canvas.dataset.drawn = drawn.join(",");
      drawLoss(upTo);
      drawTable();
    }
    function drawLoss(upTo) {
      const traces = [];
      R.optimizers.forEach((o, i) => {
        const p = state.paths[o];
        if (!p) return;
        const steps = p.loss.map((_, k) => k).filter((k) => k <= upTo);
        const floor = 1e-12;
        traces.push({ type: "scatter", mode: "lines", name: o, x: steps,
          y: steps.map((k) => p.loss[k] === null ? null : Math.max(floor, p.loss[k] - surface.min_loss)),
          line: { color: COLORS[i % COLORS.length] } });
      });
      plotly.then((P) => P.react(loss, traces, { title: { text: "loss − minimum vs step" }, margin: { l: 60, r: 10, t: 40, b: 40 },
        xaxis: { title: { text: "step" } }, yaxis: { type: "log", title: { text: "loss − minimum" } },
        legend: { orientation: "h", y: 1.02, yanchor: "bottom", x: 1, xanchor: "right" } }, { displaylogo: false, responsive: false }));
    }
    function drawTable() {
      table.innerHTML = "<tr><th>optimizer</th><th>lr</th><th>steps to tol.</th><th>final loss</th></tr>";
      R.optimizers.forEach((o, i) => {
        const p = state.paths[o];
        if (!p) return;
        const reached = p.steps_to_tolerance === null ? (p.diverged ? "diverged" : "not reached") : p.steps_to_tolerance;
        table.append(el("tr", { "data-optimizer": o, html: `<td><span class="swatch" style="background:${COLORS[i % COLORS.length]}"></span>${o}</td>`
          + `<td>${p.lr === null ? "line search" : Number(p.lr.toPrecision(3))}</td><td>${reached}</td>`
          + `<td>${p.final_loss === null ? "∞" : p.final_loss.toExponential(2)}</td>` }));
      });
    }
    let debounce = null;
    const later = () => { clearTimeout(debounce); debounce = setTimeout(run, 150); };
    for (const s of Object.values(sliders)) s.input.addEventListener("input", () => { settings(); later(); });
    stepSlider.addEventListener("input", () => { state.follow = +stepSlider.value === +stepSlider.max; drawAll(); });
    surfaceSel.onchange = setSurface;
    go.onclick = run;
    boxes.addEventListener("change", later);
    canvas.addEventListener("click", (event) => {
      if (!served) return;
      const box = canvas.getBoundingClientRect();
      const u = (event.clientX - box.left) / box.width, v = (event.clientY - box.top) / box.height;
      start = [surface.xlim[0] + u * (surface.xlim[1] - surface.xlim[0]),
        surface.ylim[1] - v * (surface.ylim[1] - surface.ylim[0])];
      run();
    });
    background.onload = () => drawAll();
    setSurface();
  }

  // ------------------------------------------------------------------------ 4. landscape
  function buildLandscape(section) {
    const L = LAB.landscape;
    if (!L.available) { section.append(el("p", { text: L.why_not })); return; }
    const progress = el("progress", { id: "land-progress", max: 1, value: 0 });
    const go = el("button", { id: "land-go", text: "compute the landscape" });
    const describe = el("p", { id: "land-describe" });
    const plot = el("div", { id: "land-3d", style: "width:620px;height:520px" });
    const contour = el("img", { id: "land-contour", alt: "2-D contour" });
    const plane = L.trajectory ? `the plane of the training path (PCA of the per-epoch weights): ${L.trajectory}`
      : "two filter-normalised random directions (train with --save-trajectory to see the training path)";
    section.append(el("p", { class: "muted", text: `loss (Li et al. 2018) along ${plane}; ${L.grid}×${L.grid} grid; drag to rotate` }),
      el("div", {}, [go, " ", progress]), describe, el("div", { class: "row" }, [plot, contour]));
    const state = window_.labState.landscape;
    function poll() {
      api("landscape", {}).then((answer) => {
        state.state = answer.state;
        if (answer.state === "running") {
          progress.max = answer.total; progress.value = answer.done;
          status(`landscape: ${answer.done} / ${answer.total} losses`);
          setTimeout(poll, 300);
        } else if (answer.state === "error") {
          status(answer.message);
        } else {
          status("");
          progress.max = 1; progress.value = 1;
          describe.textContent = `${answer.describe} (on ${answer.data})`;
          contour.src = answer.contour;
          const traces = [{ type: "surface", x: answer.alphas, y: answer.betas, z: answer.losses, name: "loss",
            colorscale: "Viridis", contours: { z: { show: true, usecolormap: true, project: { z: true } } } }];
          const path = answer.trajectory;
          if (path) {
            const floor = Math.min(...answer.losses.flat());
            traces.push({ type: "scatter3d", mode: "lines+markers", name: "training path (on the floor)",
              x: path.alphas, y: path.betas, z: path.alphas.map(() => floor), text: path.epochs.map((e) => `epoch ${e}`),
              line: { color: "#d62728", width: 5 }, marker: { size: 3, color: "#d62728" } });
          }
          plotly.then((P) => P.newPlot(plot, traces,
          { margin: { l: 0, r: 0, t: 10, b: 0 }, scene: { xaxis: { title: { text: "α" } },
            yaxis: { title: { text: "β" } }, zaxis: { title: { text: `loss (≤ ${answer.cap})` } } } },
          { displaylogo: false })).then(() => { state.rendered = true; });
        }
      }).catch((e) => status(e.message));
    }
    go.onclick = () => { go.disabled = true; poll(); };
    if (!served) go.click();
  }

  // ------------------------------------------------------------------------ 5. saliency
  function buildSaliency(section) {
    const A = LAB.saliency;
    if (!A.available) { section.append(el("p", { text: "Pass a model name or a checkpoint to see saliency maps." })); return; }
    const picker = el("select", { id: "sal-target" });
    const top5 = el("ol", { id: "sal-top5" });
    const figures = el("div", { class: "row saliency" });
    const titles = { input: "input", gradient: "gradient saliency (Simonyan et al.)",
      guided: "guided backprop (Springenberg et al.)", deconvnet: "deconvnet (Zeiler & Fergus)",
      occlusion: "occlusion (drop in p when covered)" };
    for (const [key, title] of Object.entries(titles))
      figures.append(el("figure", {}, [el("img", { id: `sal-${key}`, alt: key }), el("figcaption", { text: title })]));
    section.append(el("div", {}, ["explain class ", picker]), figures, el("p", { id: "sal-skipped", class: "muted" }), el("h3", { text: "top 5" }), top5);
    function fill(answer, first) {
      $("sal-input").src = answer.input;
      for (const key of ["gradient", "guided", "deconvnet", "occlusion"]) {
        const img = $(`sal-${key}`);
        img.parentElement.style.display = answer.maps[key] ? "" : "none";
        if (answer.maps[key]) img.src = answer.maps[key];
      }
      $("sal-skipped").textContent = answer.skipped || "";
      top5.innerHTML = "";
      for (const c of answer.top5) top5.append(el("li", { text: `${c.name}: p = ${c.p.toFixed(3)}` }));
      if (first) {
        picker.innerHTML = "";
        const choices = served ? A.classes.map((name, i) => ({ index: i, name })) : answer.top5;
        for (const c of choices) picker.append(el("option", { value: c.index, text: c.name }));
      }
      picker.value = answer.target;
      window_.labState.saliency.target = answer.target;
    }
    status("saliency ...");
    api("saliency", {}).then((a) => { status(""); fill(a, true); }).catch((e) => status(e.message));
    picker.onchange = () => api("saliency", { target: picker.value }).then((a) => fill(a, false))
      .catch((e) => status(e.message));
  }

  $("model-label").textContent = LAB.title;
  addView("conv", "1 · convolution", buildConv);
  addView("network", "2 · network", buildNetwork);
  addView("race", "3 · optimizer race", buildRace);
  addView("landscape", "4 · loss landscape", buildLandscape);
  addView("saliency", "5 · saliency", buildSaliency);
  show(location.hash ? location.hash.slice(1) : "conv");
})();
