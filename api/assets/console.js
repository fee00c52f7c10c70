// The audit console's only script (the CSP allows no inline code): the history chart and the
// event replay, whose inclusion proofs are verified here, in the browser, with WebCrypto:
// RFC 9162 §2.1.3.2 (SHA-256) against the checkpoint's root, and the checkpoint's C2SP
// signed-note signature (Ed25519) against the log's verifier key. Nothing is trusted from the
// page itself except which leaf (position, hash) each step claims.
"use strict";

(function () {
  const enc = new TextEncoder();
  const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  const hex = (s) => Uint8Array.from((s.match(/../g) || []).map((h) => parseInt(h, 16)));
  const toHex = (a) => Array.from(a, (x) => x.toString(16).padStart(2, "0")).join("");
  const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

  async function sha256(...parts) {
    const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { all.set(p, at); at += p.length; }
    return new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  }
  const node = (l, r) => sha256(Uint8Array.of(1), l, r);

  // RFC 9162 §2.1.3.2: the root an inclusion path leads to, or null when the path is malformed.
  async function rootOf(index, size, leaf, path) {
    if (index < 0 || index >= size) return null;
    let fn = index, sn = size - 1, r = leaf;
    for (const p of path) {
      if (sn === 0) return null;
      if ((fn & 1) === 1 || fn === sn) {
        r = await node(p, r);
        if ((fn & 1) === 0) { while (!((fn & 1) === 1 || fn === 0)) { fn >>= 1; sn >>= 1; } }
      } else {
        r = await node(r, p);
      }
      fn >>= 1; sn >>= 1;
    }
    return sn === 0 ? r : null;
  }

  // Public reads, without credentials (the proof needs none); throttled anonymous reads
  // (429) are retried after the Retry-After the server gives, a few times.
  async function text(url) {
    for (let attempt = 0; ; attempt++) {
      const resp = await fetch(url, { cache: "no-store", credentials: "omit" });
      if (resp.ok) return resp.text();
      if (resp.status !== 429 || attempt >= 4) throw new Error(url + ": HTTP " + resp.status);
      const wait = Math.min(10, Number(resp.headers.get("Retry-After")) || 1);
      await new Promise((done) => setTimeout(done, wait * 1000));
    }
  }

  // The latest checkpoint: {size, root, signature: "verified" | "unsupported" | "failed", why}.
  async function checkpoint() {
    const note = await text("/api/v1/ledger/checkpoint");
    const vkey = (await text("/api/v1/ledger/key")).trim();
    // <name>+<hex key id>+<base64(0x01 || key)>: the base64 may itself hold "+".
    const [name, kid] = vkey.split("+", 2);
    const typedKey = vkey.slice(name.length + kid.length + 2);
    const typed = b64(typedKey);
    const split = note.indexOf("\n\n");
    const body = note.slice(0, split + 1);
    const lines = body.split("\n");
    if (split < 0 || lines.length < 4 || !/^[0-9]+$/.test(lines[1])) {
      throw new Error("not a signed checkpoint: " + JSON.stringify(note.slice(0, 120)));
    }
    const cp = { origin: lines[0], size: Number(lines[1]), root: b64(lines[2]),
                 signature: "failed", why: "" };
    if (typed[0] !== 1 || typed.length !== 33) { cp.why = "not an Ed25519 verifier key"; return cp; }
    const prefix = "\u2014 " + name + " ";
    const sigLine = note.slice(split + 2).split("\n").find((l) => l.startsWith(prefix)
      && toHex(b64(l.slice(prefix.length)).slice(0, 4)) === kid);
    if (!sigLine) { cp.why = "no signature by key " + kid; return cp; }
    const sig = b64(sigLine.slice(prefix.length)).slice(4);
    let key;
    try {
      key = await crypto.subtle.importKey("raw", typed.slice(1), { name: "Ed25519" }, false, ["verify"]);
    } catch (e) {
      cp.signature = "unsupported";
      return cp;
    }
    const ok = await crypto.subtle.verify({ name: "Ed25519" }, key, sig, enc.encode(body));
    cp.signature = ok ? "verified" : "failed";
    if (!ok) cp.why = "the signature does not verify";
    return cp;
  }

  const LABELS = {
    verified: "已验证 Verified",
    unsigned: "证明成立，但此浏览器无法校验检查点签名 Proof holds; this browser cannot check the Ed25519 signature",
    failed: "校验失败 Verification failed",
    pending: "检查点尚未包含此事件 Not yet in a checkpoint",
    error: "无法校验 Could not check",
  };
  function mark(badge, state, detail) {
    badge.dataset.state = state;
    badge.textContent = LABELS[state] + (detail ? " (" + detail + ")" : "");
    badge.className = "badge " + state;
  }

  async function verifyStep(step, cp) {
    const badge = step.querySelector(".badge");
    const index = Number(step.dataset.position);
    if (index >= cp.size) { mark(badge, "pending", "size " + cp.size); return; }
    try {
      const proof = JSON.parse(await text(
        "/api/v1/ledger/proofs/inclusion?index=" + index + "&size=" + cp.size));
      const leaf = b64(proof.leaf_hash);
      if (!same(leaf, hex(step.dataset.leaf))) { mark(badge, "failed", "leaf hash"); return; }
      const root = await rootOf(index, cp.size, leaf, proof.proof.map(b64));
      if (!root || !same(root, cp.root)) { mark(badge, "failed", "root"); return; }
      if (cp.signature === "verified") mark(badge, "verified", "size " + cp.size);
      else if (cp.signature === "unsupported") mark(badge, "unsigned");
      else mark(badge, "failed", "signature");
    } catch (e) {
      mark(badge, "error", String(e.message || e));
    }
  }

  async function replay() {
    const steps = Array.from(document.querySelectorAll("#steps > li.step"));
    if (!steps.length) return;
    const stepper = document.getElementById("stepper");
    const count = document.getElementById("step-count");
    let current = Math.max(0, steps.findIndex((s) => "#" + s.id === location.hash));
    const show = (i) => {
      current = Math.min(steps.length - 1, Math.max(0, i));
      steps.forEach((s, j) => { s.hidden = j !== current; });
      count.textContent = (current + 1) + " / " + steps.length;
    };
    stepper.hidden = false;
    document.getElementById("prev").addEventListener("click", () => show(current - 1));
    document.getElementById("next").addEventListener("click", () => show(current + 1));
    stepper.addEventListener("keydown", (e) => {
      if (e.key === "ArrowLeft") show(current - 1);
      if (e.key === "ArrowRight") show(current + 1);
    });
    show(current);
    const state = document.getElementById("checkpoint-state");
    let cp;
    try {
      cp = await checkpoint();
    } catch (e) {
      state.textContent = "检查点无法读取 Checkpoint unavailable: " + (e.message || e);
      steps.forEach((s) => mark(s.querySelector(".badge"), "error"));
      return;
    }
    state.dataset.signature = cp.signature;
    state.textContent = "检查点 Checkpoint " + cp.origin + " · size " + cp.size + " · 签名 signature: "
      + { verified: "Ed25519 已验证 verified", unsupported: "此浏览器不支持 Ed25519 not supported by this browser",
          failed: "无效 INVALID " + cp.why }[cp.signature];
    for (const s of steps) await verifyStep(s, cp);
  }

  function chart() {
    const box = document.getElementById("history-chart");
    if (!box || !window.echarts) return;
    const points = JSON.parse(box.dataset.points);
    if (!points.length) { box.textContent = "暂无变化 No changes yet"; return; }
    const c = window.echarts.init(box, null, { renderer: "canvas" });
    c.setOption({
      animation: false,
      grid: { left: 48, right: 16, top: 24, bottom: 40 },
      tooltip: { trigger: "item", formatter: (p) => "#" + p.data.position + " " + p.data.topic
        + "<br>" + p.data.time + "<br>" + p.data.value[1] },
      xAxis: { type: "value", name: "位置 position", nameLocation: "middle", nameGap: 26,
               minInterval: 1, scale: true },
      yAxis: { type: "value", name: "综合分", scale: true },
      series: [{ type: "line", step: "end", symbolSize: 10,
                 data: points.map((p) => ({ value: [p.position, Number(p.composite)],
                   position: p.position, topic: p.topic, time: p.time })) }],
    });
    c.on("click", (p) => { location.href = box.dataset.replay + "#p" + p.data.position; });
    box.dataset.rendered = String(points.length);
    window.addEventListener("resize", () => c.resize());
  }

  document.addEventListener("DOMContentLoaded", () => { chart(); replay(); });
})();
