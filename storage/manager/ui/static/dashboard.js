// The ckptio manager dashboard: reads /ui/api/state every few seconds and
// renders it. Every string from the catalog goes into the page as text
// (textContent, createTextNode), never as HTML.
"use strict";

(function () {
  const REFRESH_MS = 3000;
  // Per store ID: the last {bytes, at, text} seen, for the bandwidth column.
  const lastBytes = new Map();

  // el builds an element; string and number children become text nodes.
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k === "title") e.title = v;
      else e.setAttribute(k, v);
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.append(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
    }
    return e;
  }

  function bytes(n) {
    if (typeof n !== "number" || !isFinite(n)) return "—";
    const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let i = 0;
    while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(Math.round(n)) : n.toFixed(n < 10 ? 2 : 1)) + " " + units[i];
  }

  function rate(bps) {
    return bytes(bps) + "/s";
  }

  // ago says how long before now (a Date) the RFC 3339 time t is.
  function ago(t, now) {
    const d = new Date(t);
    if (isNaN(d) || d.getFullYear() < 2000) return "never";
    let s = Math.round((now - d) / 1000);
    const future = s < 0;
    s = Math.abs(s);
    let txt;
    if (s < 60) txt = s + " s";
    else if (s < 3600) txt = Math.floor(s / 60) + " min";
    else if (s < 86400) txt = Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
    else txt = Math.floor(s / 86400) + " d";
    return future ? "in " + txt : txt + " ago";
  }

  function when(t) {
    const d = new Date(t);
    if (isNaN(d) || d.getFullYear() < 2000) return "—";
    return d.toLocaleString();
  }

  function badge(text, kind) {
    return el("span", { class: "badge " + kind }, text);
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  // stepOf is a version's application step: the number in "step", or a
  // step that is not a number, kept as text in "meta".
  function stepOf(v) {
    if (typeof v.step === "number") return String(v.step);
    if (v.meta && typeof v.meta.step === "string") return v.meta.step;
    return "—";
  }

  function cell(content, cls) {
    return el("td", cls ? { class: cls } : {}, content);
  }

  function usageBar(used, quota) {
    const pct = quota > 0 ? Math.min(100, (100 * used) / quota) : 0;
    const fill = el("div", { class: "fill" + (pct >= 90 ? " full" : pct >= 75 ? " high" : "") });
    fill.style.width = pct.toFixed(1) + "%";
    const label = quota > 0
      ? bytes(used) + " of " + bytes(quota) + " (" + (pct > 0 && pct < 1 ? "<1" : pct.toFixed(0)) + "%)"
      : bytes(used) + " (no quota)";
    return el("div", { class: "usage" }, el("div", { class: "bar" }, fill), el("span", { class: "small" }, label));
  }

  // bandwidth returns the store's bytes in+out per second between its two
  // latest heartbeats seen (the counters move with the heartbeat), or "—"
  // when the store does not report its counters.
  function bandwidth(s) {
    if (typeof s.bytes_in !== "number" || typeof s.bytes_out !== "number") return "—";
    const total = s.bytes_in + s.bytes_out;
    const at = new Date(s.last_seen).getTime();
    const prev = lastBytes.get(s.id);
    if (prev && prev.at === at) return prev.text; // no heartbeat since
    let text = "…";
    if (prev && at > prev.at && total >= prev.bytes) text = rate((total - prev.bytes) / ((at - prev.at) / 1000));
    lastBytes.set(s.id, { bytes: total, at: at, text: text });
    return text;
  }

  function renderSummary(st) {
    const alive = st.stores.filter((s) => s.alive).length;
    let used = 0, quota = 0, versions = 0;
    for (const s of st.stores) { used += s.used || 0; quota += s.quota || 0; }
    for (const j of st.jobs) versions += j.versions || 0;
    const card = (label, value, kind) =>
      el("div", { class: "card" + (kind ? " " + kind : "") }, el("div", { class: "value" }, value), el("div", { class: "label" }, label));
    clear(document.getElementById("summary")).append(
      card("stores alive", alive + " / " + st.stores.length, alive < st.stores.length ? "warn" : ""),
      card("used / quota", bytes(used) + " / " + bytes(quota)),
      card("jobs", st.jobs.length),
      card("versions", versions),
      card("in flight", st.txns.length),
    );
  }

  // storeState is the store's badge: dead, or alive and maybe draining (the
  // operator's 'ckpt stores drain') or busy (its owner's quiet hours or own
  // load defer background work), with the reason as its title.
  function storeState(s) {
    const box = el("span", {}, s.alive ? badge("alive", "ok") : badge("dead", "bad"));
    if (s.draining) box.append(" ", badge("draining", "info"));
    if (s.alive && s.busy) {
      const b = badge("busy", "warn");
      if (s.busy_reason) b.title = s.busy_reason;
      box.append(" ", b);
    }
    return box;
  }

  function renderStores(st, now) {
    const body = clear(document.querySelector("#stores tbody"));
    if (st.stores.length === 0) {
      body.append(el("tr", {}, el("td", { colspan: "7", class: "empty" }, "No store has registered yet: start ckpt-store with --manager pointing here.")));
      return;
    }
    for (const s of st.stores) {
      const name = el("td", {});
      if (s.label) name.append(el("div", {}, s.label));
      name.append(el("div", { class: s.label ? "mono small muted" : "mono", title: s.id }, s.id));
      body.append(el("tr", { "data-store": s.id },
        name,
        cell(s.addr, "mono addr"),
        el("td", {}, storeState(s)),
        el("td", {}, usageBar(s.used || 0, s.quota || 0)),
        cell(s.blocks ?? "—", "num"),
        el("td", { title: when(s.last_seen) }, ago(s.last_seen, now)),
        cell(bandwidth(s), "num bw"),
      ));
    }
  }

  function renderJobs(st, now) {
    const box = clear(document.getElementById("jobs"));
    if (st.jobs.length === 0) {
      box.append(el("p", { class: "empty" }, "No job has committed a version yet."));
      return;
    }
    for (const j of st.jobs) {
      const head = el("div", { class: "job-head" },
        el("h3", {}, j.name),
        el("span", { class: "muted" },
          j.versions + (j.versions === 1 ? " version" : " versions") +
          (j.latest ? ", latest v" + j.latest + " committed " + ago(j.updated, now) : "") +
          (j.in_flight ? ", " + j.in_flight + " in flight" : "")));
      const table = el("table", { class: "versions", "data-job": j.name },
        el("thead", {}, el("tr", {},
          el("th", { class: "num" }, "Version"), el("th", { class: "num" }, "Step"), el("th", {}, "Committed"),
          el("th", { class: "num" }, "Size"), el("th", { class: "num" }, "New bytes"), el("th", { class: "num" }, "Blocks"),
          el("th", { class: "num" }, "Copies"), el("th", {}, "Health"))));
      const body = el("tbody", {});
      for (const v of j.recent) {
        // Protected: every block is listed on at least v.replicas alive
        // stores. Otherwise some block has fewer, none at all for a
        // version of one copy.
        // An erasure-coded version (v.redundancy "rs:K+M") is protected
        // when every shard's store is alive; otherwise it may still read
        // (any K shards do).
        const health = el("td", {}, v.protected
          ? badge("protected", "ok")
          : v.redundancy ? badge("a shard's store is not alive", "warn")
          : v.replicas > 1 ? badge("fewer than " + v.replicas + " copies", "warn") : badge("no live copy", "bad"));
        if (v.pinned) health.append(" ", badge("pinned", "info"));
        body.append(el("tr", { "data-version": String(v.version) },
          cell("v" + v.version, "num"),
          cell(stepOf(v), "num"),
          el("td", { title: when(v.committed) }, ago(v.committed, now)),
          cell(bytes(v.logical_bytes), "num"),
          cell(bytes(v.new_bytes), "num"),
          cell(v.blocks, "num"),
          cell(v.redundancy ? v.redundancy + " (" + v.overhead + "x)" : v.replicas, "num"),
          health));
      }
      if (j.recent.length === 0) body.append(el("tr", {}, el("td", { colspan: "8", class: "empty" }, "No committed version yet.")));
      table.append(body);
      box.append(el("div", { class: "job" }, head, table,
        j.versions > j.recent.length ? el("p", { class: "muted small" }, "Showing the newest " + j.recent.length + " of " + j.versions + " versions.") : null));
    }
  }

  function renderTxns(st, now) {
    const body = clear(document.querySelector("#txns tbody"));
    if (st.txns.length === 0) {
      body.append(el("tr", {}, el("td", { colspan: "4", class: "empty" }, "None.")));
      return;
    }
    for (const t of st.txns) {
      body.append(el("tr", {},
        cell(t.job),
        cell(t.id, "mono small"),
        el("td", { title: when(t.began) }, ago(t.began, now)),
        el("td", { title: when(t.expires) }, ago(t.expires, now))));
    }
  }

  // facts renders [label, value] pairs as a definition list.
  function facts(pairs) {
    const dl = el("dl", { class: "facts" });
    for (const [k, v] of pairs) dl.append(el("dt", {}, k), el("dd", {}, v));
    return dl;
  }

  function skipped(list) {
    return list && list.length ? list.map((s) => s.addr || s.id).join(", ") : "none";
  }

  function renderGC(gc, now) {
    const box = clear(document.getElementById("gc"));
    if (gc.running) box.append(el("p", {}, badge("running", "info"), " since " + ago(gc.since, now)));
    const r = gc.last;
    if (!r) {
      box.append(el("p", { class: "empty" }, "None since the manager started."));
      return;
    }
    const failed = (r.stores || []).filter((s) => s.error);
    box.append(facts([
      ["Started", ago(r.started, now) + " (" + when(r.started) + ")"],
      ["Took", r.took || "—"],
      ["Freed", bytes(r.freed_bytes)],
      ["Unreferenced blocks", String(r.unreferenced)],
      ["Stores swept", String((r.stores || []).length)],
      ["Skipped (dead)", skipped(r.skipped)],
      ["Result", failed.length ? failed.length + " store(s) failed" : "ok"],
    ]));
    for (const s of failed) box.append(el("p", { class: "error small" }, (s.addr || s.id) + ": " + s.error));
  }

  function renderRepair(rp, now) {
    const box = clear(document.getElementById("repair"));
    if (rp.running) box.append(el("p", {}, badge("running", "info"), " since " + ago(rp.since, now)));
    const r = rp.last;
    if (!r) {
      box.append(el("p", { class: "empty" }, "None since the manager started."));
      return;
    }
    const bad = (r.lost || 0) > 0 ? "lost" : (r.unrepaired || 0) > 0 ? "unrepaired" : "";
    box.append(facts([
      ["Started", ago(r.started, now) + " (" + when(r.started) + ")"],
      ["Took", r.took || "—"],
      ["Scope", r.job ? "job " + r.job : "every job"],
      ["Versions / blocks checked", r.versions + " / " + r.blocks],
      ["Degraded blocks found", String(r.degraded)],
      ["Copies made", r.copies + " (" + bytes(r.copied_bytes) + ")"],
      ["Unrepaired", String(r.unrepaired)],
      ["Lost", String(r.lost)],
      ["Skipped (dead)", skipped(r.skipped)],
      ["Result", bad === "lost" ? "blocks lost" : bad === "unrepaired" ? "still below target" : "ok"],
    ]));
  }

  function render(st) {
    const now = new Date(st.now);
    renderSummary(st);
    renderStores(st, now);
    renderJobs(st, now);
    renderTxns(st, now);
    renderGC(st.gc, now);
    renderRepair(st.repair, now);
    document.getElementById("updated").textContent =
      "updated " + now.toLocaleTimeString() + " · refreshes every " + REFRESH_MS / 1000 + " s";
    document.body.dataset.loaded = "true";
  }

  function showError(msg) {
    const b = document.getElementById("banner");
    b.textContent = msg;
    b.hidden = msg === "";
  }

  // One refresh at a time: a running one schedules the next.
  let timer = 0, running = false;

  async function refresh() {
    window.clearTimeout(timer);
    if (running) return;
    if (document.hidden) return; // resumed by visibilitychange: no load on the manager from a background tab
    running = true;
    try {
      const resp = await fetch("/ui/api/state", { credentials: "same-origin", cache: "no-store" });
      if (resp.status === 401) {
        window.location.assign("/ui/login");
        return;
      }
      if (!resp.ok) {
        let msg = resp.status + " " + resp.statusText;
        try { msg = (await resp.json()).error || msg; } catch (e) { /* not JSON */ }
        throw new Error(msg);
      }
      render(await resp.json());
      showError("");
    } catch (e) {
      showError("Cannot read the manager's state: " + e.message + " (retrying every " + REFRESH_MS / 1000 + " s)");
    }
    running = false;
    timer = window.setTimeout(refresh, REFRESH_MS);
  }

  document.addEventListener("DOMContentLoaded", refresh);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
})();
