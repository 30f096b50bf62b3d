// mediaidx dashboard: plain JavaScript, no build step. Views: library grid, asset page, statistics, jobs.
// Everything the server sends is inserted as text (h() below), never as HTML: file names are untrusted.
"use strict";

const view = document.getElementById("view");
const PAGE = 60;

// -- DOM and formatting helpers -------------------------------------------------------------------------
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
const svgNS = "http://www.w3.org/2000/svg";
function s(tag, attrs, text) {
  const el = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}
function bytes(n) {
  if (n === null || n === undefined) return "";
  const u = ["B", "KB", "MB", "GB", "TB", "PB"];
  let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return `${n.toFixed(n < 10 && i ? 1 : 0)} ${u[i]}`;
}
function dur(sec) {
  if (sec === null || sec === undefined) return "";
  const t = Math.round(sec);
  const hh = Math.floor(t / 3600), mm = Math.floor((t % 3600) / 60), ss = t % 60;
  return (hh ? `${hh}:${String(mm).padStart(2, "0")}` : `${mm}`) + `:${String(ss).padStart(2, "0")}`;
}
function fps(f) {
  if (!f) return "";
  const [a, b] = f.split("/").map(Number);
  return `${+(a / (b || 1)).toFixed(3)} fps`;
}
function res(a) { return a.width && a.height ? `${a.width}×${a.height}` : ""; }
function stars(n) { return n ? "★".repeat(n) + "☆".repeat(5 - n) : ""; }
function when(ts) { return ts ? new Date(ts * 1000).toLocaleString() : ""; }

// -- API ------------------------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, body) { super(body?.error?.message || `HTTP ${status}`); this.status = status; }
}
async function api(path, opts = {}) {
  const init = { credentials: "same-origin", headers: { Accept: "application/json" }, ...opts };
  if (opts.json !== undefined) {
    init.method = opts.method || "POST";
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(opts.json);
  }
  const r = await fetch(path, init);
  if (r.status === 401) { await login(); return api(path, opts); }
  const body = r.status === 204 ? null : await r.json().catch(() => null);
  if (!r.ok) throw new ApiError(r.status, body);
  return body;
}

let loginWaiter = null;
function login() {
  if (loginWaiter) return loginWaiter;
  const dlg = document.getElementById("login");
  const form = document.getElementById("login-form");
  const err = document.getElementById("login-error");
  loginWaiter = new Promise((resolve) => {
    form.onsubmit = async (ev) => {
      ev.preventDefault();
      const token = document.getElementById("login-token").value;
      const r = await fetch("/api/login", { method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token }) });
      if (r.ok) { dlg.close(); loginWaiter = null; resolve(); }
      else { err.hidden = false; err.textContent = "Wrong token."; }
    };
    dlg.showModal();
  });
  return loginWaiter;
}

// -- Blender sessions badge --------------------------------------------------------------------------
let sessions = [];
async function refreshSessions() {
  try {
    const r = await api("/api/sessions");
    sessions = r.sessions;
    const b = document.getElementById("sessions-badge");
    b.textContent = r.bridge ? `Blender: ${sessions.length}` : "Blender: off";
    b.classList.toggle("on", sessions.length > 0);
  } catch (e) { /* the badge is informative only */ }
}

