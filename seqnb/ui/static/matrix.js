// The matrix of series and its lightbox (seqnb.ui.matrix_view): draws the page the kernel sends,
// and sends every click and key back as a custom message that a plain Python method handles.
// Markup is made only by the html`...` tag below, which escapes every value put into it (a run id,
// a prompt, a label: anyone on a team ledger may write them), and reaches the page only through
// put(): no other code assigns innerHTML, so no edit can forget to escape.
//
// Keys. In the matrix (focus on a frame): arrows move the focus from frame to frame, Enter opens the
// focused frame in the lightbox, f / Shift+F show the next / previous table (facet). In the lightbox:
// ← → frames (on past a series' end to the next series along the row), ↑ ↓ the run above / below in
// the column, f / Shift+F the same place in the next / previous table, 1-5 rate the frame (Shift: the
// series), 0 clears, p pick, x reject, Esc closes and puts the focus back on the frame last shown.

const AXES = ["prompt", "seed", "model", "size", "count", "optimize"];
const KEYS = {
  ArrowLeft: { action: "step_frame", step: -1 }, ArrowRight: { action: "step_frame", step: 1 },
  ArrowUp: { action: "step_run", step: -1 }, ArrowDown: { action: "step_run", step: 1 },
  f: { action: "step_facet", step: 1 }, F: { action: "step_facet", step: -1 },
  p: { action: "pick" }, x: { action: "reject" }, Escape: { action: "close" },
};
const MIN_FRAME = 64; // pixels on a frame's longer side
const STATE_WORDS = { failed: "failed", short: "short", running: "running", queued: "queued", loading: "loading", ended: "" };
const PROMOTE_IS = "A promote makes each picked series again, as a new paid run with the change, shown under its original. "
  + "This button only prices it: a second button, which states the sum, sends it.";

class Markup { constructor(text) { this.text = text; } }
function esc(value) {
  return String(value ?? "").replace(/[&<>"'`]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;", "`": "&#96;" })[c]);
}
function piece(value) {
  if (value instanceof Markup) return value.text;
  if (Array.isArray(value)) return value.map(piece).join("");
  return value === false || value === null || value === undefined ? "" : esc(value);
}
// html`<b>${text}</b>`: every value escaped, but markup made by html itself (or a list of it) kept.
function html(strings, ...values) {
  return new Markup(strings.reduce((out, s, i) => out + piece(values[i - 1]) + s));
}
// Pieces of markup one after another (a plain string among them is escaped like any value).
function cat(...parts) { return new Markup(parts.map(piece).join("")); }
// The kernel's own message: HTML it made, every value in it escaped there (matrix_view.py).
function kernelHtml(text) { return new Markup(String(text ?? "")); }
function put(node, markup) {
  if (!(markup instanceof Markup)) throw new TypeError("put() takes markup made by html`...`");
  node.innerHTML = markup.text;
}
const PLURAL = { prompt: "prompts", seed: "seeds", model: "models", size: "sizes", count: "counts", optimize: "optimize modes" };
function many(n, axis) { return axis ? `${n} ${n === 1 ? axis : PLURAL[axis]}` : ""; }
function rating(n) { return Math.max(0, Math.min(5, Math.trunc(Number(n)) || 0)); } // 0-5, whatever a row says
function stars(n) { n = rating(n); return n ? "★".repeat(n) + "☆".repeat(5 - n) : ""; }
// Width and height of a frame whose longer side is `size`, in its own shape (a 16:9 frame is not cropped).
function fitted(aspect, size) {
  const a = Number(aspect) > 0 ? Number(aspect) : 1;
  return a >= 1 ? [size, Math.max(1, Math.round(size / a))] : [Math.max(1, Math.round(size * a)), size];
}
function verdictHtml(verdict) {
  if (verdict === "picked") return html`<span class="seqnb-m-pick">✔ picked</span>`;
  if (verdict === "rejected") return html`<span class="seqnb-m-reject">✘ rejected</span>`;
  return "";
}
function madeHtml(run) {
  if (!run.made) return "";
  const why = run.made === "promoted"
    ? "a promote: the same request again with a change, as a new paid run" : "a rerun of it";
  return html`<span class="seqnb-m-made seqnb-m-made-${run.made}" title="made from run ${run.parent}: ${why}">${
    run.made === "promoted" ? "⤴ promoted" : "↻ rerun"}</span>`;
}

