// The matrix of series and its lightbox (seqnb.ui.matrix_view): draws the page the kernel sends,
// and sends every click and key back as a custom message that a plain Python method handles.

const AXES = ["prompt", "seed", "model", "size", "count", "optimize"];
const KEYS = {
  ArrowLeft: { action: "step_frame", step: -1 }, ArrowRight: { action: "step_frame", step: 1 },
  ArrowUp: { action: "step_run", step: -1 }, ArrowDown: { action: "step_run", step: 1 },
  p: { action: "pick" }, x: { action: "reject" }, Escape: { action: "close" },
};
const STATE_WORDS = { failed: "failed", short: "short", running: "running", queued: "queued", loading: "loading", ended: "" };

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
const PLURAL = { prompt: "prompts", seed: "seeds", model: "models", size: "sizes", count: "counts", optimize: "optimize modes" };
function many(n, axis) { return axis ? `${n} ${n === 1 ? axis : PLURAL[axis]}` : ""; }
function stars(n) { return n ? "★".repeat(n) + "☆".repeat(5 - n) : ""; }

function axisSelect(name, value, offered, allowNone) {
  const opts = AXES.filter((a) => offered.includes(a) || a === value)
    .map((a) => `<option value="${a}"${a === value ? " selected" : ""}>${a}</option>`);
  if (allowNone) opts.unshift(`<option value=""${value ? "" : " selected"}>none</option>`);
  return `<label>${name} <select data-axis="${name}">${opts.join("")}</select></label>`;
}

function frameHtml(run, f, size) {
  const badge = f.rating ? `<span class="seqnb-m-fstar">${"★".repeat(f.rating)}</span>` : "";
  const tip = `frame ${f.i + 1} of ${run.requested}` + (f.reason ? ": " + f.reason : f.label ? ": " + f.label : "");
  if (f.src) {
    return `<button class="seqnb-m-frame" data-run="${run.id}" data-frame="${f.i}" title="${esc(tip)} (click to open)">` +
      `<img src="${f.src}" width="${size}" height="${size}" alt="${esc(tip)}">${badge}</button>`;
  }
  return `<span class="seqnb-m-frame seqnb-m-empty seqnb-m-${esc(f.state)}" style="width:${size}px;height:${size}px" title="${esc(tip)}">` +
    `${esc(f.label || (f.state === "waiting" ? "" : f.state))}${badge}</span>`;
}

function runHtml(run, size) {
  const verdict = run.verdict === "picked" ? `<span class="seqnb-m-pick">✔ picked</span>`
    : run.verdict === "rejected" ? `<span class="seqnb-m-reject">✘ rejected</span>` : "";
  const state = STATE_WORDS[run.state] !== undefined && run.state !== "completed"
    ? `<span class="seqnb-m-state seqnb-m-st-${run.state}" title="${esc(run.words)}">${esc(run.words || run.state)}</span>` : "";
  const tags = (run.tags || []).map((t) => `<span class="seqnb-m-tag">#${esc(t)}</span>`).join("");
  const head = [run.label ? `<span class="seqnb-m-sub">${esc(run.label)}</span>` : "",
    run.rating ? `<span class="seqnb-m-star" title="series rated ${run.rating} of 5">${stars(run.rating)}</span>` : "",
    verdict, state, tags].join("");
  const frames = run.frames.map((f) => frameHtml(run, f, size)).join("");
  return `<div class="seqnb-m-run seqnb-m-v-${run.verdict} seqnb-m-st-${run.state}" data-run="${run.id}">` +
    `<div class="seqnb-m-runhead">${head}</div><div class="seqnb-m-strip">${frames}</div></div>`;
}

