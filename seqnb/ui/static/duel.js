// The duel view (seqnb.ui.duel_view): two series side by side; every key and button goes back to the kernel
// as a custom message that a plain Python method handles. Before a choice the kernel sends only an opaque
// token and thumbnails (blind); after it, "reveal" names the pair just judged.

const KEYS = {
  ArrowLeft: { action: "choose", outcome: "left" }, ArrowRight: { action: "choose", outcome: "right" },
  ArrowDown: { action: "choose", outcome: "tie" }, s: { action: "skip" }, u: { action: "undo" },
  f: { action: "full" }, Escape: { action: "full", on: false },
};
const WORDS = { left: "← left won", right: "right won →", tie: "a tie" };

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function facts(info) {
  if (!info) return "";
  return `<div class="seqnb-d-info"><b>${esc(info.label)}</b><div class="seqnb-d-prompt">${esc(info.prompt)}</div>` +
    `<span>${esc(info.model)} · seed ${esc(info.seed)} · ${esc(info.size)} · ${esc(info.cost)}</span> ` +
    `<span>strength ${esc(info.strength)} after ${esc(info.duels)} duel(s)</span> <code>${esc(info.run)}</code></div>`;
}

function render({ model, el }) {
  el.classList.add("seqnb-duel");
  el.tabIndex = 0;
  el.setAttribute("data-lm-suppress-shortcuts", "true"); // keys here are the duel's, not JupyterLab's
  el.innerHTML = `<div class="seqnb-d-bar">
      <button data-key="ArrowLeft" title="the left series is better (←)">← left</button>
      <button data-key="ArrowDown" title="as good as each other (↓)">↓ tie</button>
      <button data-key="ArrowRight" title="the right series is better (→)">right →</button>
      <button data-key="s" title="skip this pair: asked again later (s)">skip (s)</button>
      <button data-key="u" title="take back the last choice (u)">undo (u)</button>
      <button data-key="f" class="seqnb-d-fullbtn" title="full frames (f; Esc to go back)">full frames (f)</button>
      <span class="seqnb-d-progress"></span></div>
    <div class="seqnb-d-pair"><div class="seqnb-d-side" data-side="left"></div><div class="seqnb-d-vs">vs</div>
      <div class="seqnb-d-side" data-side="right"></div></div>
    <div class="seqnb-d-reveal"></div><div class="seqnb-d-message"></div>`;
  const large = new Map(); // "side/frame" -> blob URL of the pair shown
  let largeToken = "";

  function send(key) {
    const msg = { ...KEYS[key] };
    if (msg.action === "choose" || msg.action === "skip") msg.token = (model.get("shown") || {}).token;
    model.send(msg);
  }

  function drawPair() {
    const s = model.get("shown") || {};
    const full = model.get("full");
    el.classList.toggle("seqnb-d-full", Boolean(full));
    el.querySelector(".seqnb-d-fullbtn").classList.toggle("seqnb-d-on", Boolean(full));
    if (s.token !== largeToken) { for (const url of large.values()) URL.revokeObjectURL(url); large.clear(); largeToken = s.token; }
    for (const side of ["left", "right"]) {
      const box = el.querySelector(`.seqnb-d-side[data-side="${side}"]`);
      const one = s[side];
      if (!one) { box.innerHTML = `<div class="seqnb-d-wait">${s.token === "" ? "" : "…"}</div>`; continue; }
      const frames = one.frames.map((f, i) => {
        const src = (full && large.get(`${side}/${i}`)) || f.src;
        return src ? `<img src="${src}" alt="frame ${i + 1}" data-frame="${i}">`
          : `<span class="seqnb-d-empty" title="${esc(f.label)}">${esc(f.label || f.state)}</span>`;
      }).join("");
      box.innerHTML = `<div class="seqnb-d-head">${side === "left" ? "← left" : "right →"}</div>` +
        `<div class="seqnb-d-strip">${frames}</div>${facts(one.info)}`;
    }
    const p = model.get("progress") || {};
    el.querySelector(".seqnb-d-progress").textContent =
      `${p.choices || 0} choice(s) · ${p.series || 0} series` + (p.skipped ? ` · ${p.skipped} skipped` : "") +
      (p.loading ? ` · ${p.loading} loading` : "") + (model.get("blind") ? " · blind" : "");
  }

  function drawReveal() {
    const r = model.get("reveal") || {};
    const box = el.querySelector(".seqnb-d-reveal");
    if (!r.outcome) { box.innerHTML = ""; return; }
    box.innerHTML = `<div class="seqnb-d-rhead">last pair: <b>${esc(WORDS[r.outcome])}</b>${r.blind ? " (blind)" : ""}</div>` +
      `<div class="seqnb-d-rpair"><div class="${r.outcome === "left" ? "seqnb-d-won" : ""}">← ${facts(r.left)}</div>` +
      `<div class="${r.outcome === "right" ? "seqnb-d-won" : ""}">→ ${facts(r.right)}</div></div>`;
  }

  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const key = KEYS[event.key] ? event.key : event.key.toLowerCase?.();
    if (!KEYS[key]) return;
    event.preventDefault();
    event.stopPropagation();
    send(key);
  }
  function onClick(event) {
    const t = event.target.closest("button[data-key]");
    if (t) send(t.dataset.key);
    el.focus({ preventScroll: true });
  }
  function onMessage(msg, buffers) {
    if (msg.kind !== "large" || !buffers?.length || msg.token !== (model.get("shown") || {}).token) return;
    const blob = new Blob([buffers[0].buffer ?? buffers[0]], { type: "image/jpeg" });
    const key = `${msg.side}/${msg.frame}`;
    if (large.has(key)) URL.revokeObjectURL(large.get(key));
    large.set(key, URL.createObjectURL(blob));
    const img = el.querySelector(`.seqnb-d-side[data-side="${msg.side}"] img[data-frame="${msg.frame}"]`);
    if (img && model.get("full")) img.src = large.get(key);
  }
  function onMessageText() { el.querySelector(".seqnb-d-message").innerHTML = model.get("message") || ""; }

  el.addEventListener("keydown", onKey);
  el.addEventListener("click", onClick);
  model.on("change:shown", drawPair);
  model.on("change:full", drawPair);
  model.on("change:progress", drawPair);
  model.on("change:reveal", drawReveal);
  model.on("change:message", onMessageText);
  model.on("msg:custom", onMessage);
  drawPair();
  drawReveal();
  onMessageText();
  return () => {
    model.off("change:shown", drawPair);
    model.off("change:full", drawPair);
    model.off("change:progress", drawPair);
    model.off("change:reveal", drawReveal);
    model.off("change:message", onMessageText);
    model.off("msg:custom", onMessage);
    for (const url of large.values()) URL.revokeObjectURL(url);
  };
}

export default { render };
