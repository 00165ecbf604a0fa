// Several companies on one page (#21): the company selector (page.js then shows that company's settings, runs and
// imports), pausing, resuming and removing a company, and "Add a company": its title and key, its Exact division
// (through the consent of an existing Exact connection, or a new consent on a connection of its own), its OutSmart
// database (an existing Postgres connection, or a new database on the server of outsmart_postgres) and its first
// choices. With one company and no right to add one, nothing of this shows: the page is as it was.
"use strict";
(function () {
  const P = () => window.exactPage;
  const $ = (id) => document.getElementById(id);
  const DRAFT = "exactOnlineNewCompany";   // the form, kept while the window is at Exact's consent page
  let info = null;        // /api/companies
  let current = null;     // the key shown (null: the one company)
  let pageState = null;   // page.js's state of the company shown
  let keyEdited = false;  // the key follows the title until the user types one

  const t = (k, v) => P().t(k, v);
  const el = (...a) => P().el(...a);
  const detail = (d) => d && d.detail ? (typeof d.detail === "string" ? d.detail : (d.detail.message || JSON.stringify(d.detail))) : "";
  function message(id, text, kind) { const m = $(id); if (m) { m.textContent = text || ""; m.className = (m.dataset.base || "") + (kind ? " " + kind : ""); } }

  let listening = false;
  function render(list, key, state) {
    info = list; current = key; pageState = state;
    if (!listening) { listening = true; P().onLanguageChange(() => drawBar()); }
    drawBar();
    const draft = readDraft();
    if (draft && info && info.can_add) openForm(draft);
  }
  window.ExactCompanies = { render };

  // ---- the selector ------------------------------------------------------------------------------------------------
  function place(c) {
    const division = c.division ? t("company_division", { division: String(c.division) }) : t("company_division_of_connection");
    return t("company_place", { conn: c.exact_conn_id, division, target: c.target_conn_id });
  }

  function drawBar() {
    const box = $("companies");
    box.textContent = "";
    if (!info) return;
    const several = info.companies.length > 1;
    if (!several && !info.can_add) return;
    const bar = el("div", { class: several ? "card company-bar" : "company-bar single", id: "company-bar" });
    if (several) {
      const me = info.companies.find(c => c.key === current) || info.companies[0];
      const sel = el("select", { id: "company" });
      for (const c of info.companies) sel.append(el("option", { value: c.key, text: c.title + (c.paused ? ` (${t("company_paused")})` : "") }));
      sel.value = me.key;
      sel.onchange = () => P().select(sel.value);
      bar.append(el("label", { class: "label", for: "company", text: t("company") }), sel);
      if (me.paused) bar.append(el("span", { class: "badge paused", id: "company-paused", text: t("company_paused") }));
      bar.append(el("span", { class: "hint grow", id: "company-place", text: place(me) }));
      if (info.can_edit) {
        bar.append(el("button", { type: "button", class: "icon-btn", id: "company-pause", text: me.paused ? t("company_resume") : t("company_pause"), onclick: () => pause(!me.paused) }));
        if (me.key !== "default") bar.append(el("button", { type: "button", class: "icon-btn danger", id: "company-remove", text: t("company_remove"), onclick: () => confirmRemove(me) }));
      }
    }
    if (info.can_add) bar.append(el("button", { type: "button", class: "icon-btn", id: "company-add", text: t("company_add"), onclick: () => openForm(null) }));
    box.append(bar,
      el("div", { class: "confirm", id: "company-remove-confirm", role: "alertdialog", hidden: true }),
      el("div", { class: "company-msg", "data-base": "company-msg", id: "company-msg", role: "status" }),
      el("section", { class: "card company-form", id: "company-form", hidden: true }));
  }

  async function pause(paused) {
    const r = await P().call("POST", `/companies/${encodeURIComponent(current)}/pause`, { paused, version: pageState.version });
    if (r.status !== 200) { message("company-msg", t("company_not_changed", { status: r.status, why: detail(r.data) }), "bad"); return; }
    await P().reload();
    message("company-msg", paused ? t("company_paused_now") : t("company_resumed_now"), "ok");
  }

  function confirmRemove(me) {
    const box = $("company-remove-confirm");
    box.textContent = ""; box.hidden = false;
    box.append(t("company_remove_confirm", { title: me.title, target: me.target_conn_id, conn: me.exact_conn_id }) + " ",
      el("button", { type: "button", class: "icon-btn danger", id: "company-remove-yes", text: t("company_remove"), onclick: () => remove(me) }), " ",
      el("button", { type: "button", class: "icon-btn", id: "company-remove-no", text: t("cancel"), onclick: () => { box.hidden = true; } }));
  }

  async function remove(me) {
    $("company-remove-confirm").hidden = true;
    const r = await P().call("DELETE", `/companies/${encodeURIComponent(me.key)}`, { confirm: true, version: pageState.version });
    if (r.status !== 200) { message("company-msg", t("company_not_changed", { status: r.status, why: detail(r.data) }), "bad"); return; }
    await P().select("default");
    message("company-msg", t("company_removed", { title: me.title, target: me.target_conn_id }), "ok");
  }

  // ---- "Add a company" ---------------------------------------------------------------------------------------------
  const slug = (s) => s.toLowerCase().normalize("NFD").replace(/[\u0300-\u036f]/g, "").replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 40);

  function field(path, label, ...inner) {
    return el("div", { class: "field", "data-co": path },
      el("span", { class: "label", text: label }), ...inner, el("div", { class: "error", role: "alert" }));
  }
  const radio = (name, value, id, label, checked) => el("label", { class: "inline" },
    el("input", { type: "radio", name, value, id, checked: !!checked }), " ", label);

  function openForm(draft) {
    const f = $("company-form");
    if (!f) return;
    keyEdited = !!(draft && draft.key);
    f.textContent = "";
    f.hidden = false;
    const sel = (id) => el("select", { id });
    const title = el("input", { type: "text", id: "co-title", maxlength: 100, autocomplete: "off" });
    const key = el("input", { type: "text", id: "co-key", maxlength: 40, autocomplete: "off", spellcheck: "false" });
    title.oninput = () => { if (!keyEdited) { key.value = slug(title.value); keyChanged(); } };
    key.oninput = () => { keyEdited = true; keyChanged(); };
    const copyFrom = (info.companies.find(c => c.key === (current || "default")) || {}).title || "";
    f.append(
      el("h2", { text: t("company_add_title") }),
      el("div", { class: "row" },
        field("title", t("company_title"), title),
        field("key", t("company_key"), key, el("div", { class: "hint", text: t("company_key_hint") }))),
      el("div", { class: "row" },
        field("exact_conn_id", t("company_exact"),
          el("div", {}, radio("co-exact", "reuse", "co-exact-reuse", t("company_exact_reuse"), true), " ", sel("co-conn")),
          el("div", {}, radio("co-exact", "new", "co-exact-new", t("company_exact_new")), " ",
            el("button", { type: "button", class: "icon-btn", id: "co-connect", text: t("company_connect"), onclick: connectNew })),
          el("div", { class: "hint", id: "co-exact-hint" })),
        field("division", t("company_division_pick"), sel("co-division"), el("div", { class: "hint", id: "co-division-hint" }))),
      el("div", { class: "row" },
        field("target_conn_id", t("company_target"),
          el("div", {}, radio("co-target", "new", "co-target-new", t("company_target_new"), true), " ", el("code", { id: "co-target-name" })),
          el("div", {}, radio("co-target", "pick", "co-target-pick", t("company_target_pick")), " ", sel("co-target"))),
        field("license", t("licence"),
          el("div", {}, radio("co-license", "standard", "co-license-standard", t("standard"), true), radio("co-license", "pro", "co-license-pro", t("pro"))),
          el("label", { class: "inline" }, el("input", { type: "checkbox", id: "co-copy", checked: true }), " ", t("company_copy", { title: copyFrom })))),
      el("div", { class: "inline-group" },
        el("button", { type: "button", class: "primary", id: "co-save", text: t("company_add_save"), onclick: add }),
        el("button", { type: "button", class: "icon-btn", id: "co-cancel", text: t("cancel"), onclick: closeForm }),
        el("span", { class: "co-message", "data-base": "co-message", id: "co-message", role: "status" })));
    $("co-conn").onchange = loadDivisions;
    if (draft) restore(draft);
    keyChanged();
    loadConnections(draft);
    loadTargets(draft);
    f.scrollIntoView({ block: "start" });
  }

  function keyChanged() {
    $("co-target-name").textContent = `outsmart_${$("co-key").value || "…"}`;
  }

  function closeForm() {
    clearDraft();
    const f = $("company-form");
    f.hidden = true; f.textContent = "";
  }

  const choice = (name) => (document.querySelector(`input[name="${name}"]:checked`) || {}).value;

  function readForm() {
    return {
      title: $("co-title").value.trim(), key: $("co-key").value.trim(), exact: choice("co-exact"), conn: $("co-conn").value,
      division: $("co-division").value, target: choice("co-target"), target_conn: $("co-target").value,
      license: choice("co-license"), copy: $("co-copy").checked,
    };
  }
  function restore(d) {
    $("co-title").value = d.title || ""; $("co-key").value = d.key || "";
    for (const [name, v] of [["co-exact", d.exact], ["co-target", d.target], ["co-license", d.license]]) {
      const r = document.querySelector(`input[name="${name}"][value="${v}"]`); if (r) r.checked = true;
    }
    $("co-copy").checked = d.copy !== false;
  }
  function readDraft() { try { return JSON.parse(window.sessionStorage.getItem(DRAFT) || "null"); } catch (e) { return null; } }
  function saveDraft() { try { window.sessionStorage.setItem(DRAFT, JSON.stringify(readForm())); } catch (e) { /* not kept */ } }
  function clearDraft() { try { window.sessionStorage.removeItem(DRAFT); } catch (e) { /* nothing kept */ } }

  function fill(select, options, value) {
    select.textContent = "";
    for (const o of options) select.append(el("option", { value: o.value, text: o.text, disabled: !!o.disabled }));
    const free = options.find(o => !o.disabled && (value === undefined || o.value === value)) || options.find(o => !o.disabled);
    if (free) select.value = free.value;
  }

  async function loadConnections(draft) {
    const r = await P().call("GET", "/exact-connections");
    if (r.status !== 200) { fieldError("exact_conn_id", detail(r.data)); return; }
    const mine = draft && draft.key ? `exact_online_${draft.key}` : null;
    fill($("co-conn"), r.data.connections.map(c => ({
      value: c.conn_id,
      text: c.conn_id + (c.division ? ` — ${c.division_description || c.division}` : "") + (c.connected_as ? ` (${c.connected_as.full_name})` : ""),
    })), draft && draft.conn);
    const a = r.data.attempt;
    if (a && mine && a.conn_id === mine) {   // back from Exact's consent page for this company's own connection
      message("co-message", a.message, a.outcome === "connected" ? "ok" : "bad");
      if (a.outcome === "connected") { $("co-exact-reuse").checked = true; $("co-conn").value = mine; }
    }
    loadDivisions();
  }

  async function loadDivisions() {
    const conn = $("co-conn").value, sel = $("co-division");
    sel.textContent = ""; fieldError("division", ""); $("co-division-hint").textContent = conn ? t("company_divisions_loading") : "";
    if (!conn) return;
    const r = await P().call("GET", `/exact-connections/${encodeURIComponent(conn)}/divisions`);
    $("co-division-hint").textContent = "";
    if (r.status !== 200) { fieldError("division", detail(r.data)); return; }
    fill(sel, r.data.divisions.map(d => ({
      value: String(d.code),
      text: `${d.code} — ${d.description}` + (d.company ? ` (${t("company_imported_by", { key: d.company })})` : ""),
      disabled: !!d.company,
    })));
    if (r.data.truncated) $("co-division-hint").textContent = t("company_divisions_cut", { limit: String(r.data.limit) });
  }

  async function loadTargets(draft) {
    const r = await P().call("GET", "/targets");
    if (r.status !== 200) { fieldError("target_conn_id", detail(r.data)); return; }
    fill($("co-target"), r.data.connections.map(c => ({
      value: c.conn_id,
      text: `${c.conn_id} (${c.database || "?"})` + (c.company ? ` — ${t("company_imported_by", { key: c.company })}` : ""),
      disabled: !!c.company,
    })), draft && draft.target_conn);
  }

  function fieldError(path, text) {
    const f = document.querySelector(`#company-form .field[data-co="${path}"]`);
    if (!f) return false;
    f.classList.toggle("invalid", !!text);
    f.querySelector(".error").textContent = text || "";
    return true;
  }
  function showErrors(errors) {
    for (const f of document.querySelectorAll("#company-form .field")) { f.classList.remove("invalid"); f.querySelector(".error").textContent = ""; }
    const rest = [];
    for (const e of errors || []) {
      const path = e.path.startsWith("categories") || e.path === "schedule" ? "license" : e.path;
      if (!fieldError(path, e.message)) rest.push(`${e.path}: ${e.message}`);
    }
    return rest;
  }

  async function connectNew() {
    $("co-exact-new").checked = true;
    const form = readForm();
    const r = await P().call("POST", "/exact-connections", { key: form.key });
    if (r.status !== 200) { fieldError(r.status === 422 ? "key" : "exact_conn_id", detail(r.data)); return; }
    saveDraft();
    message("co-message", t("company_opening_exact"), "ok");
    P().openTop(r.data.authorize_url);
  }

  async function target(form) {
    if (form.target === "pick") return form.target_conn;
    const r = await P().call("POST", "/targets", { key: form.key });
    if (r.status === 201) { message("co-message", r.data.message, "ok"); return r.data.conn_id; }
    // made by an earlier try of this form (its database stays): take it, unless another company imports into it
    const again = await P().call("GET", "/targets");
    const mine = again.status === 200 && again.data.connections.find(c => c.conn_id === `outsmart_${form.key}` && !c.company);
    if (r.status === 409 && mine) return mine.conn_id;
    fieldError(r.status === 422 ? "key" : "target_conn_id", detail(r.data));
    return null;
  }

  async function add() {
    const form = readForm();
    showErrors([]);
    if (form.exact === "new") { fieldError("exact_conn_id", t("company_connect_first")); return; }
    $("co-save").disabled = true;
    try {
      const targetConn = await target(form);
      if (!targetConn) return;
      const from = pageState.settings;
      const settings = form.copy ? { license: form.license, schedule: from.schedule, categories: from.categories } : { license: form.license };
      const body = { key: form.key, title: form.title, exact_conn_id: form.conn, division: parseInt(form.division, 10) || null, target_conn_id: targetConn, settings };
      const r = await P().call("POST", "/companies", body);
      if (r.status === 201) {
        closeForm();
        await P().select(form.key);
        message("company-msg", t("company_added", { title: form.title }), "ok");
        return;
      }
      const rest = r.data && r.data.detail && r.data.detail.errors ? showErrors(r.data.detail.errors) : [];
      message("co-message", (r.status === 422 ? (r.data.detail.message || "") : t("company_not_changed", { status: r.status, why: detail(r.data) })) + (rest.length ? " " + rest.join("; ") : ""), "bad");
    } finally { $("co-save").disabled = false; }
  }
})();