// -- router --------------------------------------------------------------------------------------------
const routes = [
  [/^#?\/?$/, showLibrary, "library"],
  [/^#\/asset\/(\d+)$/, showAsset, "library"],
  [/^#\/stats$/, showStats, "stats"],
  [/^#\/jobs$/, showJobs, "jobs"],
];
let leaveView = null;
async function route() {
  if (leaveView) { leaveView(); leaveView = null; }
  const hash = location.hash || "#/";
  for (const [re, fn, nav] of routes) {
    const m = hash.match(re);
    if (!m) continue;
    document.querySelectorAll("[data-nav]").forEach((a) => a.classList.toggle("active", a.dataset.nav === nav));
    try { await fn(...m.slice(1)); } catch (e) { view.replaceChildren(h("p", { class: "error" }, e.message)); }
    return;
  }
  view.replaceChildren(h("p", {}, "Nothing here. ", h("a", { href: "#/" }, "Back to the library")));
}
window.addEventListener("hashchange", route);

// -- library grid --------------------------------------------------------------------------------------
const libraryState = { q: "", kind: "", resolution: "", min_rating: "", has_audio: "", camera: "", tag: "", sort: "added", order: "desc" };
function card(a) {
  const img = h("img", { src: a.thumb_url, alt: "", loading: "lazy" });
  img.addEventListener("error", () => img.replaceWith(h("span", { class: "placeholder" }, a.kind)));
  const sub = [a.kind === "video" ? (a.video_codec || "") : a.kind, res(a), a.fps ? fps(a.fps) : ""].filter(Boolean).join(" · ");
  return h("a", { class: "card", href: `#/asset/${a.id}`, "data-id": a.id },
    h("div", { class: "thumb" }, img, h("span", { class: "chip kind" }, a.kind),
      a.duration ? h("span", { class: "chip dur" }, dur(a.duration)) : null),
    h("div", { class: "meta" },
      h("span", { class: "name", title: a.path }, a.name),
      h("span", { class: "sub" }, sub || a.status),
      h("span", { class: "stars-ro" }, stars(a.rating))));
}
async function showLibrary() {
  view.replaceChildren(document.getElementById("tpl-library").content.cloneNode(true));
  const grid = document.getElementById("grid"), count = document.getElementById("result-count");
  const more = document.getElementById("load-more");
  const ids = { q: "search", kind: "f-kind", resolution: "f-resolution", min_rating: "f-rating", has_audio: "f-audio",
    camera: "f-camera", tag: "f-tag", sort: "f-sort", order: "f-order" };
  for (const [k, id] of Object.entries(ids)) document.getElementById(id).value = libraryState[k];
  let offset = 0, seq = 0;
  async function load(append) {
    const my = ++seq;
    const p = new URLSearchParams({ limit: PAGE, offset, sort: libraryState.sort, order: libraryState.order });
    for (const k of ["q", "kind", "resolution", "min_rating", "has_audio", "camera", "tag"]) {
      if (libraryState[k]) p.set(k, libraryState[k]);
    }
    let r;
    try { r = await api(`/api/assets?${p}`); }
    catch (e) { if (my === seq) { count.textContent = e.message; count.className = "error"; grid.replaceChildren(); } return; }
    if (my !== seq) return;
    count.className = "muted";
    count.textContent = `${r.total.toLocaleString()}${r.total_exact ? "" : "+"} asset${r.total === 1 ? "" : "s"}`;
    const cards = r.results.map(card);
    if (append) grid.append(...cards); else grid.replaceChildren(...cards);
    if (!r.results.length && !append) grid.append(h("p", { class: "muted" }, "Nothing matches."));
    offset += r.results.length;
    more.hidden = r.results.length < PAGE;
  }
  let timer = null;
  for (const [k, id] of Object.entries(ids)) {
    const el = document.getElementById(id);
    el.addEventListener(el.tagName === "SELECT" ? "change" : "input", () => {
      libraryState[k] = el.value;
      clearTimeout(timer);
      timer = setTimeout(() => { offset = 0; load(false); }, el.tagName === "SELECT" ? 0 : 200);
    });
  }
  more.addEventListener("click", () => load(true));
  await load(false);
  document.getElementById("search").focus();
}

// -- asset page ------------------------------------------------------------------------------------------
function kv(pairs) {
  const dl = h("dl", { class: "kv" });
  for (const [k, v] of pairs) if (v !== null && v !== undefined && v !== "") dl.append(h("dt", {}, k), h("dd", {}, v));
  return dl;
}
function probeView(p) {
  if (!p) return h("p", { class: "muted" }, "Not probed.");
  const fmt = p.format || {};
  const txt = (x) => (x === null || x === undefined ? "" : typeof x === "object" ? Object.entries(x).map(([k, v]) => `${k} ${typeof v === "object" ? JSON.stringify(v) : v}`).join(", ") : String(x));
  const img = p.image || {};
  const parts = [kv([["container", fmt.long_name || fmt.container], ["duration", fmt.duration && `${dur(fmt.duration)} (${fmt.duration} s)`],
    ["bit rate", fmt.bit_rate && `${Math.round(fmt.bit_rate / 1000)} kb/s`], ["timecode", txt(p.timecode)],
    ["created", p.created && `${p.created.value || ""}${p.created.source ? ` (${p.created.source})` : ""}`],
    ["camera", p.camera && [p.camera.make, p.camera.model, p.camera.lens].filter(Boolean).join(" ")],
    ["image", img.width && `${img.width}×${img.height} ${img.format || ""} ${img.mode || ""} ${img.bit_depth ? img.bit_depth + "-bit" : ""}`],
    ["GPS", txt(p.gps)],
    ["audio level", p.audio && (p.audio.silent ? "silent" : p.audio.peak_dbfs !== undefined ? `peak ${p.audio.peak_dbfs} dBFS, RMS ${p.audio.rms_dbfs} dBFS` : "")],
  ])];
  const streams = p.streams || [];
  if (streams.length) {
    const cols = ["index", "type", "codec", "width", "height", "frame_rate", "pix_fmt", "sample_rate", "channels", "rotation"];
    const used = cols.filter((c) => streams.some((st) => st[c] !== undefined && st[c] !== null));
    parts.push(h("table", { class: "streams" }, h("thead", {}, h("tr", {}, used.map((c) => h("th", {}, c.replace("_", " "))))),
      h("tbody", {}, streams.map((st) => h("tr", {}, used.map((c) => h("td", {}, st[c] ?? "")))))));
  }
  if (p.warnings && p.warnings.length) parts.push(h("p", { class: "error" }, p.warnings.join("; ")));
  parts.push(h("details", {}, h("summary", {}, "Full probe (JSON)"), h("pre", {}, JSON.stringify(p, null, 2))));
  return parts;
}
async function showAsset(id) {
  const a = await api(`/api/assets/${id}`);
  const media = h("div", { class: "media" });
  const hero = h("img", { id: "hero", src: a.hero_url, alt: a.name });
  hero.addEventListener("error", () => hero.replaceWith(h("p", { class: "muted" }, "No image for this asset.")));
  media.append(hero);
  if (a.kind === "video" || a.kind === "audio") {
    media.append(h("div", { class: "row" }, h("button", { id: "play", onclick: () => {
      const v = h(a.kind === "video" ? "video" : "audio", { src: a.file_url, controls: true, autoplay: true, poster: a.hero_url });
      v.addEventListener("error", async () => {  // a player says nothing of why: ask the service (one byte)
        let why = "The browser cannot play this file's format.";
        try {
          const r = await fetch(a.file_url, { credentials: "same-origin", headers: { Range: "bytes=0-0" } });
          if (!r.ok) why = (await r.json().catch(() => null))?.error?.message || `HTTP ${r.status}`;
        } catch (e) { why = e.message; }
        media.append(h("p", { class: "error", id: "play-error" }, why));
      });
      media.replaceChildren(v);
    } }, "▶ Play")));
  }
  // rating
  const starBox = h("div", { class: "stars", role: "group", "aria-label": "rating" });
  const ratingValue = h("span", { id: "rating-value", class: "muted" });
  function paintStars(r) {
    starBox.querySelectorAll("button[data-value]").forEach((b) => b.classList.toggle("on", r !== null && +b.dataset.value <= r));
    ratingValue.textContent = r === null || r === undefined ? "not rated" : `${r}/5`;
  }
  for (let i = 1; i <= 5; i++) {
    starBox.append(h("button", { "data-value": i, title: `${i} star${i > 1 ? "s" : ""}`, "aria-label": `rate ${i}`,
      onclick: () => setRating(i) }, "★"));
  }
  starBox.append(h("button", { class: "clear", onclick: () => setRating(null) }, "clear"), ratingValue);
  // A refused change (a tag too long, a note too large, the service gone) says why, under the section.
  const problem = (id) => h("p", { class: "error", id, hidden: true });
  const ratingError = problem("rating-error"), tagError = problem("tag-error"), noteError = problem("note-error");
  async function attempt(errorBox, fn) {
    errorBox.hidden = true;
    try { await fn(); return true; }
    catch (e) { errorBox.textContent = e.message; errorBox.hidden = false; return false; }
  }
  async function setRating(r) {
    await attempt(ratingError, async () => {
      const out = await api(`/api/assets/${a.id}/rating`, { method: "PUT", json: { rating: r } });
      paintStars(out.asset.rating);
    });
  }
  paintStars(a.rating);
  // tags
  const tagBox = h("div", { class: "tags", id: "tags" });
  function paintTags(tags) {
    tagBox.replaceChildren(...tags.map((t) => h("span", { class: "tag" }, t,
      h("button", { "aria-label": `remove ${t}`, onclick: () => changeTags({ remove: [t] }) }, "×"))));
    tagBox.append(tagInput);
  }
  const tagInput = h("input", { id: "tag-input", placeholder: "add tag ⏎", size: 10, onkeydown: async (ev) => {
    const typed = tagInput.value.trim();
    if (ev.key === "Enter" && typed && await changeTags({ add: [typed] }) && tagInput.value.trim() === typed) {
      tagInput.value = "";  // only once the tag is saved: a refused one stays there to correct
    }
  } });
  function changeTags(body) {
    return attempt(tagError, async () => {
      const out = await api(`/api/assets/${a.id}/tags`, { json: body });
      paintTags(out.asset.tags);
    });
  }
  paintTags(a.tags);
  // note
  const note = h("textarea", { id: "note" });
  note.value = a.note || "";
  const saved = h("span", { class: "saved" });
  const saveNote = h("button", { id: "save-note", onclick: async () => {
    if (await attempt(noteError, () => api(`/api/assets/${a.id}/note`, { method: "PUT", json: { note: note.value } }))) {
      saved.textContent = "saved"; setTimeout(() => (saved.textContent = ""), 1500);
    }
  } }, "Save note");
  // send to Blender
  await refreshSessions();
  const send = h("div", { class: "row", id: "send" });
  if (!sessions.length) send.append(h("span", { class: "muted" }, "No Blender session connected."));
  else {
    const who = h("select", { id: "send-to" }, sessions.map((x) => h("option", { value: x.name }, `${x.name}${x.host ? " @ " + x.host : ""}`)));
    const mode = h("select", { id: "send-mode" }, ["clip", "camera-bg", "strip", "plane"].map((m) => h("option", {}, m)));
    const msg = h("span", { class: "saved" });
    send.append(who, mode, h("button", { class: "primary", id: "send-button", onclick: async () => {
      try {
        const r = await api(`/api/sessions/${encodeURIComponent(who.value)}/push`, { json: { assets: [a.id], mode: mode.value } });
        msg.className = "saved"; msg.textContent = `sent to ${r.to}`;
      } catch (e) { msg.className = "error"; msg.textContent = e.message; }
    } }, "Send to Blender"), msg);
  }
  view.replaceChildren(
    h("p", {}, h("a", { href: "#/" }, "← Library")),
    h("div", { class: "asset" },
      h("div", {}, media, h("section", { class: "panel" }, h("h2", {}, "Probe"), probeView(a.probe))),
      h("div", {},
        h("section", { class: "panel" }, h("h2", { id: "asset-title" }, a.name),
          kv([["path", a.path], ["kind", a.kind], ["status", a.status + (a.error ? ` (${a.error})` : "")],
            ["resolution", res(a)], ["frame rate", fps(a.fps)], ["duration", dur(a.duration)],
            ["codecs", [a.video_codec, a.audio_codec].filter(Boolean).join(" + ")], ["size", bytes(a.size)],
            ["captured", a.captured_at], ["camera", [a.camera_make, a.camera_model].filter(Boolean).join(" ")],
            ["audio", a.has_audio === null ? "" : a.has_audio ? (a.audio_silent ? "yes (silent)" : "yes") : "no"],
            ["added", when(a.added_at)]])),
        h("section", { class: "panel" }, h("h3", {}, "Rating"), starBox, ratingError),
        h("section", { class: "panel" }, h("h3", {}, "Tags"), tagBox, tagError),
        h("section", { class: "panel" }, h("h3", {}, "Note"), note, h("div", { class: "row" }, saveNote, saved), noteError),
        h("section", { class: "panel" }, h("h3", {}, "Send to Blender"), send))));
}

// -- statistics -----------------------------------------------------------------------------------------
function barChart(title, data, { format = (v) => v.toLocaleString(), alt = false, id } = {}) {
  const entries = Object.entries(data || {}).slice(0, 12);
  const W = 420, row = 24, left = 130, H = Math.max(1, entries.length) * row + 8;
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title, id: id || "" });
  const max = Math.max(1, ...entries.map(([, v]) => v));
  entries.forEach(([k, v], i) => {
    const y = i * row + 4, w = Math.max(1, ((W - left - 70) * v) / max);
    svg.append(s("text", { x: left - 6, y: y + 15, "text-anchor": "end", class: "label" }, k.length > 20 ? k.slice(0, 19) + "…" : k));
    svg.append(s("rect", { x: left, y, width: w, height: row - 6, rx: 3, class: alt ? "bar alt" : "bar" }));
    svg.append(s("text", { x: left + w + 6, y: y + 15 }, format(v)));
  });
  if (!entries.length) svg.append(s("text", { x: 8, y: 20, class: "label" }, "no data"));
  return h("section", { class: "panel" }, h("h3", {}, title), svg);
}
function columnChart(title, data, id) {
  const entries = Object.entries(data || {});
  const W = 420, H = 180, bottom = 34, n = Math.max(1, entries.length), bw = (W - 20) / n;
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title, id });
  const max = Math.max(1, ...entries.map(([, v]) => v));
  entries.forEach(([k, v], i) => {
    const hgt = ((H - bottom - 16) * v) / max, x = 10 + i * bw;
    svg.append(s("rect", { x: x + 1, y: H - bottom - hgt, width: Math.max(1, bw - 2), height: hgt, rx: 2, class: "bar" }));
    svg.append(s("title", {}, `${k}: ${v}`));
    if (n <= 16 || i % Math.ceil(n / 12) === 0) {
      svg.append(s("text", { x: x + bw / 2, y: H - bottom + 14, "text-anchor": "middle", class: "label" }, k));
    }
    if (n <= 24) svg.append(s("text", { x: x + bw / 2, y: H - bottom - hgt - 4, "text-anchor": "middle" }, v));
  });
  if (!entries.length) svg.append(s("text", { x: 8, y: 20, class: "label" }, "no capture dates"));
  return h("section", { class: "panel" }, h("h3", {}, title), svg);
}
async function showStats() {
  const st = await api("/api/stats");
  const roots = Object.fromEntries((st.roots || []).map((r) => [r.url.split("/").filter(Boolean).pop() || r.url, r.size]));
  view.replaceChildren(
    h("div", { class: "numbers", id: "stats-numbers" },
      h("div", { class: "panel" }, h("b", {}, st.present.toLocaleString()), "assets present"),
      h("div", { class: "panel" }, h("b", {}, bytes(st.total_size)), "storage used"),
      h("div", { class: "panel" }, h("b", {}, dur(st.total_duration)), "of footage and sound"),
      h("div", { class: "panel" }, h("b", {}, st.rated.toLocaleString()), "rated")),
    h("div", { class: "charts" },
      barChart("By kind", st.by_kind, { id: "chart-kind" }),
      barChart("Storage by kind", st.size_by_kind, { format: bytes, alt: true, id: "chart-storage" }),
      barChart("Video codecs", st.by_video_codec, { id: "chart-codec" }),
      barChart("Resolutions", st.by_resolution, { id: "chart-resolution" }),
      barChart("Cameras", st.by_camera, { id: "chart-camera" }),
      columnChart("Month of capture", st.by_month, "chart-month"),
      barChart("Storage by root", roots, { format: bytes, alt: true, id: "chart-roots" }),
      barChart("Audio codecs", st.by_audio_codec, { id: "chart-audio" })));
}

