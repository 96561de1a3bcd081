// The job board's front end (anywidget, no build step): draws the snapshot the kernel sends
// (JobBoard.snapshot), runs every clock itself from the snapshot's timestamps, and sends clicks back
// as custom messages ({action: "cancel", ...}). The names it draws with (the groups of runs, their
// colours, the status filters) come from the kernel in the "vocabulary" trait: seqnb/ui/board_state.py
// owns them, this file has no copy. Markup is made only by the html`...` tag, which escapes every
// value put into it (a run id or a prompt from a team ledger is never markup), and reaches the page
// only through put(): no other code assigns innerHTML.

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
// The kernel's own message: HTML it made, every value in it escaped there (job_board.py).
function kernelHtml(text) { return new Markup(String(text ?? "")); }
function put(node, markup) {
  if (!(markup instanceof Markup)) throw new TypeError("put() takes markup made by html`...`");
  node.innerHTML = markup.text;
}
function words(bucket) { return bucket.replace("_", " "); }
// A time of day in the browser's own zone (with the date when it is not today).
function clock(epoch) {
  if (!epoch) return "";
  const when = new Date(epoch * 1000);
  const time = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return when.toDateString() === new Date().toDateString() ? time : when.toLocaleDateString([], { month: "short", day: "numeric" }) + " " + time;
}
function seconds(s) {
  if (s < 0) s = 0;
  if (s < 60) return s.toFixed(1) + " s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + " min " + String(Math.floor(s % 60)).padStart(2, "0") + " s";
  return Math.floor(m / 60) + " h " + String(m % 60).padStart(2, "0") + " min";
}
function bar(v, counts, total) {
  const parts = v.buckets.filter((b) => counts[b] > 0).map((b) =>
    html`<span class="seqnb-seg" style="flex:${counts[b]};background:${v.colours[b]}" title="${counts[b]} ${words(b)}"></span>`);
  return html`<span class="seqnb-bar">${total ? parts : ""}</span>`;
}
function tally(v, counts) {
  return v.buckets.filter((b) => counts[b] > 0).map((b, i) =>
    html`${i > 0 && html` &middot; `}<span style="color:${v.colours[b]}">&#9632;</span> ${counts[b]} ${words(b)}`);
}