function axisSelect(name, value, offered, allowNone) {
  const opts = AXES.filter((a) => offered.includes(a) || a === value)
    .map((a) => html`<option value="${a}" ${a === value && "selected"}>${a}</option>`);
  if (allowNone) opts.unshift(html`<option value="" ${!value && "selected"}>none</option>`);
  return html`<label>${name} <select data-axis="${name}" data-key="axis-${name}">${opts}</select></label>`;
}

function frameHtml(run, f, size, full) {
  const badge = rating(f.rating) > 0 && html`<span class="seqnb-m-fstar">${"★".repeat(rating(f.rating))}</span>`;
  const tip = `frame ${f.i + 1} of ${run.requested}` + (f.reason ? ": " + f.reason : f.label ? ": " + f.label : "");
  const key = `frame:${run.id}:${f.i}`;
  if (f.src) {
    const [w, h] = f.w && f.h ? [Math.round(f.w * size / full), Math.round(f.h * size / full)] : fitted(run.aspect, size);
    return html`<button class="seqnb-m-frame" data-run="${run.id}" data-frame="${f.i}" data-key="${key}" title="${
      tip} (click or Enter to open)">${html`<img src="${f.src}" width="${w}" height="${h}" alt="${tip}">`}${badge}</button>`;
  }
  const [w, h] = fitted(run.aspect, size);
  const words = f.label || (f.state === "waiting" ? "" : f.state);
  return html`<button class="seqnb-m-frame seqnb-m-empty seqnb-m-${f.state}" data-run="${run.id}" data-frame="${f.i}" data-key="${
    key}" style="width:${w}px;height:${h}px" title="${tip}">${words}${badge}</button>`;
}

function runHtml(run, size, full) {
  const state = STATE_WORDS[run.state] !== undefined && run.state !== "completed"
    && html`<span class="seqnb-m-state seqnb-m-st-${run.state}" title="${run.words}">${run.words || run.state}</span>`;
  const tags = (run.tags || []).map((t) => html`<span class="seqnb-m-tag">#${t}</span>`);
  const head = [madeHtml(run), run.label && html`<span class="seqnb-m-sub" title="${run.title}">${run.label}</span>`,
    rating(run.rating) > 0 && html`<span class="seqnb-m-star" title="series rated ${run.rating} of 5">${stars(run.rating)}</span>`,
    verdictHtml(run.verdict), state, tags];
  const frames = run.frames.map((f) => frameHtml(run, f, size, full));
  return cat(html`<div class="seqnb-m-run seqnb-m-v-${run.verdict} seqnb-m-st-${run.state}${run.parent && " seqnb-m-child"}" data-run="${run.id}">`,
    html`<div class="seqnb-m-runhead">${head}</div><div class="seqnb-m-strip">${frames}</div></div>`);
}

