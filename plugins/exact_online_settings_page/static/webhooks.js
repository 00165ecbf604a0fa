// The "Exact webhooks" section (#22): per company the topics its categories need, their subscription in Exact, when
// the last event of each arrived, how many in 24 h and how many wait to be relayed; "Subscribe" makes Exact's
// subscriptions match what is needed (webhook_section.py). Requests and words are page.js's (window.exactPage).
"use strict";
(function () {
  const { call, t, detail, language, onLanguageChange } = window.exactPage;
  const $ = (id) => document.getElementById(id);
  const el = (tag, words, cls) => { const e = document.createElement(tag); if (words !== undefined) e.textContent = words; if (cls) e.className = cls; return e; };
  const when = (iso) => iso ? new Date(iso).toLocaleString(language() === "nl" ? "nl-NL" : undefined, { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" }) : "—";
  const STATES = ["subscribed", "missing", "not_needed", "elsewhere", "unknown"];

  function message(words, kind) {
    const m = $("wh-message");
    m.textContent = words || ""; m.className = "conn-message" + (kind ? " " + kind : "");
  }

  function topicsTable(topics) {
    const table = el("table");
    const head = table.createTHead().insertRow();
    const titles = [t("wh_topic"), t("wh_state"), t("wh_streams"), t("wh_last_event"), t("wh_events_24h"), t("wh_waiting")];
    for (const words of titles) head.append(el("th", words));
    const body = table.createTBody();
    for (const tp of topics) {
      const row = body.insertRow();
      const state = STATES.includes(tp.state) ? t(`wh_state_${tp.state}`) : tp.state;
      row.append(el("td", tp.topic), el("td", state, tp.state === "missing" || tp.state === "unknown" ? "bad" : ""),
        el("td", (tp.streams || []).join(", ")), el("td", when(tp.last_event_at)), el("td", String(tp.events_24h || 0)),
        el("td", String(tp.unrelayed || 0)));
    }
    return table;
  }

  function renderCompany(c) {
    const box = el("div", undefined, "wh-company");
    box.dataset.company = c.company;
    box.append(el("h3", t("wh_company", { company: c.title || c.company, division: c.division || "—" })));
    if (c.error) box.append(el("p", t("wh_exact_error", { error: c.error }), "bad"));
    if (c.secret_set === false) box.append(el("p", t("wh_no_secret"), "warn"));
    if (!c.needed.length) box.append(el("p", t("wh_nothing_needed"), "hint"));
    if (c.topics.length) box.append(topicsTable(c.topics));
    const button = el("button", t("wh_subscribe"), "icon-btn");
    button.type = "button";
    button.onclick = () => subscribe(c.company, button);
    box.append(button);
    return box;
  }

  async function load() {
    const r = await call("GET", "/webhooks");
    if (r.status === 403 || r.status === 401) return;   // not for this user (401: page.js shows "log in again")
    $("webhooks").hidden = false;
    if (r.status !== 200) { message(t("wh_unreadable", { status: r.status, why: detail(r.data) }), "bad"); return; }
    $("wh-callback").textContent = r.data.callback_url;
    $("wh-not-https").hidden = r.data.https;
    $("wh-debounce").textContent = t("wh_debounce", { seconds: r.data.debounce_seconds });
    const list = $("wh-companies");
    list.textContent = "";
    for (const c of r.data.companies) list.append(renderCompany(c));
  }

  async function subscribe(company, button) {
    button.disabled = true;
    const r = await call("POST", "/webhooks/subscriptions", { company });
    button.disabled = false;
    if (r.status !== 200) { message(r.status === 401 ? t("conn_login_expired") : detail(r.data), "bad"); return; }
    const list = (xs) => xs.length ? xs.join(", ") : "—";
    await load();
    message(t("wh_subscribed", { added: list(r.data.subscribed), removed: list(r.data.unsubscribed) }), "ok");
  }

  onLanguageChange(() => { if (!$("webhooks").hidden) load(); });
  load();
})();