function render({ model, el }) {
  const v = model.get("vocabulary"); // {buckets, filters, colours}: fixed for the widget's life
  el.classList.add("seqnb-board");
  put(el, html`
    <div class="seqnb-head"><b class="seqnb-summary"></b><span class="seqnb-total"></span>
      <button class="seqnb-cancel-all" title="cancel every run still queued">Cancel all queued</button></div>
    <table class="seqnb-sweeps"></table>
    <div class="seqnb-controls">
      <select class="seqnb-filter">${v.filters.map((f) => html`<option value="${f}">${words(f)}</option>`)}</select>
      <input class="seqnb-text" type="search" placeholder="filter: label, prompt or run id">
      <button class="seqnb-prev">&lsaquo;</button><span class="seqnb-page"></span><button class="seqnb-next">&rsaquo;</button>
    </div>
    <table class="seqnb-runs"></table>
    <div class="seqnb-message"></div>`);
  const $ = (sel) => el.querySelector(sel);
  let offset = 0; // kernel clock - browser clock, in seconds
  let unanswered = null; // a timer: an action the kernel has not answered yet
  const now = () => Date.now() / 1000 + offset;

  function tick() {
    const t = now();
    for (const node of el.querySelectorAll("[data-start]")) {
      const end = node.dataset.end ? Number(node.dataset.end) : t;
      node.textContent = seconds(end - Number(node.dataset.start));
    }
    for (const node of el.querySelectorAll("[data-eta]")) {
      const left = Number(node.dataset.eta) - t;
      node.textContent = left > 1 ? "about " + seconds(left) + " left" : "due now";
    }
  }

  function draw() {
    clearTimeout(unanswered); // the kernel answered
    const s = model.get("snapshot") || {};
    if (s.now) offset = s.now - Date.now() / 1000;
    $(".seqnb-summary").textContent = s.summary || "";
    put($(".seqnb-total"), html`${s.total ? bar(v, s.counts, s.total) : ""}`);
    $(".seqnb-cancel-all").disabled = !s.cancellable;
    put($(".seqnb-sweeps"), html`${(s.sweeps || []).map((w) => html`
      <tr><td class="seqnb-sweep-name" title="${w.label}"><span class="seqnb-label">${w.label || w.id}</span><br>
        <span class="seqnb-meta"><code>${w.id}</code> &middot; ${clock(w.created)}</span></td><td>${bar(v, w.counts, w.runs)}</td>
      <td>${w.runs} runs: ${tally(v, w.counts)}</td>
      <td>${w.images}/${w.requested} images &middot; ${w.spend_label || "charged"} ${w.spend}</td>
      <td class="seqnb-eta" ${w.eta ? html`data-eta="${w.eta}"` : ""}>${w.eta ? "" : (w.left ? "estimating…" : "done")}</td>
      <td><button data-sweep="${w.id}" ${!w.cancellable && "disabled"}>Cancel the rest</button></td></tr>`)}${
      s.sweeps_hidden > 0 && html`<tr><td colspan="6">and ${s.sweeps_hidden} earlier sweeps (see the Ledger)</td></tr>`}`);
    const select = $(".seqnb-filter");
    if (document.activeElement !== select) select.value = model.get("status_filter");
    const text = $(".seqnb-text");
    if (document.activeElement !== text) text.value = model.get("text_filter");
    $(".seqnb-page").textContent = ` page ${(s.page || 0) + 1} of ${s.pages || 1} · ${s.matching || 0} runs `;
    $(".seqnb-prev").disabled = !s.page;
    $(".seqnb-next").disabled = (s.page || 0) + 1 >= (s.pages || 1);
    put($(".seqnb-runs"), html`${(s.rows || []).map((r) => {
      let state = words(r.status);
      if (r.queue) state += ` (${r.queue})`;
      if (r.images != null) state += ` · ${r.images}/${r.count} images`;
      return html`<tr class="seqnb-run${r.read_only ? " seqnb-read-only" : ""}" data-run="${r.id}">
        <td class="seqnb-run-name"><span class="seqnb-label" title="${(s.prompts || [])[r.prompt] ?? ""}">${r.label}</span><br>
          <span class="seqnb-meta">${[r.model, "seed " + (r.seed ?? "-")].filter((v) => !(r.said || []).includes(v))
            .map((v) => v + " · ")}${r.count} img · <code>${r.id}</code></span></td>
        <td><span class="seqnb-pill" style="background:${v.colours[r.bucket]}"></span> ${state}${
          r.rating ? html` · ★${r.rating}` : ""}${r.verdict === "picked" ? html` · <span class="seqnb-picked">✔ picked</span>` : ""}${
          r.verdict === "rejected" ? html` · <span class="seqnb-rejected">✘ rejected</span>` : ""}
          ${r.note && html`<br><span class="seqnb-note">${r.note}</span>`}</td>
        <td class="seqnb-clock" data-start="${r.created}" ${r.finished ? html`data-end="${r.finished}"` : ""}></td>
        <td><button data-cancel="${r.id}" ${!r.cancellable && "disabled"}>Cancel</button></td></tr>`;
    })}`);
    put($(".seqnb-message"), kernelHtml(model.get("message")));
    tick();
  }

  // A board whose kernel is gone (a saved notebook reopened, the kernel restarted) can draw but not act: say so.
  // ipywidgets marks such a view "jupyter-widgets-disconnected"; elsewhere, an action the kernel never answers.
  const gone = "This board's kernel is gone (the notebook was reopened or its kernel restarted): it shows what it "
    + "showed then and can do nothing. Run the cell again (seqnb.Studio()) for a live one.";
  const dead = () => !!el.closest(".jupyter-widgets-disconnected");
  function awaitKernel() {
    clearTimeout(unanswered);
    unanswered = setTimeout(() => put($(".seqnb-message"), html`<span class="seqnb-dead">No answer from the kernel: it is busy, or gone. ${gone}</span>`), 5000);
  }
  function act(send) {
    if (dead()) { put($(".seqnb-message"), html`<span class="seqnb-dead">${gone}</span>`); return false; }
    send();
    awaitKernel();
    return true;
  }

  el.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button || button.disabled) return;
    if (dead()) { act(() => {}); return; }
    if (button.dataset.cancel) { button.disabled = true; act(() => model.send({ action: "cancel", run: button.dataset.cancel })); }
    else if (button.dataset.sweep) { button.disabled = true; act(() => model.send({ action: "cancel_sweep", sweep: button.dataset.sweep })); }
    else if (button.classList.contains("seqnb-cancel-all")) { button.disabled = true; act(() => model.send({ action: "cancel_queued" })); }
    else if (button.classList.contains("seqnb-prev") || button.classList.contains("seqnb-next")) {
      const step = button.classList.contains("seqnb-next") ? 1 : -1;
      act(() => { model.set("page", Math.max(0, (model.get("snapshot").page || 0) + step)); model.save_changes(); });
    }
  });
  $(".seqnb-filter").addEventListener("change", (event) => {
    act(() => { model.set("status_filter", event.target.value); model.set("page", 0); model.save_changes(); });
  });
  let typing = null;
  $(".seqnb-text").addEventListener("input", (event) => {
    clearTimeout(typing);
    typing = setTimeout(() => act(() => { model.set("text_filter", event.target.value); model.set("page", 0); model.save_changes(); }), 300);
  });

  model.on("change:snapshot", draw);
  model.on("change:message", draw);
  const timer = setInterval(tick, 1000);
  draw();
  return () => {
    clearInterval(timer);
    clearTimeout(typing);
    clearTimeout(unanswered);
    model.off("change:snapshot", draw);
    model.off("change:message", draw);
  };
}

export default { render };