function render({ model, el }) {
  el.classList.add("seqnb-matrix");
  el.innerHTML = `<div class="seqnb-m-bar"></div><div class="seqnb-m-scroll"><table class="seqnb-m-table"></table></div>
    <div class="seqnb-m-message"></div>`;
  const box = document.createElement("div"); // the lightbox lives on the page body: an output area may clip it
  box.className = "seqnb-m-lightbox";
  box.tabIndex = -1;
  box.setAttribute("data-lm-suppress-shortcuts", "true"); // keys here are the lightbox's, not JupyterLab's
  box.hidden = true;
  document.body.appendChild(box);
  const send = (msg) => model.send(msg);
  let largeUrl = null;

  function frameSize(s) {
    // As large as the page's columns allow in the width at hand (at most the thumbnails' own size).
    const frames = Math.max(1, ...s.cells.flat().flat().map((r) => r.frames.length));
    const width = (el.clientWidth || 1100) - 200 - s.cols.length * 16;
    return Math.max(40, Math.min(s.size, Math.floor(width / Math.max(1, s.cols.length) / frames) - 3));
  }

  function locate(runId) {
    const s = model.get("snapshot") || {};
    for (let i = 0; i < (s.cells || []).length; i++)
      for (let j = 0; j < s.cells[i].length; j++)
        for (const run of s.cells[i][j]) if (run.id === runId) return { run, row: s.rows[i], col: s.cols[j] };
    return null;
  }

  function drawPage() {
    const s = model.get("snapshot") || {};
    if (!s.axes) return;
    const p = s.page, t = s.total, a = s.axes, size = frameSize(s);
    const rowsShown = s.rows.length ? `${p.row_page * p.rows + 1}-${p.row_page * p.rows + s.rows.length}` : "0";
    const colsShown = s.cols.length ? `${p.col_page * p.cols + 1}-${p.col_page * p.cols + s.cols.length}` : "0";
    const facets = (s.facets || []).map((f, i) =>
      `<button class="seqnb-m-facet${i === p.facet ? " seqnb-m-on" : ""}" data-facet="${i}" title="${esc(f.title)}">${esc(f.label)}</button>`).join("");
    const promote = Object.entries(s.promote || {}).map(([k, v]) => `<option value="${esc(k)}">${esc(v)}</option>`).join("");
    el.querySelector(".seqnb-m-bar").innerHTML =
      `<b>${t.runs} series</b> <span class="seqnb-m-dims">${[many(t.rows, a.rows), many(t.cols, a.cols), many((s.facets || []).length, a.facet)].filter(Boolean).join(" × ")}</span>` +
      axisSelect("rows", a.rows, a.offered, true) + axisSelect("cols", a.cols, a.offered, true) +
      axisSelect("facet", a.facet, a.offered, true) +
      `<button class="seqnb-m-swap" title="swap rows and columns">⇄ swap</button>` +
      `<span class="seqnb-m-pager"><button data-page="rows" data-step="-1" ${p.row_page ? "" : "disabled"}>▲</button>` +
      `rows ${rowsShown} of ${t.rows}<button data-page="rows" data-step="1" ${p.row_page + 1 < p.row_pages ? "" : "disabled"}>▼</button>` +
      `<button data-page="cols" data-step="-1" ${p.col_page ? "" : "disabled"}>◀</button>` +
      `cols ${colsShown} of ${t.cols}<button data-page="cols" data-step="1" ${p.col_page + 1 < p.col_pages ? "" : "disabled"}>▶</button></span>` +
      (facets ? `<span class="seqnb-m-facets">${esc(a.facet)}: ${facets}</span>` : "") +
      `<span class="seqnb-m-picked${t.picked ? "" : " seqnb-m-zero"}">${t.picked} picked` +
      (promote ? ` <select class="seqnb-m-promote-choice">${promote}</select><button class="seqnb-m-promote" title="re-submit the picked series with this change (priced and checked like a sweep)">Promote</button>` : "") +
      `</span>` + (a.unplaced.length ? `<span class="seqnb-m-unplaced">some cells hold several series, told apart by ${esc(a.unplaced.join(", "))}</span>` : "") +
      (s.marks ? "" : `<span class="seqnb-m-unplaced">no ledger: marks are off</span>`);
    const corner = `<th class="seqnb-m-corner">${esc(a.rows || "")} \\ ${esc(a.cols || "")}</th>`;
    const head = `<tr>${corner}${s.cols.map((c) => `<th class="seqnb-m-col" title="${esc(c.title)}">${esc(c.label)}</th>`).join("")}</tr>`;
    const body = s.rows.map((r, i) => `<tr><th class="seqnb-m-row" title="${esc(r.title)}">${esc(r.label)}</th>` +
      s.cells[i].map((cell) => `<td class="seqnb-m-cell">${cell.length ? cell.map((run) => runHtml(run, size)).join("")
        : `<span class="seqnb-m-none" title="nothing was run with these values">—</span>`}</td>`).join("") + "</tr>").join("");
    el.querySelector(".seqnb-m-table").innerHTML = head + body;
  }

  function drawBox() {
    const b = model.get("lightbox") || {};
    if (!b.open) {
      if (!box.hidden) { box.hidden = true; el.focus?.(); }
      return;
    }
    const wasHidden = box.hidden;
    const fr = b.frame_rating || 0;
    const starButtons = [1, 2, 3, 4, 5].map((n) =>
      `<button data-rate="${n}" class="${n <= fr ? "seqnb-m-on" : ""}" title="rate this frame ${n} (key ${n})">${n <= fr ? "★" : "☆"}</button>`).join("");
    const seriesButtons = [1, 2, 3, 4, 5].map((n) =>
      `<button data-rate="${n}" data-series="1" class="${n <= (b.rating || 0) ? "seqnb-m-on" : ""}" title="rate the whole series ${n} (Shift+${n})">${n <= (b.rating || 0) ? "★" : "☆"}</button>`).join("");
    const verdict = b.verdict === "picked" ? "✔ picked" : b.verdict === "rejected" ? "✘ rejected" : "";
    const here = locate(b.run);
    const where = here ? [here.row?.label, here.col?.label, here.run.label].filter(Boolean).map(esc).join(" · ") : "";
    const film = here ? here.run.frames.map((f) => f.src
      ? `<img src="${f.src}" data-frame="${f.i}" class="${f.i === b.frame ? "seqnb-m-here" : ""}" title="frame ${f.i + 1}">`
      : `<span data-frame="${f.i}" class="seqnb-m-film-empty${f.i === b.frame ? " seqnb-m-here" : ""}">${f.i + 1}</span>`).join("") : "";
    const missing = b.frame_state !== "cached" ? `<div class="seqnb-m-nolarge">${esc(b.frame_label || b.words || b.frame_state)}</div>` : "";
    box.innerHTML = `<div class="seqnb-m-lb-inner" role="dialog" aria-label="frame ${b.frame + 1} of ${b.count}">
      <div class="seqnb-m-lb-left"><div class="seqnb-m-lb-image"><button class="seqnb-m-lb-nav" data-act="step_frame" data-step="-1" title="previous frame (←)">‹</button>
        ${missing || `<img class="seqnb-m-large" alt="frame ${b.frame + 1}">`}
        <button class="seqnb-m-lb-nav" data-act="step_frame" data-step="1" title="next frame (→)">›</button></div>
        <div class="seqnb-m-film">${film}</div></div>
      <div class="seqnb-m-lb-info">
        <div class="seqnb-m-lb-title"><b>frame ${b.frame + 1} of ${b.count}</b> <span class="seqnb-m-verdict">${verdict}</span>
          ${b.rating ? `<span title="series rating">series ${stars(b.rating)}</span>` : ""}</div>
        ${where ? `<div class="seqnb-m-lb-where">${where}</div>` : ""}
        <div class="seqnb-m-lb-prompt">${esc(b.prompt)}</div>
        <table class="seqnb-m-lb-facts"><tr><th>seed</th><td>${esc(b.seed)}</td></tr><tr><th>size</th><td>${esc(b.size)}${b.pixels && !String(b.size).startsWith(b.pixels) ? ` (${esc(b.pixels)} px)` : ""}</td></tr>
          <tr><th>model</th><td>${esc(b.model)}${b.optimize ? ` · optimize ${esc(b.optimize)}` : ""}</td></tr><tr><th>cost</th><td>${esc(b.cost)}</td></tr>
          <tr><th>run</th><td><code>${esc(b.run)}</code> ${b.state !== "completed" ? esc(b.words || b.status) : ""}</td></tr></table>
        <div class="seqnb-m-lb-rate"><span>this frame</span>${starButtons}<button data-rate="0" title="clear this frame's rating (key 0)">clear</button></div>
        <div class="seqnb-m-lb-rate"><span>the series</span>${seriesButtons}<button data-rate="0" data-series="1" title="clear the series' rating (Shift+0)">clear</button></div>
        <div class="seqnb-m-lb-acts">
          <button data-act="pick" class="${b.verdict === "picked" ? "seqnb-m-on" : ""}" title="pick this series (key p; again to un-pick)">✔ pick</button>
          <button data-act="reject" class="${b.verdict === "rejected" ? "seqnb-m-on" : ""}" title="reject this series (key x; again to clear)">✘ reject</button>
          <button data-act="step_run" data-step="-1" title="the run above in this column (↑)">↑ run</button>
          <button data-act="step_run" data-step="1" title="the run below in this column (↓)">↓ run</button>
          <button data-act="close" title="close (Esc)">close</button></div>
        <div class="seqnb-m-lb-keys"><kbd>←</kbd> <kbd>→</kbd> frames · <kbd>↑</kbd> <kbd>↓</kbd> runs · <kbd>1</kbd>-<kbd>5</kbd> rate the frame (<kbd>Shift</kbd>: the series) · <kbd>0</kbd> clear · <kbd>p</kbd> pick · <kbd>x</kbd> reject · <kbd>Esc</kbd> close</div>
        <div class="seqnb-m-message">${model.get("message") || ""}</div>
      </div></div>`;
    if (largeUrl && largeUrl.run === b.run && largeUrl.frame === b.frame) box.querySelector(".seqnb-m-large")?.setAttribute("src", largeUrl.url);
    box.hidden = false;
    if (wasHidden || !box.contains(document.activeElement)) box.focus();
  }

  function onClick(event) {
    const t = event.target.closest("button");
    if (!t) return;
    if (t.dataset.run !== undefined && t.dataset.frame !== undefined) send({ action: "open", run: t.dataset.run, frame: Number(t.dataset.frame) });
    else if (t.dataset.page) send({ action: "page", [t.dataset.page]: Number(t.dataset.step) });
    else if (t.dataset.facet !== undefined) send({ action: "facet", index: Number(t.dataset.facet) });
    else if (t.classList.contains("seqnb-m-swap")) send({ action: "swap" });
    else if (t.classList.contains("seqnb-m-promote")) send({ action: "promote", choice: el.querySelector(".seqnb-m-promote-choice").value });
  }
  function onChange(event) {
    const t = event.target;
    if (!t.dataset.axis) return;
    const pick = (n) => el.querySelector(`select[data-axis="${n}"]`).value || null;
    send({ action: "axes", rows: pick("rows"), cols: pick("cols"), facet: pick("facet") });
  }
  function onBoxClick(event) {
    const t = event.target.closest("button");
    if (event.target === box) { send({ action: "close" }); return; }
    const film = event.target.closest(".seqnb-m-film [data-frame]");
    if (film) { send({ action: "open", run: (model.get("lightbox") || {}).run, frame: Number(film.dataset.frame) }); return; }
    if (!t) return;
    if (t.dataset.rate !== undefined) send({ action: "rate", n: Number(t.dataset.rate), series: Boolean(t.dataset.series) });
    else if (t.dataset.act) send({ action: t.dataset.act, step: Number(t.dataset.step || 0) });
  }
  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const digit = /^(?:Digit|Numpad)([0-5])$/.exec(event.code);
    let msg = KEYS[event.key] || KEYS[event.key.toLowerCase?.()];
    if (digit) msg = { action: "rate", n: Number(digit[1]), series: event.shiftKey };
    if (!msg) return;
    event.preventDefault();
    event.stopPropagation();
    send(msg);
  }
  function onMessage(msg, buffers) {
    if (msg.kind !== "large" || !buffers?.length) return;
    if (largeUrl) URL.revokeObjectURL(largeUrl.url);
    const blob = new Blob([buffers[0].buffer ?? buffers[0]], { type: "image/jpeg" });
    largeUrl = { run: msg.run, frame: msg.frame, url: URL.createObjectURL(blob) };
    const b = model.get("lightbox") || {};
    if (b.run === msg.run && b.frame === msg.frame) box.querySelector(".seqnb-m-large")?.setAttribute("src", largeUrl.url);
  }
  function onMessageText() {
    el.querySelector(":scope > .seqnb-m-message").innerHTML = model.get("message") || "";
    const m = box.querySelector(".seqnb-m-message");
    if (m) m.innerHTML = model.get("message") || "";
  }

  const resize = new ResizeObserver(() => drawPage());
  resize.observe(el);
  el.addEventListener("click", onClick);
  el.addEventListener("change", onChange);
  box.addEventListener("click", onBoxClick);
  box.addEventListener("keydown", onKey);
  model.on("change:snapshot", drawPage);
  model.on("change:lightbox", drawBox);
  model.on("change:message", onMessageText);
  model.on("msg:custom", onMessage);
  drawPage();
  drawBox();
  onMessageText();
  return () => {
    model.off("change:snapshot", drawPage);
    model.off("change:lightbox", drawBox);
    model.off("change:message", onMessageText);
    model.off("msg:custom", onMessage);
    if (largeUrl) URL.revokeObjectURL(largeUrl.url);
    resize.disconnect();
    box.remove();
  };
}

export default { render };
