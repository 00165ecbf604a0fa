// The "Exact Online connection" section (#20): who is connected to which division and how long the connection
// lives unused; Connect / Reconnect (Exact's consent page in the top window), the division picker after it, the
// pasted address when the redirect cannot reach this Airflow, Disconnect. Only for users who may edit the
// connection: for others GET /api/connection answers 403 and the section stays hidden.
"use strict";
(function () {
  const API = document.body.dataset.base + "/api";
  const $ = (id) => document.getElementById(id);
  const text = (id, t) => { $(id).textContent = t || ""; };

  async function call(method, path, body) {
    const opts = { method, credentials: "same-origin", headers: { "Accept": "application/json" } };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.headers["X-Exact-Online-Page"] = "1";   // see app.py: proves the request comes from this page
      opts.body = JSON.stringify(body);
    }
    const r = await fetch(API + path, opts);
    let data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    return { status: r.status, data };
  }
  const detail = (d) => (d && typeof d.detail === "string") ? d.detail : "the server gave no reason";
  const when = (iso) => iso ? new Date(iso).toLocaleString(undefined, { day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit" }) : "—";

  function message(t, kind) {
    const m = $("conn-message");
    m.textContent = t || ""; m.className = "conn-message" + (kind ? " " + kind : "");
  }

  // Exact's consent page refuses to be framed, and the UI's iframe sandbox does not allow this frame to navigate the
  // top window. The frame is same-origin with the UI (allow-same-origin), so a link made in the top document and
  // clicked there navigates the top window as the UI itself would.
  function openTop(url) {
    try {
      const doc = window.top.document;
      const a = doc.createElement("a");
      a.href = url; a.target = "_top"; a.rel = "noreferrer";
      doc.body.append(a); a.click(); a.remove();
    } catch (e) {
      window.location.href = url;   // not framed (the page opened on its own): this window is the top
    }
  }

  function renderStatus(s) {
    const st = $("conn-status");
    st.textContent = "";
    if (!s.connected) {
      st.append("Not connected" + (s.problem ? `: ${s.problem}` : ". The imports cannot read Exact Online until a company is connected."));
    } else {
      const who = s.connected_as ? `${s.connected_as.full_name} (${s.connected_as.user_name})` : "an unknown user (connected before this page recorded it)";
      const p = (t) => { const e = document.createElement("p"); e.textContent = t; st.append(e); return e; };
      p(`Connected as ${who} to division ${s.division}${s.division_description ? " — " + s.division_description : ""}` + (s.connected_at ? `, since ${when(s.connected_at)}.` : "."));
      p(`Refresh token last used ${when(s.refresh_token_last_used)}; it expires ${when(s.refresh_token_expires)} if no import uses it before then (${Math.max(0, Math.floor(s.days_left))} days).`);
      if (s.warning) p(s.warning).className = "warn";
    }
    if (s.last_refusal) {
      const e = document.createElement("p");
      e.className = "bad"; e.id = "conn-refusal";
      e.textContent = `The imports stopped (${s.last_refusal.category}, ${when(s.last_refusal.at)}): ${s.last_refusal.error}`;
      st.append(e);
    }
    $("connect").textContent = s.connected ? "Reconnect" : "Connect to Exact Online";
    $("disconnect").hidden = !s.connected;
    text("redirect-uri", s.redirect_uri);
  }

  function renderAttempt(a) {
    const box = $("conn-picker");
    box.hidden = !(a && a.outcome === "picking");
    if (!a) return;
    if (a.outcome === "picking") {
      const sel = $("division");
      sel.textContent = "";
      for (const d of a.divisions || []) {
        const o = document.createElement("option");
        o.value = String(d.code); o.textContent = `${d.code} — ${d.description}`;
        sel.append(o);
      }
      text("picker-who", a.connected_user ? `${a.connected_user.full_name} (${a.connected_user.user_name})` : "");
    }
    message(a.message, a.outcome === "denied" || a.outcome === "failed" ? "bad" : "ok");
  }

  async function load() {
    const r = await call("GET", "/connection");
    if (r.status === 403 || r.status === 401) return;   // not for this user
    $("connection").hidden = false;
    if (r.status !== 200) { message(`The connection could not be read (${r.status}): ${detail(r.data)}`, "bad"); return; }
    renderStatus(r.data);
    renderAttempt(r.data.attempt);
  }

  async function connect() {
    $("connect").disabled = true;
    const r = await call("POST", "/connect", {});
    if (r.status !== 200) { $("connect").disabled = false; message(detail(r.data), "bad"); return; }
    message("Opening Exact Online's login page…", "ok");
    openTop(r.data.authorize_url);
  }

  async function paste() {
    const address = $("paste-address").value;
    const r = await call("POST", "/connect/paste", { address });
    if (r.status !== 200) { message(detail(r.data), "bad"); return; }
    $("paste-address").value = "";
    await load();
  }

  async function pick() {
    const r = await call("POST", "/connect/division", { division: parseInt($("division").value, 10) });
    if (r.status !== 200) { message(detail(r.data), "bad"); return; }
    await load();
    message(r.data.message, "ok");
  }

  async function disconnect() {
    $("disconnect-confirm").hidden = true;
    const r = await call("POST", "/disconnect", { confirm: true });
    if (r.status !== 200) { message(detail(r.data), "bad"); return; }
    await load();
    message(r.data.message, "ok");
  }

  $("connect").onclick = connect;
  $("paste-send").onclick = paste;
  $("pick").onclick = pick;
  // Asked in the page: Airflow's iframe sandbox does not allow window.confirm().
  $("disconnect").onclick = () => { $("disconnect-confirm").hidden = false; };
  $("disconnect-yes").onclick = disconnect;
  $("disconnect-no").onclick = () => { $("disconnect-confirm").hidden = true; };
  load();
})();
