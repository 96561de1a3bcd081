// seqnb report: draws the page from the JSON block above it. Plain JavaScript, no library, no fetch.
// Every text goes in with textContent: a prompt, a note or a service answer is never markup.
// The viewer answers the keys of the matrix widget's lightbox: ← → frames (on past a series' end to the
// next series along the row), ↑ ↓ the run above / below in the column, f / Shift+F the same place in the
// next / previous table, Esc closes and gives the focus back to the frame last shown; Enter opens a frame.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("seqnb-data").textContent);
  var root = document.getElementById("seqnb-report");
  var runs = data.runs;
  var byId = {};
  runs.forEach(function (r) { byId[r.id] = r; });
  var LABELS = { model: "model", prompt: "prompt", seed: "seed", size: "size", count: "images asked", optimize: "optimize" };

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else if (key === "onclick") node.addEventListener("click", attrs[key]);
      else if (attrs[key] !== null && attrs[key] !== undefined && attrs[key] !== false) node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) {
      if (child !== null && child !== undefined && child !== false) node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function show(value) {
    if (value === null || value === undefined || value === "") return "";
    if (Array.isArray(value)) return value.join(", ");
    if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toFixed(value < 1 ? 4 : 2);
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  function cost(run) {
    return run.est_cost === null || run.est_cost === undefined ? "" : show(run.est_cost) + " " + show(run.currency);
  }

  function short(text, n) {
    return text.length > n ? text.slice(0, n - 1) + "\u2026" : text;
  }

  function rating(n) { return Math.max(0, Math.min(5, Math.trunc(Number(n)) || 0)); }
  function stars(n) { n = rating(n); return n ? "\u2605".repeat(n) + "\u2606".repeat(5 - n) : ""; }
  function frameRating(run, index) { return rating((run.frame_ratings || {})[String(index)]); }
  function verdictBadge(run) {
    if (run.verdict === "picked") return el("span", { class: "verdict verdict-picked", text: "\u2714 picked" });
    if (run.verdict === "rejected") return el("span", { class: "verdict verdict-rejected", text: "\u2718 rejected" });
    return null;
  }
  function madeBadge(run) {
    if (!run.made) return null;
    var changed = String(run.label || "").split("\u2192 ").pop();
    return el("span", { class: "made made-" + run.made, title: "made from run " + run.parent + (run.made === "promoted"
      ? ": a promote, the same request again with a change, as a new paid run" : ": a rerun"),
      text: (run.made === "promoted" ? "\u2934 promoted" : "\u21bb rerun") + (changed && changed !== run.label ? " \u00b7 " + changed : "") });
  }

  // --- the layout: one axis across, one down, a table per value of a third ------------------------------
  var axes = data.axes;
  var state = { x: data.x, y: data.y, facet: data.facet || "" };
  function axis(key) {
    for (var i = 0; i < axes.length; i++) if (axes[i].key === key) return axes[i];
    return { key: "", labels: [""], titles: [""] };
  }
  function at(run, key) { return key ? run.at[key] : 0; }
  // The runs of one cell, as the report lists them (each promoted run right after its original).
  function cell(fi, yi, xi) {
    return runs.filter(function (r) { return at(r, state.facet) === fi && at(r, state.y) === yi && at(r, state.x) === xi; });
  }
  // Every run in reading order: table after table, row after row, across each row, a cell's runs in turn.
  function readingOrder() {
    var out = [];
    axis(state.facet).labels.forEach(function (_, fi) {
      axis(state.y).labels.forEach(function (_, yi) {
        axis(state.x).labels.forEach(function (_, xi) { out = out.concat(cell(fi, yi, xi)); });
      });
    });
    return out;
  }
  // What tells a cell's series apart where several models or seeds sit side by side: always its model and seed.
  function cellLabel(run) {
    var bits = [run.model, run.seed === "" ? "model's seed" : "seed " + run.seed];
    axes.forEach(function (a) { // a run made from another sits at its original's place: its badge says what changed
      if (!run.parent && [state.x, state.y, state.facet, "model", "seed"].indexOf(a.key) < 0) bits.push(a.labels[run.at[a.key]]);
    });
    return bits.filter(Boolean).join(" \u00b7 ");
  }
  // Where a run sits, in the words of the headers (table, row, column), then its model and seed if not among them.
  function whereLabel(run) {
    var bits = [state.facet, state.y, state.x].filter(Boolean).map(function (key) { return axis(key).labels[run.at[key]]; });
    if ([state.x, state.y, state.facet].indexOf("seed") < 0) bits.push(run.seed === "" ? "model's seed" : "seed " + run.seed);
    if ([state.x, state.y, state.facet].indexOf("model") < 0) bits.unshift(run.model);
    return bits.filter(Boolean).join(" \u00b7 ");
  }

  // --- the viewer: a frame large, driven by the keys --------------------------------------------------------
  var viewerImg = el("img", { alt: "" });
  var viewerText = el("p", { class: "viewer-text" });
  var viewerNote = el("p", { class: "viewer-note" });
  function act(name, words, title) {
    return el("button", { type: "button", "data-act": name, title: title, text: words });
  }
  var tableButton = act("facet", "\u21c6 next table", "the same place in the next table (f; Shift+F: the previous)");
  var viewer = el("div", { id: "viewer", role: "dialog", "aria-modal": "true", "aria-label": "frame viewer", tabindex: "-1", hidden: "" }, [
    el("div", { class: "viewer-image" }, [
      act("prev", "\u2039", "previous frame; before the first, the previous series (\u2190)"), viewerImg,
      act("next", "\u203a", "next frame; after the last, the next series (\u2192)")]),
    viewerText,
    el("p", { class: "viewer-buttons" }, [act("up", "\u2191 run", "the run above in this column (\u2191)"),
      act("down", "\u2193 run", "the run below in this column (\u2193)"), tableButton, act("close", "close", "close (Esc)")]),
    el("p", { class: "viewer-keys", text: "\u2190 \u2192 frames, on to the next series \u00b7 \u2191 \u2193 runs in the column \u00b7 f the next table \u00b7 Esc close" }),
    viewerNote,
  ]);
  var current = null; // {run, index}: what the viewer shows
  var opener = null; // the thumbnail it was opened from

  function open(run, index, from) {
    if (from) opener = from;
    var frame = run.frames[index];
    if (!frame) return;
    current = { run: run, index: index };
    viewerImg.src = frame.full || frame.large || frame.src;
    viewerImg.alt = "frame " + (index + 1) + " of " + run.frames.length;
    var tables = axis(state.facet).labels.length > 1;
    tableButton.hidden = !tables;
    var fr = frameRating(run, index);
    viewerText.replaceChildren(el("span", {}, [
      el("b", { text: (index + 1) + "/" + run.frames.length }), " \u00b7 ", whereLabel(run),
      run.made ? " \u00b7 " : null, madeBadge(run),
      rating(run.rating) ? el("span", { class: "stars", title: "series rated " + run.rating + " of 5", text: " " + stars(run.rating) }) : null,
      fr ? el("span", { class: "stars", title: "this frame rated " + fr + " of 5", text: " frame \u2605" + fr }) : null,
      " ", verdictBadge(run), el("br"), el("span", { class: "viewer-prompt", text: run.prompt }),
      el("br"), el("small", { text: "run " + run.id + (frame.state === "cached" ? "" : " \u00b7 " + frame.state) })]));
    viewerNote.textContent = frame.full || frame.large || !frame.src ? ""
      : "the thumbnail: this report carries no larger frames (write it with full=\"embed\" or \"beside\" for the full size)";
    if (viewer.hidden) { viewer.hidden = false; viewer.focus(); }
  }
  function say(words) { viewerNote.textContent = words; }
  function stepFrame(step) {
    var run = current.run, index = current.index + step;
    if (index >= 0 && index < run.frames.length) { open(run, index); return; }
    var order = readingOrder(), i = order.indexOf(run) + (step > 0 ? 1 : -1);
    if (i < 0 || i >= order.length) { say("the " + (step > 0 ? "last" : "first") + " series of the matrix"); return; }
    var next = order[i];
    open(next, step > 0 ? 0 : next.frames.length - 1);
  }
  function stepRun(step) {
    var run = current.run, fi = at(run, state.facet), xi = at(run, state.x), column = [];
    axis(state.y).labels.forEach(function (_, yi) { column = column.concat(cell(fi, yi, xi)); });
    var next = column[column.indexOf(run) + step];
    if (!next) { say("no further run " + (step > 0 ? "down" : "up") + " this column"); return; }
    open(next, Math.min(current.index, next.frames.length - 1));
  }
  function stepFacet(step) {
    var count = axis(state.facet).labels.length;
    if (count < 2) { say("one table only: choose a table axis (say model) to switch between tables"); return; }
    var run = current.run, fi = (at(run, state.facet) + step + count) % count;
    var next = cell(fi, at(run, state.y), at(run, state.x))[0]
      || readingOrder().filter(function (r) { return at(r, state.facet) === fi; })[0];
    if (next) open(next, Math.min(current.index, next.frames.length - 1));
  }
  function close() {
    viewer.hidden = true;
    var target = opener;
    if (current) { // the frame last shown: its opener if it is that one, else its place in the matrix
      var key = current.run.id + ":" + current.index;
      if (!opener || opener.dataset.frameKey !== key) {
        target = Array.prototype.find.call(document.querySelectorAll("#seqnb-matrix button[data-frame-key]"),
          function (b) { return b.dataset.frameKey === key; }) || opener;
      }
    }
    if (target) { target.focus(); target.scrollIntoView({ block: "nearest", inline: "nearest" }); }
  }
  var ACTS = { prev: function () { stepFrame(-1); }, next: function () { stepFrame(1); }, up: function () { stepRun(-1); },
    down: function () { stepRun(1); }, facet: function () { stepFacet(1); }, close: close };
  viewer.addEventListener("click", function (event) {
    var button = event.target.closest("button");
    if (button && ACTS[button.dataset.act]) ACTS[button.dataset.act]();
    else if (event.target === viewer) close();
  });
  viewer.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || !current) return;
    var keys = { ArrowLeft: ACTS.prev, ArrowRight: ACTS.next, ArrowUp: ACTS.up, ArrowDown: ACTS.down, Escape: close,
      f: function () { stepFacet(1); }, F: function () { stepFacet(-1); } };
    var fn = keys[event.key];
    if (!fn) return;
    event.preventDefault();
    fn();
  });

  function thumb(run, frame, cls) {
    var fr = frameRating(run, frame.index);
    var button = el("button", { type: "button", class: "thumb", "data-frame-key": run.id + ":" + frame.index,
      title: "frame " + (frame.index + 1) + " of " + run.frames.length + (frame.reason ? ": " + frame.reason : "") + " (click or Enter to open)" }, [
      el("img", { src: frame.src, width: frame.width, height: frame.height, class: cls,
        alt: (frame.index + 1) + "/" + run.frames.length + " " + frame.state }),
      fr ? el("span", { class: "fstar", text: "\u2605".repeat(fr) }) : null,
    ]);
    button.addEventListener("click", function () { open(run, frame.index, button); });
    return button;
  }

  // --- the summary and the spend ---------------------------------------------------------------------
  function summary() {
    var states = {};
    runs.forEach(function (r) { states[r.status || "?"] = (states[r.status || "?"] || 0) + 1; });
    var tally = Object.keys(states).sort().map(function (s) { return states[s] + " " + s; }).join(", ");
    var frames = runs.reduce(function (n, r) { return n + r.frames.length; }, 0);
    var box = el("section", { id: "summary" }, [
      el("p", { text: runs.length + " run(s), " + frames + " frame(s): " + tally + ". Made " + data.generated + " by seqnb." }),
    ]);
    if (data.spend.length) {
      var cols = Object.keys(data.spend[0]);
      box.appendChild(el("h2", { text: "Spend" }));
      box.appendChild(el("table", { id: "seqnb-spend" }, [
        el("thead", {}, [el("tr", {}, cols.map(function (c) { return el("th", { text: c }); }))]),
        el("tbody", {}, data.spend.map(function (row) {
          return el("tr", {}, cols.map(function (c) { return el("td", { text: show(row[c]) }); }));
        })),
      ]));
    }
    (data.tables || []).forEach(function (table) { // the ranking and the axis effects, when there are duels
      if (!table.rows.length) return;
      var keys = Object.keys(table.rows[0]);
      box.appendChild(el("h2", { text: table.title }));
      box.appendChild(el("table", { class: "seqnb-judged" }, [
        el("thead", {}, [el("tr", {}, keys.map(function (c) { return el("th", { text: c }); }))]),
        el("tbody", {}, table.rows.map(function (row) {
          return el("tr", {}, keys.map(function (c) { return el("td", { text: show(row[c]) }); }));
        })),
      ]));
    });
    return box;
  }

  // --- the matrix ---------------------------------------------------------------------------------------------
  var matrixBox = el("div", { id: "matrix-box" });
  function picker(id, which, allowNone) {
    var select = el("select", { id: id }, (allowNone ? [el("option", { value: "", text: "(none)" })] : []).concat(
      axes.map(function (a) { return el("option", { value: a.key, text: LABELS[a.key] || a.key }); })));
    select.value = state[which];
    select.addEventListener("change", function () {
      state[which] = select.value;
      ["x", "y", "facet"].forEach(function (other) { if (other !== which && state[other] === state[which]) state[other] = ""; });
      if (!state.x) state.x = axes.map(function (a) { return a.key; }).filter(function (k) { return k !== state.y && k !== state.facet; })[0] || axes[0].key;
      drawMatrix();
    });
    return select;
  }
  function cellRun(r) {
    return el("div", { class: "cell-run" + (r.parent ? " child" : "") + (r.verdict ? " run-" + r.verdict : "") }, [
      el("div", { class: "cell-head" }, [madeBadge(r),
        el("a", { href: "#run-" + r.id, title: "run " + r.id + ": " + r.prompt, text: cellLabel(r) }),
        rating(r.rating) ? el("span", { class: "stars", title: "series rated " + r.rating + " of 5", text: stars(r.rating) }) : null,
        verdictBadge(r)]),
      el("div", { class: "strip" }, r.frames.map(function (f) { return thumb(r, f, "small"); })),
    ]);
  }
  function drawMatrix() {
    var x = axis(state.x), y = axis(state.y), facet = axis(state.facet);
    var tables = facet.labels.map(function (facetLabel, fi) {
      var table = el("table", { class: "seqnb-matrix-table", "data-facet": state.facet ? facetLabel : "" });
      table.appendChild(el("tr", {}, [el("th", { class: "corner", text: (LABELS[y.key] || "") + " \u2193 / " + (LABELS[x.key] || x.key) + " \u2192" })]
        .concat(x.labels.map(function (label, i) { return el("th", { class: "x-head", text: label, title: x.titles[i] }); }))));
      y.labels.forEach(function (yLabel, yi) {
        var tr = el("tr", {}, [el("th", { class: "y-head", text: yLabel, title: y.titles[yi] })]);
        x.labels.forEach(function (_, xi) { tr.appendChild(el("td", {}, cell(fi, yi, xi).map(cellRun))); });
        table.appendChild(tr);
      });
      return el("div", { class: "facet" }, [state.facet ? el("h3", { class: "facet-head", title: facet.titles[fi],
        text: (LABELS[state.facet] || state.facet) + ": " + facetLabel }) : null, table]);
    });
    var box = el("div", { id: "seqnb-matrix", "data-x": x.key, "data-y": y.key, "data-facet": state.facet }, tables);
    matrixBox.replaceChildren(box);
    document.getElementById("axis-x").value = state.x;
    document.getElementById("axis-y").value = state.y;
    document.getElementById("axis-facet").value = state.facet;
  }
  function matrix() {
    var swap = el("button", { id: "swap", type: "button", text: "swap axes" });
    swap.addEventListener("click", function () {
      if (!state.y) return;
      var x = state.x; state.x = state.y; state.y = x;
      drawMatrix();
    });
    return el("section", { id: "matrix" }, [
      el("h2", { text: "Matrix" }),
      el("p", { class: "controls" }, [el("label", { text: "across " }), picker("axis-x", "x", false),
        el("label", { text: " down " }), picker("axis-y", "y", true), el("label", { text: " a table per " }),
        picker("axis-facet", "facet", true), " ", swap,
        el("span", { class: "hint", text: " \u00b7 click a frame (or Enter) to see it large; then \u2190 \u2192 \u2191 \u2193, f, Esc" })]),
      matrixBox,
    ]);
  }

  // --- the runs table, sortable by any column ---------------------------------------------------------------
  var COLUMNS = [
    ["id", "run"], ["label", "label"], ["created_at", "created"], ["status", "state"], ["model", "model"], ["prompt", "prompt"],
    ["seed", "seed"], ["size", "size"], ["count", "asked"], ["returned", "returned"], ["consistency", "consistency"],
    ["est_cost", "cost"], ["rating", "rating"], ["verdict", "verdict"], ["note", "note"], ["tags", "tags"], ["user", "user"],
  ];
  function sortable(table, rows, cell) {
    var body = el("tbody");
    var head = el("tr", {}, COLUMNS.map(function (col) {
      var th = el("th", { text: col[1], "data-key": col[0], "aria-sort": "none" });
      th.addEventListener("click", function () {
        var up = th.getAttribute("aria-sort") !== "ascending";
        head.querySelectorAll("th").forEach(function (t) { t.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", up ? "ascending" : "descending");
        var key = col[0];
        rows.sort(function (a, b) {
          var p = a[key], q = b[key];
          if (p === null || p === undefined || p === "") return 1;
          if (q === null || q === undefined || q === "") return -1;
          var m = Number(p), n = Number(q);
          var c = !isNaN(m) && !isNaN(n) ? m - n : String(p).localeCompare(String(q));
          return up ? c : -c;
        });
        fill();
      });
      return th;
    }));
    function fill() {
      body.replaceChildren.apply(body, rows.map(function (r) {
        return el("tr", {}, COLUMNS.map(function (col) { return cell(r, col[0]); }));
      }));
    }
    table.appendChild(el("thead", {}, [head]));
    table.appendChild(body);
    fill();
    return table;
  }
  function runsTable() {
    var table = sortable(el("table", { id: "seqnb-runs" }), runs.slice(), function (r, key) {
      if (key === "id") return el("td", {}, [el("a", { href: "#run-" + r.id, text: r.id.slice(0, 8) })]);
      if (key === "est_cost") return el("td", { text: cost(r) });
      if (key === "prompt") return el("td", { text: short(r.prompt, 60), title: r.prompt });
      if (key === "label") return el("td", { text: short(String(r.label || ""), 60), title: r.prompt });
      if (key === "verdict") return el("td", {}, [verdictBadge(r)]);
      if (key === "rating") return el("td", { class: "stars", text: stars(r.rating) });
      return el("td", { text: show(r[key]) });
    });
    return el("section", { id: "runs" }, [el("h2", { text: "Runs" }), table]);
  }

  // --- each series with its facts and its frames' provenance ------------------------------------------------
  function fact(name, value) {
    return value === "" ? null : el("div", {}, [el("dt", { text: name }), el("dd", { text: value })]);
  }
  function seriesBox(r) {
    return el("section", { class: "series" + (r.parent ? " child" : ""), id: "run-" + r.id }, [
      el("h3", {}, [madeBadge(r), " ", "run " + r.id + " \u00b7 " + r.model + " \u00b7 seed " + r.seed + " ",
        rating(r.rating) ? el("span", { class: "stars", text: stars(r.rating) }) : null, " ", verdictBadge(r)]),
      r.label ? el("p", { class: "label", text: r.label }) : null,
      el("p", { class: "prompt", text: r.prompt }),
      el("dl", {}, [
        fact("state", show(r.status) + (r.error ? ": " + r.error : "")),
        fact("cost", cost(r)),
        fact("consistency", show(r.consistency)),
        fact("verdict", show(r.verdict)),
        fact("marks", show(r.marks)),
        fact("note", show(r.note)),
        fact("tags", show(r.tags)),
        fact("made from", show(r.parent)),
        fact("made by", show(r.user) + (r.host ? "@" + r.host : "")),
        fact("created", show(r.created_at)),
        fact("request id", show(r.request_id)),
        fact("sweep", show(r.sweep_id)),
      ]),
      el("details", {}, [el("summary", { text: "settings" }), el("pre", { text: JSON.stringify(r.settings, null, 1) })]),
      el("div", { class: "frames" }, r.frames.map(function (f) {
        return el("figure", {}, [
          thumb(r, f, "frame"),
          el("figcaption", { text: (f.index + 1) + "/" + r.frames.length + (f.state === "cached" ? "" : " \u00b7 " + f.state) }),
          el("details", {}, [el("summary", { text: "provenance" }), el("pre", { text: JSON.stringify(f.provenance, null, 1) })]),
        ]);
      })),
    ]);
  }

  root.replaceChildren(summary(), matrix(), runsTable(),
    el("section", { id: "series" }, [el("h2", { text: "Series" })].concat(runs.map(seriesBox))), viewer);
  drawMatrix();
})();
