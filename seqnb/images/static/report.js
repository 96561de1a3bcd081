// seqnb report: draws the page from the JSON block above it. Plain JavaScript, no library, no fetch.
// Every text goes in with textContent: a prompt, a note or a service answer is never markup.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("seqnb-data").textContent);
  var root = document.getElementById("seqnb-report");
  var runs = data.runs;
  var LABELS = { model: "model", prompt: "prompt", seed: "seed", size: "size", count: "images asked", optimize: "optimize" };

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else if (key === "onclick") node.addEventListener("click", attrs[key]);
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) {
      if (child !== null && child !== undefined) node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
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

  // --- the viewer: a frame full-size (or its thumbnail when the full image stayed out) ---------------
  var viewerImg = el("img", { alt: "" });
  var viewerText = el("p");
  var viewer = el("div", { id: "viewer", hidden: "" }, [viewerImg, viewerText]);
  viewer.addEventListener("click", function () { viewer.hidden = true; });
  function open(run, frame) {
    viewerImg.src = frame.full || frame.src;
    viewerText.textContent = (frame.index + 1) + "/" + run.frames.length + " \u00b7 seed " + run.seed + " \u00b7 run " + run.id + " \u00b7 click to close";
    viewer.hidden = false;
  }

  function thumb(run, frame, cls) {
    var img = el("img", { src: frame.src, width: frame.width, height: frame.height, class: cls,
      alt: (frame.index + 1) + "/" + run.frames.length + " " + frame.state, title: frame.reason || frame.state });
    img.addEventListener("click", function () { open(run, frame); });
    return img;
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

  // --- the matrix: one axis across, one down, swap them -------------------------------------------------
  var axes = data.axes;
  var state = { x: data.x, y: data.y };
  var matrixBox = el("div", { id: "matrix-box" });
  function axis(key) {
    for (var i = 0; i < axes.length; i++) if (axes[i].key === key) return axes[i];
    return { key: "", labels: [""], titles: [""] };
  }
  function picker(id, which, allowNone) {
    var select = el("select", { id: id }, (allowNone ? [el("option", { value: "", text: "(none)" })] : []).concat(
      axes.map(function (a) { return el("option", { value: a.key, text: LABELS[a.key] || a.key }); })));
    select.value = state[which];
    select.addEventListener("change", function () {
      state[which] = select.value;
      if (state.x === state.y) state[which === "x" ? "y" : "x"] = "";
      if (!state.x) state.x = axes[0].key === state.y ? (axes[1] || axes[0]).key : axes[0].key;
      drawMatrix();
    });
    return select;
  }
  function drawMatrix() {
    var x = axis(state.x), y = axis(state.y);
    var table = el("table", { id: "seqnb-matrix", "data-x": x.key, "data-y": y.key });
    table.appendChild(el("tr", {}, [el("th", { class: "corner", text: (LABELS[y.key] || "") + " \u2193 / " + (LABELS[x.key] || x.key) + " \u2192" })]
      .concat(x.labels.map(function (label, i) { return el("th", { class: "x-head", text: label, title: x.titles[i] }); }))));
    y.labels.forEach(function (yLabel, yi) {
      var tr = el("tr", {}, [el("th", { class: "y-head", text: yLabel, title: y.titles[yi] })]);
      x.labels.forEach(function (_, xi) {
        var here = runs.filter(function (r) { return r.at[x.key] === xi && (!y.key || r.at[y.key] === yi); });
        tr.appendChild(el("td", {}, here.map(function (r) {
          return el("div", { class: "cell-run" }, [
            el("a", { href: "#run-" + r.id, text: r.id.slice(0, 8) + (r.consistency === null || r.consistency === undefined ? "" : " \u00b7 " + r.consistency.toFixed(2)) + (r.verdict ? " \u00b7 " + r.verdict : "") }),
            el("div", { class: "strip" }, r.frames.map(function (f) { return thumb(r, f, "small"); })),
          ]);
        })));
      });
      table.appendChild(tr);
    });
    matrixBox.replaceChildren(table);
    document.getElementById("axis-x").value = state.x;
    document.getElementById("axis-y").value = state.y;
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
        el("label", { text: " down " }), picker("axis-y", "y", true), " ", swap]),
      matrixBox,
    ]);
  }

  // --- the runs table, sortable by any column ---------------------------------------------------------------
  var COLUMNS = [
    ["id", "run"], ["created_at", "created"], ["status", "state"], ["model", "model"], ["prompt", "prompt"],
    ["seed", "seed"], ["size", "size"], ["count", "asked"], ["returned", "returned"], ["consistency", "consistency"],
    ["est_cost", "cost"], ["rating", "rating"], ["verdict", "verdict"], ["note", "note"], ["tags", "tags"], ["user", "user"],
  ];
  function sortable(table, rows, cell) {
    var body = el("tbody");
    var head = el("tr", {}, COLUMNS.map(function (col, i) {
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
      return el("td", { text: show(r[key]) });
    });
    return el("section", { id: "runs" }, [el("h2", { text: "Runs" }), table]);
  }

  // --- each series with its facts and its frames' provenance ------------------------------------------------
  function fact(name, value) {
    return value === "" ? null : el("div", {}, [el("dt", { text: name }), el("dd", { text: value })]);
  }
  function seriesBox(r) {
    return el("section", { class: "series", id: "run-" + r.id }, [
      el("h3", { text: "run " + r.id + " \u00b7 " + r.model + " \u00b7 seed " + r.seed }),
      el("p", { class: "prompt", text: r.prompt }),
      el("dl", {}, [
        fact("state", show(r.status) + (r.error ? ": " + r.error : "")),
        fact("cost", cost(r)),
        fact("consistency", show(r.consistency)),
        fact("verdict", show(r.verdict)),
        fact("marks", show(r.marks)),
        fact("note", show(r.note)),
        fact("tags", show(r.tags)),
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