// -- jobs: scans and workflows -------------------------------------------------------------------------
function progressText(j) {
  const p = j.progress || {};
  if (j.state !== "running") {
    const r = j.result;
    if (j.error) return j.error;
    if (r && r.steps) return `${r.steps.length} step(s): ` + r.steps.map((x) => `${x.action} ${x.status}`).join(", ");
    if (r) return (r.dry_run ? "would have: " : "") + ["added", "changed", "moved", "missing", "unchanged", "failed"].map((k) => `${k} ${r[k]}`).join(", ")
      + (r.dry_run ? ` (nothing changed; ${r.plan_count} planned actions)` : "");
    return "";
  }
  return `${p.phase || "starting"}: ${p.files || 0} files in ${p.folders || 0} folders` +
    (p.work_total ? `, ${p.work_done}/${p.work_total} read` : "");
}
function jobPercent(j) {
  if (j.state !== "running") return 100;
  const p = j.progress || {};
  if (p.phase === "work" && p.work_total) return 10 + (80 * p.work_done) / p.work_total;
  return { walk: 5, work: 10, resolve: 92, done: 100 }[p.phase] || 2;
}
function jobRow(j, live) {
  const bar = h("div", { class: "progress-bar" });
  const state = h("span", { class: `state-${j.state} job-state` }, j.state);
  const text = h("div", { class: "muted job-text" });
  const cancel = h("button", { class: "cancel", onclick: () => api(`/api/jobs/${j.id}/cancel`, { method: "POST" }) }, "Cancel");
  const row = h("div", { class: "job", "data-job": j.id },
    h("div", { class: "row" }, h("b", {}, `#${j.id} ${j.kind}${j.params && j.params.dry_run ? " (dry run)" : ""}`),
      h("span", { class: "muted job-origin" }, j.origin === "bridge" ? `from ${j.session || "ZeroMQ"}` : "from the web"), state, cancel),
    h("div", { class: "progress" }, bar), text);
  function paint(x) {
    state.textContent = x.cancelling ? "cancelling" : x.state;
    state.className = `state-${x.state} job-state`;
    bar.style.width = `${jobPercent(x)}%`;
    text.textContent = progressText(x);
    cancel.hidden = x.state !== "running";
    row.dataset.state = x.state;
  }
  paint(j);
  if (j.state === "running" && live) follow(j.id, paint);
  else if (j.state !== "running" && j.result == null && !j.error) api(`/api/jobs/${j.id}`).then(paint).catch(() => {}); // lists carry no results
  return row;
}
const streams = new Set();
function follow(id, paint) {
  const es = new EventSource(`/api/jobs/${id}/events`);
  streams.add(es);
  es.addEventListener("progress", (ev) => paint(JSON.parse(ev.data)));
  es.addEventListener("done", (ev) => { paint(JSON.parse(ev.data)); es.close(); streams.delete(es); });
  es.onerror = () => { es.close(); streams.delete(es); api(`/api/jobs/${id}`).then(paint).catch(() => {}); };
}
async function showJobs() {
  const [roots, jobs] = await Promise.all([api("/api/roots"), api("/api/jobs")]);
  const rootsBox = h("textarea", { id: "scan-roots", rows: 3, placeholder: "/mnt/nas/footage (one folder per line)" });
  rootsBox.value = roots.map((r) => r.url).join("\n");
  const thumbs = h("input", { type: "checkbox", id: "scan-thumbs", checked: true });
  const list = h("div", { id: "jobs" });
  const err = h("p", { class: "error", id: "jobs-error" });
  async function start(kind, body) {
    err.textContent = "";
    try {
      const j = await api(kind === "scan" ? "/api/scans" : "/api/workflows", { json: body });
      add(j);
    } catch (e) { err.textContent = e.message; }
  }
  function add(j) {  // from a button here, or found by the poll below (a scan started from Blender or the CLI)
    if (list.querySelector(`.job[data-job="${j.id}"]`)) return;
    document.getElementById("no-jobs")?.remove();
    list.prepend(jobRow(j, true));
  }
  const poll = setInterval(() => api("/api/jobs").then((now) => now.slice().reverse().forEach(add)).catch(() => {}), 3000);
  const scanBody = (dry) => ({ roots: rootsBox.value.split("\n").map((x) => x.trim()).filter(Boolean), thumbs: thumbs.checked, dry_run: dry });
  const wf = h("textarea", { id: "workflow", rows: 6 });
  wf.value = JSON.stringify({ workflow: [{ action: "scan", root: roots[0] ? roots[0].url : "/path/to/media", thumbs: true }, { action: "stats" }] }, null, 2);
  function wfBody(dry) {
    try { return { workflow: JSON.parse(wf.value), dry_run: dry }; }
    catch (e) { err.textContent = `The workflow is not valid JSON: ${e.message}`; return null; }
  }
  view.replaceChildren(
    h("section", { class: "panel" }, h("h2", {}, "Scan"),
      h("p", { class: "muted" }, "Preview first: a dry run lists what a scan would change and changes nothing."),
      rootsBox, h("div", { class: "row" }, h("label", {}, thumbs, " make thumbnails"),
        h("button", { id: "scan-dry", onclick: () => start("scan", scanBody(true)) }, "Preview (dry run)"),
        h("button", { id: "scan-start", class: "primary", onclick: () => start("scan", scanBody(false)) }, "Scan"))),
    h("section", { class: "panel" }, h("h2", {}, "Workflow"),
      h("p", { class: "muted" }, "The same JSON workflows as ", h("code", {}, "mediaidx run"), "."), wf,
      h("div", { class: "row" },
        h("button", { id: "wf-dry", onclick: () => { const b = wfBody(true); if (b) start("workflow", b); } }, "Dry run"),
        h("button", { id: "wf-run", class: "primary", onclick: () => { const b = wfBody(false); if (b) start("workflow", b); } }, "Run"))),
    err,
    h("section", { class: "panel" }, h("h2", {}, "Jobs"), list));
  list.append(...jobs.map((j) => jobRow(j, true)));
  if (!jobs.length) list.append(h("p", { class: "muted", id: "no-jobs" }, "No job yet."));
  leaveView = () => { clearInterval(poll); for (const es of streams) es.close(); streams.clear(); };
}

// -- start ------------------------------------------------------------------------------------------------
refreshSessions();
setInterval(refreshSessions, 10000);
route();