function render({ model, el }) {
  el.classList.add("seqnb-matrix");
  el.setAttribute("data-lm-suppress-shortcuts", "true"); // keys on its frames are the matrix's, not JupyterLab's
  put(el, html`<div class="seqnb-m-bar"></div><div class="seqnb-m-offer" hidden></div><div class="seqnb-m-message"></div>
    <div class="seqnb-m-scroll"><table class="seqnb-m-table"></table></div>
    <div class="seqnb-m-help">keys: arrows move between frames · <kbd>Enter</kbd> opens the frame · <kbd>f</kbd> the next table</div>`);
  const box = document.createElement("div"); // the lightbox lives on the page body: an output area may clip it
  box.className = "seqnb-m-lightbox";
  box.tabIndex = -1;
  box.setAttribute("data-lm-suppress-shortcuts", "true"); // keys here are the lightbox's, not JupyterLab's
  box.hidden = true;
  document.body.appendChild(box);
  const send = (msg) => model.send(msg);
  let largeUrl = null;
  let lastShown = null; // {run, frame}: the frame the lightbox shows (or last showed), to focus when it closes
  let focusWanted = null; // a data-key to focus once drawn

  function keyOf(node) { return node && node.dataset ? node.dataset.key : undefined; }
  function byKey(root, key) { return [...root.querySelectorAll("[data-key]")].find((n) => n.dataset.key === key); }
  // Redraw `node` and give the focus back to the element it had (by data-key), or to the one asked for.
  function redraw(node, markup, root) {
    const active = document.activeElement;
    const had = root.contains(active) ? keyOf(active) : undefined;
    put(node, markup);
    const key = focusWanted || had;
    const target = key !== undefined && byKey(root, key);
    if (target) {
      target.focus({ preventScroll: !focusWanted });
      if (focusWanted) target.scrollIntoView({ block: "nearest", inline: "nearest" });
      focusWanted = null;
    }
  }

  function frameSize(s) {
    // As large as the page's columns allow in the width at hand (at most the thumbnails' own size); never so small
    // that series cannot be told apart: below MIN_FRAME the page scrolls sideways instead.
    const frames = Math.max(1, ...s.cells.flat().flat().map((r) => r.frames.length));
    const width = (el.clientWidth || 1100) - 200 - s.cols.length * 16;
    return Math.max(MIN_FRAME, Math.min(s.size, Math.floor(width / Math.max(1, s.cols.length) / frames) - 3));
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
      html`<button class="seqnb-m-facet${i === p.facet && " seqnb-m-on"}" data-facet="${i}" data-key="facet-${i}" title="${
        f.title} (f: the next table)${f.picked > 0 && `; ${f.picked} picked here`}">${f.label}${f.picked > 0 && html` <span class="seqnb-m-facet-picks">${f.picked} ✔</span>`}</button>`);
    const promote = (s.promote || []).map((k) => html`<option value="${k}">${k}</option>`);
    const dims = [many(t.rows, a.rows), many(t.cols, a.cols), many((s.facets || []).length, a.facet)].filter(Boolean).join(" × ");
    redraw(el.querySelector(".seqnb-m-bar"), cat(
      html`<b>${t.runs - (t.made || 0)} series</b>${t.made > 0 && html` <span class="seqnb-m-made" title="made from series here (promoted or rerun), each shown under its original">+ ${t.made} promoted</span>`} <span class="seqnb-m-dims">${dims}</span>`,
      axisSelect("rows", a.rows, a.offered, true), axisSelect("cols", a.cols, a.offered, true),
      axisSelect("facet", a.facet, a.offered, true),
      html`<button class="seqnb-m-swap" data-key="swap" title="swap rows and columns">⇄ swap</button>`,
      html`<span class="seqnb-m-pager"><button data-page="rows" data-step="-1" data-key="rows-up" ${!p.row_page && "disabled"}>▲</button>`,
      html`rows ${rowsShown} of ${t.rows}<button data-page="rows" data-step="1" data-key="rows-down" ${p.row_page + 1 >= p.row_pages && "disabled"}>▼</button>`,
      html`<button data-page="cols" data-step="-1" data-key="cols-left" ${!p.col_page && "disabled"}>◀</button>`,
      html`cols ${colsShown} of ${t.cols}<button data-page="cols" data-step="1" data-key="cols-right" ${p.col_page + 1 >= p.col_pages && "disabled"}>▶</button></span>`,
      facets.length > 0 && html`<span class="seqnb-m-facets">${a.facet}: ${facets}</span>`,
      html`<span class="seqnb-m-picked${!t.picked && " seqnb-m-zero"}">${t.picked} picked`,
      promote.length > 0 && html` <select class="seqnb-m-promote-choice" data-key="promote-choice" title="the change each pick is made again with">${promote}</select><button class="seqnb-m-promote" data-key="promote" title="${PROMOTE_IS}">Promote…</button>`,
      html`</span>`,
      a.unplaced.length > 0 && html`<span class="seqnb-m-unplaced">some cells hold several series, told apart by ${a.unplaced.join(", ")}</span>`,
      !s.marks && html`<span class="seqnb-m-unplaced">no ledger: marks are off</span>`), el);
    const choice = model.get("offer")?.choice;
    const select = el.querySelector(".seqnb-m-promote-choice");
    if (select && choice && (s.promote || []).includes(choice)) select.value = choice;
    const full = s.size;
    const corner = html`<th class="seqnb-m-corner">${a.rows || ""} \\ ${a.cols || ""}</th>`;
    const head = html`<tr>${corner}${s.cols.map((c) => html`<th class="seqnb-m-col" title="${c.title}">${c.label}</th>`)}</tr>`;
    const body = s.rows.map((r, i) => html`<tr><th class="seqnb-m-row" title="${r.title}">${r.label}</th>${
      s.cells[i].map((cell) => html`<td class="seqnb-m-cell">${cell.length ? cell.map((run) => runHtml(run, size, full))
        : html`<span class="seqnb-m-none" title="nothing was run with these values">—</span>`}</td>`)}</tr>`);
    redraw(el.querySelector(".seqnb-m-table"), cat(head, body), el);
  }

  function drawOffer() {
    const o = model.get("offer") || {};
    const node = el.querySelector(".seqnb-m-offer");
    if (!o.choice) { node.hidden = true; put(node, html``); return; }
    node.hidden = false;
    const again = (o.already || []).length > 0 && !o.again && html`<button class="seqnb-m-again" data-key="again" title="${
      "make them once more: each is a new paid run beside the one already made"}">${
      o.runs ? "Promote those again too (pays again)" : "Promote them again (pays again)"}</button>`;
    redraw(node, cat(
      html`<span class="seqnb-m-offer-what">Promote <b>${o.choice}</b>${o.again && " (again)"}:</span>`,
      (o.notes || []).map((n) => html`<span class="seqnb-m-offer-note">${n}</span>`),
      o.runs > 0 && html`<button class="seqnb-m-confirm" data-key="confirm" title="sends ${(o.plans || []).join("; ")}">${o.button}</button>`,
      o.runs === 0 && html`<span class="seqnb-m-offer-note">nothing to send</span>`,
      again, html`<button class="seqnb-m-cancel" data-key="cancel-promote">Cancel</button>`), el);
  }

  function drawBox() {
    const b = model.get("lightbox") || {};
    if (!b.open) {
      if (!box.hidden) {
        box.hidden = true;
        if (lastShown) focusWanted = `frame:${lastShown.run}:${lastShown.frame}`;
        const target = focusWanted && byKey(el, focusWanted);
        if (target) { target.focus({ preventScroll: true }); target.scrollIntoView({ block: "nearest", inline: "nearest" }); focusWanted = null; }
        else el.querySelector(".seqnb-m-frame")?.focus(); // the page behind turns to it at its next draw
      }
      return;
    }
    lastShown = { run: b.run, frame: b.frame };
    const wasHidden = box.hidden;
    const s = model.get("snapshot") || {};
    const fr = rating(b.frame_rating), sr = rating(b.rating);
    const starButtons = [1, 2, 3, 4, 5].map((n) =>
      html`<button data-rate="${n}" data-key="rate-${n}" class="${n <= fr && "seqnb-m-on"}" title="rate this frame ${n} (key ${n})">${n <= fr ? "★" : "☆"}</button>`);
    const seriesButtons = [1, 2, 3, 4, 5].map((n) =>
      html`<button data-rate="${n}" data-series="1" data-key="series-${n}" class="${n <= sr && "seqnb-m-on"}" title="rate the whole series ${n} (Shift+${n})">${n <= sr ? "★" : "☆"}</button>`);
    const here = locate(b.run);
    const film = here && here.run.frames.map((f) => f.src
      ? html`<img src="${f.src}" data-frame="${f.i}" class="${f.i === b.frame && "seqnb-m-here"}" title="frame ${f.i + 1}">`
      : html`<span data-frame="${f.i}" class="seqnb-m-film-empty${f.i === b.frame && " seqnb-m-here"}">${f.i + 1}</span>`);
    const missing = b.frame_state !== "cached" && html`<div class="seqnb-m-nolarge">${b.frame_label || b.words || b.frame_state}</div>`;
    const size = cat(b.size, b.pixels && !String(b.size).startsWith(b.pixels) && ` (${b.pixels} px)`);
    const tables = (s.facets || []).length > 1;
    const made = b.made && html`<div class="seqnb-m-lb-made">${madeHtml(b)} from run <code>${b.parent}</code></div>`;
    redraw(box, html`<div class="seqnb-m-lb-inner" role="dialog" aria-label="frame ${b.frame + 1} of ${b.count}">
      <div class="seqnb-m-lb-left"><div class="seqnb-m-lb-image"><button class="seqnb-m-lb-nav" data-act="step_frame" data-step="-1" data-key="prev" title="previous frame; before the first, the previous series (←)">‹</button>
        ${missing || html`<img class="seqnb-m-large" alt="frame ${b.frame + 1}">`}
        <button class="seqnb-m-lb-nav" data-act="step_frame" data-step="1" data-key="next" title="next frame; after the last, the next series (→)">›</button></div>
        <div class="seqnb-m-film">${film}</div></div>
      <div class="seqnb-m-lb-info">
        <div class="seqnb-m-lb-title"><b>frame ${b.frame + 1} of ${b.count}</b> ${verdictHtml(b.verdict)}
          ${sr > 0 && html`<span class="seqnb-m-star" title="series rating">series ${stars(sr)}</span>`}</div>
        ${b.where && html`<div class="seqnb-m-lb-where" title="${b.label}">${b.where}</div>`}
        ${made}
        <div class="seqnb-m-lb-prompt">${b.prompt}</div>
        <table class="seqnb-m-lb-facts"><tr><th>seed</th><td>${b.seed}</td></tr><tr><th>size</th><td>${size}</td></tr>
          <tr><th>model</th><td>${b.model}${b.optimize && ` · optimize ${b.optimize}`}</td></tr><tr><th>cost</th><td>${b.cost}</td></tr>
          <tr><th>run</th><td><code>${b.run}</code> ${b.state !== "completed" && (b.words || b.status)}</td></tr></table>
        <div class="seqnb-m-lb-rate"><span>this frame</span>${starButtons}<button data-rate="0" data-key="rate-0" title="clear this frame's rating (key 0)">clear</button></div>
        <div class="seqnb-m-lb-rate"><span>the series</span>${seriesButtons}<button data-rate="0" data-series="1" data-key="series-0" title="clear the series' rating (Shift+0)">clear</button></div>
        <div class="seqnb-m-lb-acts">
          <button data-act="pick" data-key="pick" class="seqnb-m-act-pick${b.verdict === "picked" && " seqnb-m-on"}" title="pick this series (key p; again to un-pick)">✔ pick</button>
          <button data-act="reject" data-key="reject" class="seqnb-m-act-reject${b.verdict === "rejected" && " seqnb-m-on"}" title="reject this series (key x; again to clear)">✘ reject</button>
          <button data-act="step_run" data-step="-1" data-key="up" title="the run above in this column (↑)">↑ run</button>
          <button data-act="step_run" data-step="1" data-key="down" title="the run below in this column (↓)">↓ run</button>
          ${tables && html`<button data-act="step_facet" data-step="1" data-key="facet" title="the same place in the next table (f; Shift+F: the previous)">⇆ next table</button>`}
          <button data-act="close" data-key="close" title="close (Esc)">close</button></div>
        <div class="seqnb-m-lb-keys"><kbd>←</kbd> <kbd>→</kbd> frames, on to the next series · <kbd>↑</kbd> <kbd>↓</kbd> runs in the column${
          tables && html` · <kbd>f</kbd> the next table`} · <kbd>1</kbd>-<kbd>5</kbd> rate the frame (<kbd>Shift</kbd>: the series) · <kbd>0</kbd> clear · <kbd>p</kbd> pick · <kbd>x</kbd> reject · <kbd>Esc</kbd> close</div>
        <div class="seqnb-m-message">${kernelHtml(model.get("message"))}</div>
      </div></div>`, box);
    if (largeUrl && largeUrl.run === b.run && largeUrl.frame === b.frame) box.querySelector(".seqnb-m-large")?.setAttribute("src", largeUrl.url);
    box.hidden = false;
    if (wasHidden || !box.contains(document.activeElement)) box.focus();
  }

  function open(run, frame) { send({ action: "open", run, frame: Number(frame) }); }
  function onClick(event) {
    const t = event.target.closest("button");
    if (!t) return;
    if (t.dataset.run !== undefined && t.dataset.frame !== undefined) open(t.dataset.run, t.dataset.frame);
    else if (t.dataset.page) send({ action: "page", [t.dataset.page]: Number(t.dataset.step) });
    else if (t.dataset.facet !== undefined) send({ action: "facet", index: Number(t.dataset.facet) });
    else if (t.classList.contains("seqnb-m-swap")) send({ action: "swap" });
    else if (t.classList.contains("seqnb-m-promote")) send({ action: "promote", choice: el.querySelector(".seqnb-m-promote-choice").value });
    else if (t.classList.contains("seqnb-m-confirm")) send({ action: "confirm" });
    else if (t.classList.contains("seqnb-m-again")) send({ action: "promote", choice: (model.get("offer") || {}).choice, again: true });
    else if (t.classList.contains("seqnb-m-cancel")) send({ action: "cancel_promote" });
  }
  function onChange(event) {
    const t = event.target;
    if (!t.dataset.axis) return;
    const pick = (n) => el.querySelector(`select[data-axis="${n}"]`).value || null;
    send({ action: "axes", rows: pick("rows"), cols: pick("cols"), facet: pick("facet") });
  }
  // Focus from frame to frame: ← → in reading order, ↑ ↓ to the nearest frame of the line above or below.
  function moveFocus(from, key) {
    const all = [...el.querySelectorAll(".seqnb-m-table .seqnb-m-frame")];
    const i = all.indexOf(from);
    let target = null;
    if (key === "ArrowLeft" || key === "ArrowRight") target = all[i + (key === "ArrowRight" ? 1 : -1)];
    else {
      const r = from.getBoundingClientRect(), mid = (r.left + r.right) / 2, up = key === "ArrowUp";
      const boxes = all.map((b) => [b, b.getBoundingClientRect()]);
      const beyond = boxes.filter(([, q]) => (up ? q.bottom <= r.top + 1 : q.top >= r.bottom - 1));
      if (beyond.length) {
        const edge = up ? Math.max(...beyond.map(([, q]) => q.bottom)) : Math.min(...beyond.map(([, q]) => q.top));
        const line = beyond.filter(([, q]) => (up ? q.bottom >= edge - 6 : q.top <= edge + 6));
        line.sort(([, p], [, q]) => Math.abs((p.left + p.right) / 2 - mid) - Math.abs((q.left + q.right) / 2 - mid));
        target = line[0][0];
      }
    }
    if (target) { target.focus({ preventScroll: true }); target.scrollIntoView({ block: "nearest", inline: "nearest" }); }
  }
  function onPageKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey || !box.hidden) return;
    const t = event.target;
    if (t.tagName === "SELECT" || t.tagName === "INPUT") return;
    const frame = t.closest?.(".seqnb-m-frame");
    let handled = true;
    if (frame && (event.key === "Enter" || event.key === " ")) open(frame.dataset.run, frame.dataset.frame);
    else if (frame && event.key.startsWith("Arrow")) moveFocus(frame, event.key);
    else if (event.key === "f" || event.key === "F") send({ action: "step_facet", step: event.key === "F" ? -1 : 1 });
    else handled = false;
    if (handled) { event.preventDefault(); event.stopPropagation(); }
  }
  function onBoxClick(event) {
    const t = event.target.closest("button");
    if (event.target === box) { close(); return; }
    const film = event.target.closest(".seqnb-m-film [data-frame]");
    if (film) { open((model.get("lightbox") || {}).run, film.dataset.frame); return; }
    if (!t) return;
    if (t.dataset.rate !== undefined) send({ action: "rate", n: Number(t.dataset.rate), series: Boolean(t.dataset.series) });
    else if (t.dataset.act === "close") close();
    else if (t.dataset.act) send({ action: t.dataset.act, step: Number(t.dataset.step || 0) });
  }
  function close() {
    send({ action: "close" });
    model.set("lightbox", { open: false }); // at once here; the kernel says the same
    drawBox();
  }
  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const digit = /^(?:Digit|Numpad)([0-5])$/.exec(event.code);
    let msg = KEYS[event.key] || KEYS[event.key.toLowerCase?.()];
    if (digit) msg = { action: "rate", n: Number(digit[1]), series: event.shiftKey };
    if (!msg) return;
    event.preventDefault();
    event.stopPropagation();
    if (msg.action === "close") close();
    else send(msg);
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
    put(el.querySelector(":scope > .seqnb-m-message"), kernelHtml(model.get("message")));
    const m = box.querySelector(".seqnb-m-message");
    if (m) put(m, kernelHtml(model.get("message")));
  }

  const resize = new ResizeObserver(() => drawPage());
  resize.observe(el);
  el.addEventListener("click", onClick);
  el.addEventListener("change", onChange);
  el.addEventListener("keydown", onPageKey);
  box.addEventListener("click", onBoxClick);
  box.addEventListener("keydown", onKey);
  model.on("change:snapshot", drawPage);
  model.on("change:lightbox", drawBox);
  model.on("change:offer", drawOffer);
  model.on("change:message", onMessageText);
  model.on("msg:custom", onMessage);
  drawPage();
  drawOffer();
  drawBox();
  onMessageText();
  return () => {
    model.off("change:snapshot", drawPage);
    model.off("change:lightbox", drawBox);
    model.off("change:offer", drawOffer);
    model.off("change:message", onMessageText);
    model.off("msg:custom", onMessage);
    if (largeUrl) URL.revokeObjectURL(largeUrl.url);
    resize.disconnect();
    box.remove();
  };
}

export default { render };
