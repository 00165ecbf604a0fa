// The "Exact Online connection" section (#20): who is connected to which division and how long the connection
// lives unused; Connect / Reconnect (Exact's consent page in the top window), the division picker after it, the
// pasted address when the redirect cannot reach this Airflow, Disconnect. Only for users who may edit the
// connection: for others GET /api/connection answers 403 and the section stays hidden.
// Its requests and words are page.js's (window.exactPage): the same `call` (the page's language to the server, an
// expired login shown with "log in again"), the words of labels.py in the language chosen in Airflow's UI.
"use strict";
(function () {
  const { call, t, detail: detailOf, language, onLanguageChange, openTop } = window.exactPage;
  const $ = (id) => document.getElementById(id);
  const text = (id, words) => { $(id).textContent = words || ""; };
  const detail = (d) => detailOf(d) || t("conn_no_reason");
  const when = (iso) => iso ? new Date(iso).toLocaleString(language() === "nl" ? "nl-NL" : undefined, { day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit" }) : "—";

  function message(words, kind) {
    const m = $("conn-message");
    m.textContent = words || ""; m.className = "conn-message" + (kind ? " " + kind : "");
  }
  // A refused action, said here; an expired login (401) is also page.js's banner, with the "log in again" link.
  const refused = (r) => message(r.status === 401 ? t("conn_login_expired") : detail(r.data), "bad");

  function renderStatus(s) {
    const st = $("conn-status");
    st.textContent = "";
    if (!s.connected) {
      st.append(s.problem ? t("conn_not_connected_problem", { problem: s.problem }) : t("conn_not_connected"));
    } else {
      const who = s.connected_as ? `${s.connected_as.full_name} (${s.connected_as.user_name})` : t("conn_unknown_user");
      const p = (words) => { const e = document.createElement("p"); e.textContent = words; st.append(e); return e; };
      p(t("conn_connected_as", { who, division: s.division }) + (s.division_description ? " — " + s.division_description : "")
        + (s.connected_at ? t("conn_since", { when: when(s.connected_at) }) : "."));
      p(t("conn_token_life", { used: when(s.refresh_token_last_used), expires: when(s.refresh_token_expires), days: Math.max(0, Math.floor(s.days_left)) }));
      if (s.warning) p(s.warning).className = "warn";
    }
    if (s.last_refusal) {
      const e = document.createElement("p");
      e.className = "bad"; e.id = "conn-refusal";
      // the error is the import's own (the hook's words), behind the lead-in
      e.textContent = t("conn_stopped", { category: s.last_refusal.category, when: when(s.last_refusal.at), error: s.last_refusal.error });
      st.append(e);
    }
    $("connect").textContent = s.connected ? t("conn_reconnect") : t("conn_connect");
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
    if (r.status === 403 || r.status === 401) return;   // not for this user (401: page.js shows "log in again")
    $("connection").hidden = false;
    if (r.status !== 200) { message(t("conn_unreadable", { status: r.status, why: detail(r.data) }), "bad"); return; }
    renderStatus(r.data);
    renderAttempt(r.data.attempt);
  }

  async function connect() {
    $("connect").disabled = true;
    const r = await call("POST", "/connect", {});
    if (r.status !== 200) { $("connect").disabled = false; refused(r); return; }
    message(t("conn_opening"), "ok");
    openTop(r.data.authorize_url);
  }

  async function paste() {
    const address = $("paste-address").value;
    const r = await call("POST", "/connect/paste", { address });
    if (r.status !== 200) { refused(r); return; }
    $("paste-address").value = "";
    await load();
  }

  async function pick() {
    const r = await call("POST", "/connect/division", { division: parseInt($("division").value, 10) });
    if (r.status !== 200) { refused(r); return; }
    await load();
    message(r.data.message, "ok");
  }

  async function disconnect() {
    $("disconnect-confirm").hidden = true;
    const r = await call("POST", "/disconnect", { confirm: true });
    if (r.status !== 200) { refused(r); return; }
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
  // The status and the attempt's message are the server's words: asked again in the new language.
  onLanguageChange(() => { if (!$("connection").hidden) load(); });
  load();
})();
