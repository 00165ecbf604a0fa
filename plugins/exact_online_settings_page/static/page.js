// The Exact Online imports page: plain JavaScript, no build step. It draws the categories the registry has
// (/api/categories: titles, switches, filter widgets; no category name is written here), fills them from /api/state,
// lets the user edit the settings, saves them with the version it loaded (409 if someone saved in between) and
// starts imports. In English or Dutch (labels.py; the language chosen in Airflow's UI), inside Airflow's sandboxed
// iframe (links to Airflow's pages: airflowLink). connection.js (the Exact Online connection section) uses this
// script's `call` and words through window.exactPage.
"use strict";
(function () {
  const BASE = document.body.dataset.base;
  const API = BASE + "/api";
  const $ = (sel, root) => (root || document).querySelector(sel);
  const el = (tag, attrs, ...children) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v; else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c.nodeType ? c : document.createTextNode(c));
    return e;
  };

  // ---- language ---------------------------------------------------------------------------------------------------
  // The page speaks the language the user chose in Airflow's UI: Airflow 3's React UI (i18next) keeps that choice in
  // localStorage under "i18nextLng", and this page is on the same origin (its iframe has allow-same-origin), so it
  // reads the same key; never chosen: the browser's language. Dutch when it is Dutch, English otherwise. The words
  // are labels.py's, in the page as <script id="labels">; category and filter names come from the registry.
  const LABELS = JSON.parse(document.getElementById("labels").textContent);
  const LANGUAGE_KEY = "i18nextLng";
  function pageLanguage() {
    let chosen = null;
    try { chosen = window.localStorage.getItem(LANGUAGE_KEY); } catch (e) { chosen = null; }
    return (chosen || navigator.language || "en").toLowerCase().startsWith("nl") ? "nl" : "en";
  }
  let LANG = pageLanguage();
  const isDutch = () => LANG === "nl";
  function t(key, vars) {
    let text = (LABELS[LANG] && LABELS[LANG][key]) ?? LABELS.en[key] ?? key;
    for (const [k, v] of Object.entries(vars || {})) text = text.replaceAll(`{${k}}`, v);
    return text;
  }
  // A run state or count by its name ("state_" / "count_" + name in labels.py); one labels.py lacks, as it is.
  const labelOf = (prefix, name) => (LABELS[LANG] && LABELS[LANG][prefix + name]) ?? name.replaceAll("_", " ");
  function applyLabels() {
    document.documentElement.lang = LANG;
    document.title = t("title");
    for (const e of document.querySelectorAll("[data-t]")) e.textContent = t(e.dataset.t);
    for (const e of document.querySelectorAll("[data-t-placeholder]")) e.placeholder = t(e.dataset.tPlaceholder);
    // a label with `…` in it: those parts as code
    for (const e of document.querySelectorAll("[data-tc]")) {
      e.textContent = "";
      t(e.dataset.tc).split("`").forEach((part, i) => e.append(i % 2 ? el("code", { text: part }) : part));
    }
    // the Dutch name the office knows from Exact, added in brackets to the English
    for (const e of document.querySelectorAll("[data-only-en]")) e.hidden = isDutch();
  }
  // The category's name in the page's language (in English the Dutch name the office knows from Exact is added).
  const catTitle = (c) => isDutch() ? c.dutch : c.title;
  const filterLabel = (f) => isDutch() ? (f.dutch_label || f.label) : f.label;
  const choiceLabel = (o) => isDutch() ? (o.dutch_label || o.label) : o.label;
  // Switching the language in Airflow's UI writes the key: the page follows without a reload. What the server said
  // (the stored settings' problems) is asked again in the new language; what connection.js shows, too.
  const languageListeners = [];
  window.addEventListener("storage", async (ev) => {
    if (ev.key !== LANGUAGE_KEY || pageLanguage() === LANG) return;
    LANG = pageLanguage(); applyLabels();
    for (const listener of languageListeners) listener();
    if (!state) return;
    renderAll(); renderPicker();
    const r = await call("GET", "/state");
    if (r.status === 200) { state.stored = r.data.stored; state.imports = r.data.imports; renderAll(); }
  });

  // ---- links out of Airflow's frame -------------------------------------------------------------------------------
  // Airflow 3.3 shows this page in <iframe sandbox="allow-scripts allow-same-origin allow-forms allow-downloads">:
  // without allow-top-navigation and allow-popups the browser refuses target="_top", target="_blank", window.open
  // and top.location from in here. allow-same-origin gives this page the Airflow UI's document, though, and a link
  // clicked there is the Airflow UI navigating itself (or opening a tab), which the sandbox does not restrict.
  function airflowDocument() {
    try { return window.top !== window ? window.top.document : null; } catch (e) { return null; }
  }
  function openInAirflow(href, newTab) {
    const host = airflowDocument();
    const a = host.createElement("a");
    a.href = new URL(href, location.href).href;
    if (newTab) { a.target = "_blank"; a.rel = "noopener"; }
    host.body.append(a); a.click(); a.remove();
  }
  // A link to a page of Airflow (the DAG grid, a task log, the login page). Opened directly (no frame) it is a plain
  // link; in the frame a click goes through the Airflow UI's document; Ctrl/⌘/Shift-click opens a new tab.
  function airflowLink(href, text, attrs) {
    const onclick = (ev) => {
      if (ev.button !== 0 || !airflowDocument()) return;
      ev.preventDefault();
      openInAirflow(href, ev.ctrlKey || ev.metaKey || ev.shiftKey);
    };
    return el("a", { ...(attrs || {}), href, target: "_top", onclick, text });
  }

  // The UI's login expired (401): inside the frame the server cannot redirect to the login page (it would land in
  // the frame, and the frame may not move the window), so the page says so with a link that does.
  let loginGone = false;
  function loginExpired(data) {
    loginGone = true;
    clearTimeout(pollTimer);
    const url = (data && data.login_url) || (state && state.ui_base) || "/";
    banner(t("login_expired"), true, " ", airflowLink(url, t("log_in_again"), { id: "log-in-again" }), ".");
  }

  let catalog = null;      // /api/categories: {categories: [{name, title, pro, filters: [...]}, ...], counts: [...]}
  let state = null;        // the last /api/state
  let form = null;         // the settings being edited (a deep copy of state.settings)
  let groups = null;       // item groups {groups, source, message}
  let pollTimer = null;
  let replacing = false;   // the user ticked "Replace the stored settings" (only offered when the page cannot read them)
  const starting = {};     // category -> true while a sync request is on its way

  // ---- companies (#21; companies.js draws the selector and "Add a company") ----------------------------------------
  // With one company the page is as before, on /api/state and /api/settings. With several, it shows the company
  // chosen in the selector: its state, Save, status, item groups and sync are that company's (/api/companies/<key>/…;
  // a Save sends only its block, so it never overwrites another company's).
  let company = null;      // null: the one company; else the key of the company shown
  const COMPANY_STORE = "exactOnlineCompany";   // the company last chosen, for this browser tab
  const at = (path) => company ? `/companies/${encodeURIComponent(company)}${path}` : path;
  let companies = null;    // the last /api/companies
  function chooseCompany(list) {
    if (!list || !list.valid || list.companies.length < 2) return null;
    let kept = null;
    try { kept = window.sessionStorage.getItem(COMPANY_STORE); } catch (e) { kept = null; }
    return list.companies.some(c => c.key === kept) ? kept : list.companies[0].key;
  }

  // Every request of the page (connection.js's too: window.exactPage). The server says what it says in the page's
  // language: Accept-Language, HTTP's own header for it (why not one of ours: app.py's module doc). A 401 (the UI's
  // login expired) shows the "log in again" banner, wherever on the page the request came from.
  async function call(method, path, body) {
    const opts = { method, credentials: "same-origin", headers: { "Accept": "application/json", "Accept-Language": LANG } };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.headers["X-Exact-Online-Page"] = "1";   // see app.py: proves the request comes from this page
      opts.body = JSON.stringify(body);
    }
    let r;
    try { r = await fetch(API + path, opts); } catch (e) { return { status: 0, data: { detail: t("no_answer", { why: String(e) }) } }; }
    let data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    if (r.status === 401) loginExpired(data);
    return { status: r.status, data };
  }
  const detail = (d) => d && d.detail ? (typeof d.detail === "string" ? d.detail : (d.detail.message || JSON.stringify(d.detail))) : "";

  function fmt(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    return d.toLocaleString(isDutch() ? "nl-NL" : undefined, { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
  }
  const tzName = Intl.DateTimeFormat().resolvedOptions().timeZone;

  // ---- load -------------------------------------------------------------------------------------------------------
  async function load() {
    const [cat, first, listed] = await Promise.all([call("GET", "/categories"), call("GET", "/state"), call("GET", "/companies")]);
    companies = listed.status === 200 ? listed.data : null;
    company = chooseCompany(companies);
    const r = company ? await call("GET", at("/state")) : first;
    if (loginGone) return;   // loginExpired said so, with the link
    if (cat.status !== 200) { banner(t("load_failed", { status: cat.status, why: detail(cat.data) }), true); return; }
    if (r.status !== 200) { banner(t("load_failed", { status: r.status, why: detail(r.data) }), true); return; }
    state = r.data;
    // What this user may do with each category (and its DAG's grid) joins the registry's description of it.
    const access = Object.fromEntries(state.categories.map(c => [c.name, c]));
    catalog = cat.data;
    state.categories = catalog.categories.map(c => ({ ...c, ...(access[c.name] || { can_trigger: false }) }));
    form = JSON.parse(JSON.stringify(state.settings));
    picker = { ...state.schedule_picker };
    renderAll();
    renderPicker();
    $("#main").setAttribute("aria-busy", "false");
    loadGroups();
    schedulePoll();
    if (window.ExactCompanies) window.ExactCompanies.render(companies, company, state);
  }

  async function loadGroups() {
    const r = await call("GET", at("/item-groups"));
    groups = r.status === 200 ? r.data : { groups: [], message: detail(r.data) };
    renderAllGroups();
  }

  function banner(text, bad, ...more) {
    const b = $("#banner");
    b.hidden = !text; b.className = "banner" + (bad ? " bad" : ""); b.textContent = "";
    if (!text) return;
    b.append(text, ...more);
    if (bad === "reload") b.append(" ", el("button", { type: "button", class: "icon-btn", id: "reload", onclick: () => location.reload(), text: t("reload") }));
  }

  // ---- render -----------------------------------------------------------------------------------------------------
  // Read-only: a user who may not edit, and anyone while the stored settings cannot be read and "replace" is not
  // ticked (a Save then loses what the Variable holds, so it must be chosen, not happen).
  const readOnly = () => !state.user.can_edit || (state.stored.replace_required && !replacing);

  function storedWarning() {
    const st = state.stored;
    if (st.status === "invalid") return t("stored_invalid");
    if (st.status === "unreadable") return t("stored_unreadable", { error: st.error }) + (state.user.can_edit ? t("stored_replace_hint") : "");
    if (st.status === "absent") return t("stored_absent");
    return null;
  }

  function renderAll() {
    if (loginGone) return;   // keep the "log in again" banner
    const ro = readOnly();
    $("#who").textContent = "";
    $("#who").append(t("logged_in_as", { name: state.user.name }) + " ", !state.user.can_edit ? el("span", { class: "badge ro", id: "read-only", text: t("read_only") }) : el("span", { class: "badge", text: t("may_edit") }));
    const warnings = [storedWarning()].filter(Boolean);
    if (state.shadowed_by_environment) warnings.push(t("shadowed"));
    if (!state.imports.available) warnings.push(state.imports.message);

    for (const v of ["standard", "pro"]) { const r = $("#license-" + v); r.checked = form.license === v; r.disabled = ro; r.onchange = () => { form.license = v; renderCategories(); }; }
    const tz = $("#timezone");
    tz.value = form.timezone; tz.disabled = ro;
    tz.oninput = () => { form.timezone = tz.value; previewSoon(); };
    showPreview(state.schedule_preview);
    $("#save").hidden = !state.user.can_edit; $("#save").disabled = ro; $("#save").onclick = save;
    const rb = $("#replace-box"), rc = $("#replace");
    rb.hidden = !(state.user.can_edit && state.stored.replace_required);
    rc.checked = replacing; rc.onchange = () => { replacing = rc.checked; renderAll(); renderPicker(); };
    renderCategories();
    // The stored problems at their fields; those without a field (an unknown key, a switch) in the banner.
    clearErrors();
    const unplaced = showErrors(state.stored.problems || []);
    if (unplaced.length) warnings.push(t("problems", { list: unplaced.join("; ") }));
    banner(warnings.join(" "), state.stored.status === "invalid" || state.stored.status === "unreadable");
  }

  let previewTimer = null;
  function previewSoon() {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(async () => {
      const q = new URLSearchParams({ schedule: form.schedule || "", timezone: form.timezone || "" });
      const r = await call("GET", "/schedule-preview?" + q);
      if (r.status === 200) showPreview(r.data);
    }, 350);
  }
  function showPreview(p) {
    const n = $("#schedule-next");
    if (p.errors && p.errors.length) { n.textContent = t("schedule_invalid", { why: p.errors.map(e => e.key ? t(e.key) : e.message).join("; ") }); return; }
    if (!form.schedule) { n.textContent = t("manual_only"); return; }
    if (!p.next.length) { n.textContent = t("no_runs"); return; }
    n.textContent = t("next_runs", { tz: tzName, runs: p.next.map(fmt).join(", ") });
  }

  // ---- the schedule picker ----------------------------------------------------------------------------------------
  // Office words (every N minutes/hours between two hours, daily at a time, only by hand) or the cron itself
  // ("advanced"). The conversion both ways is schedule_picker.py's: the page sends the picker to
  // /api/schedule-picker and stores the cron it answers in form.schedule; the stored cron comes back as
  // state.schedule_picker ("advanced" when it is none of the picker's forms).
  let picker = null;            // {mode, every, unit, start, end, at, weekdays_only, cron}
  let schedulePending = null;   // the conversion on its way (Save waits for it)
  let pickerAsked = 0;          // how many conversions were asked for (answers can come back out of order)
  const hh = (h) => String(h).padStart(2, "0") + ":00";

  function fillSelect(sel, options, value) {
    sel.textContent = "";
    for (const [v, text] of options) sel.append(el("option", { value: v, text }));
    sel.value = String(value);
  }

  function renderPicker() {
    const ro = readOnly(), ch = state.schedule_choices;
    const steps = [...ch.minutes.map(n => ["minutes:" + n, t("every_minutes", { n })]),
      ...ch.hours.map(n => ["hours:" + n, n === 1 ? t("every_hour") : t("every_hours", { n })])];
    fillSelect($("#sched-every"), steps, `${picker.unit}:${picker.every}`);
    fillSelect($("#sched-start"), [...Array(24).keys()].map(h => [h, hh(h)]), picker.start);
    fillSelect($("#sched-end"), [...Array(24).keys()].map(h => [h + 1, hh(h + 1)]), picker.end);
    $("#sched-mode").value = picker.mode; $("#sched-at").value = picker.at;
    $("#sched-weekdays").checked = picker.weekdays_only;
    $("#schedule").value = picker.mode === "advanced" ? (form.schedule || "") : "";
    for (const id of ["sched-mode", "sched-every", "sched-start", "sched-end", "sched-at", "sched-weekdays", "schedule"]) {
      const e = document.getElementById(id);
      e.disabled = ro;
      e.onchange = id === "schedule" ? null : pickerChanged;
    }
    $("#schedule").oninput = () => { form.schedule = $("#schedule").value; picker.cron = form.schedule; previewSoon(); };
    showPickerParts();
  }

  // Only the parts of the chosen kind are shown; under them what is stored (the cron), or the cron's syntax.
  function showPickerParts() {
    showPickerKind();
    const m = picker.mode;
    $("#sched-hint").textContent = m === "advanced" ? t("cron_hint") : (form.schedule ? t("stored_as", { cron: form.schedule }) : "");
  }
  function showPickerKind() {
    const m = picker.mode;
    $("#sched-interval").hidden = m !== "interval";
    $("#sched-daily").hidden = m !== "daily";
    $("#sched-weekdays-box").hidden = !(m === "interval" || m === "daily");
    $("#schedule").hidden = m !== "advanced";
  }

  function readPicker() {
    const [unit, every] = $("#sched-every").value.split(":");
    const mode = $("#sched-mode").value;
    // Into "advanced": the cron the picker stood for, to edit by hand.
    const cron = mode === "advanced" && picker.mode !== "advanced" ? (form.schedule || "") : picker.cron;
    return { mode, unit, every: Number(every), start: Number($("#sched-start").value), end: Number($("#sched-end").value),
      at: $("#sched-at").value || "06:00", weekdays_only: $("#sched-weekdays").checked, cron };
  }

  function pickerChanged() {
    picker = readPicker();
    showPickerKind();   // at once: the kind's parts are there to use while the server turns the choice into a cron
    const field = $('.field[data-path="schedule"]');
    field.classList.remove("invalid"); $(".error", field).textContent = "";
    if (picker.mode === "advanced") { $("#schedule").value = picker.cron; form.schedule = picker.cron || null; showPickerParts(); previewSoon(); return; }
    const q = new URLSearchParams({ ...picker, timezone: form.timezone || "" });
    const asked = ++pickerAsked;
    schedulePending = call("GET", "/schedule-picker?" + q).then((r) => {
      if (asked !== pickerAsked) return;   // the user chose again meanwhile: only the last choice's answer counts
      if (r.status === 200) { form.schedule = r.data.schedule; showPreview(r.data); }
      else if (r.status === 422) { field.classList.add("invalid"); $(".error", field).textContent = r.data.errors.map(e => t(e.key)).join(" "); showPreview(r.data); }
      showPickerParts();
    }).finally(() => { if (asked === pickerAsked) schedulePending = null; });
  }

  function renderCategories() {
    const ro = readOnly();
    const box = $("#categories");
    box.textContent = "";
    for (const c of state.categories) {
      const cs = form.categories[c.name];
      const locked = c.pro && form.license !== "pro";
      const card = el("section", { class: "card cat" + (cs.enabled ? "" : " off") + (locked ? " locked" : ""), id: "cat-" + c.name, "data-category": c.name });
      const sw = el("input", { type: "checkbox", id: `enabled-${c.name}`, "aria-label": t("import_category", { title: catTitle(c) }), disabled: ro || locked });
      sw.checked = !!cs.enabled;
      sw.onchange = () => { cs.enabled = sw.checked; card.classList.toggle("off", !sw.checked); };
      const head = el("div", { class: "cat-head" },
        el("label", { class: "switch", title: t("on_off") }, sw, el("span", { class: "knob" })),
        el("h3", { title: c.long_title }, catTitle(c), " ", isDutch() ? null : el("span", { class: "nl", text: `(${c.dutch})` })),
        locked ? lockBadge() : (c.pro ? el("span", { class: "badge", text: "Pro" }) : null),
        el("span", { class: "state", id: `state-${c.name}`, hidden: true }),
        syncButtons(c));
      card.append(head);
      const filters = el("div", { class: "filters" });
      for (const f of c.filters) filters.append(renderFilter(c, f, cs, ro || locked));
      if (c.filters.length) card.append(filters);
      card.append(el("div", { class: "confirm", id: `confirm-${c.name}`, role: "alertdialog", hidden: true }));
      card.append(el("div", { class: "sync-msg", id: `sync-msg-${c.name}`, role: "alert" }));
      card.append(el("div", { class: "info", id: `info-${c.name}` }));
      box.append(card);
      renderStatus(c.name);
    }
    renderAllGroups();
  }

  function lockBadge() {
    const b = el("span", { class: "lock", title: t("needs_pro_title") });
    b.innerHTML = '<svg viewBox="0 0 16 16" width="12" height="12" aria-hidden="true"><rect x="3" y="7" width="10" height="8" rx="1.5" fill="currentColor"/><path d="M5 7V5a3 3 0 0 1 6 0v2" fill="none" stroke="currentColor" stroke-width="1.6"/></svg> ';
    b.append(t("needs_pro"));
    return b;
  }

  function syncButtons(c) {
    const wrap = el("span", { class: "sync-wrap" });
    const saved = state.settings.categories[c.name];
    const lockedSaved = c.pro && state.settings.license !== "pro";
    if (!c.can_trigger) return wrap;
    const usable = saved.enabled && !lockedSaved && !state.settings.paused;
    const why = usable ? "" : (state.settings.paused ? t("company_paused_first") : t("switch_on_first"));
    wrap.append(
      el("button", { type: "button", class: "icon-btn sync", id: `sync-${c.name}`, disabled: !usable, title: t("sync_now") + why, "aria-label": t("sync_now_named", { title: catTitle(c) }), onclick: () => sync(c, false) }, el("span", { class: "spin", text: "⟳" })),
      " ",
      el("button", { type: "button", class: "icon-btn full", id: `full-${c.name}`, disabled: !usable, title: t("full_refresh_title") + why, onclick: () => confirmFull(c), text: t("full_refresh") }));
    return wrap;
  }

  function renderFilter(c, f, cs, disabled) {
    const path = `categories.${c.name}.${f.key}`;
    const field = el("div", { class: "field", "data-path": path });
    if (f.widget === "checkbox") {
      const cb = el("input", { type: "checkbox", id: `${c.name}-${f.key}`, disabled });
      cb.checked = !!cs[f.key]; cb.onchange = () => { cs[f.key] = cb.checked; };
      field.append(el("label", {}, cb, " ", filterLabel(f)));
    } else if (f.widget === "checkboxes") {
      field.append(el("span", { class: "label", text: filterLabel(f) }));
      for (const o of f.choices) {
        const cb = el("input", { type: "checkbox", id: `${c.name}-${f.key}-${o.value}`, value: o.value, disabled });
        cb.checked = (cs[f.key] || []).includes(o.value);
        cb.onchange = () => {
          const set = new Set(cs[f.key]); cb.checked ? set.add(o.value) : set.delete(o.value);
          cs[f.key] = f.choices.map(x => x.value).filter(v => set.has(v));
        };
        field.append(el("label", { class: "inline" }, cb, " ", choiceLabel(o)));
      }
    } else if (f.widget === "item_groups") {
      field.append(el("label", { class: "label", for: `${c.name}-${f.key}`, text: filterLabel(f) }));
      const sel = el("select", { multiple: true, size: 6, id: `${c.name}-${f.key}`, disabled });
      sel.onchange = () => { cs[f.key] = [...sel.selectedOptions].map(o => o.value); };
      field.append(sel, el("div", { class: "hint", id: `${c.name}-${f.key}-source` }));
    } else {
      // A widget this page does not know: say so rather than drop the setting silently.
      field.append(el("span", { class: "label", text: t("unknown_widget", { label: filterLabel(f), widget: f.widget }) }));
    }
    field.append(el("div", { class: "error", role: "alert" }));
    return field;
  }

  // Every item-group filter of every category (the registry says which filters are item groups).
  function renderAllGroups() {
    for (const c of state.categories) for (const f of c.filters) if (f.widget === "item_groups") renderGroups(c.name, f.key);
  }

  function renderGroups(name, key) {
    const sel = document.getElementById(`${name}-${key}`);
    if (!sel) return;
    const chosen = new Set(form.categories[name][key]);
    sel.textContent = "";
    const list = groups ? [...groups.groups] : [];
    for (const code of chosen) if (!list.some(g => g.code === code)) list.push({ code, description: t("group_unknown"), unknown: true });
    for (const g of list) {
      const o = el("option", { value: g.code }, g.description ? `${g.code} — ${g.description}` : g.code);
      o.selected = chosen.has(g.code);
      sel.append(o);
    }
    const src = document.getElementById(`${name}-${key}-source`);
    if (!groups) src.textContent = t("groups_loading");
    else src.textContent = (groups.source ? t("groups_from", { source: groups.source }) + " " : "") + (groups.message ? groups.message + " " : "") + t("groups_hint");
  }

  function renderStatus(name) {
    const run = state.runs[name] || {};
    const imp = state.imports.by_category[name];
    const st = document.getElementById(`state-${name}`);
    const latest = run.latest_run;
    const shown = latest && (run.active || starting[name] || latest.state);
    if (st) {
      const s = starting[name] ? "queued" : (latest ? latest.state : null);
      st.hidden = !shown; st.className = "state " + (s || ""); st.textContent = s ? labelOf("state_", s) : "";
      st.title = latest ? t("run", { id: latest.run_id }) : "";
    }
    const busy = run.active || starting[name];
    for (const id of [`sync-${name}`, `full-${name}`]) {
      const b = document.getElementById(id);
      if (!b) continue;
      const saved = state.settings.categories[name];
      const c = state.categories.find(x => x.name === name);
      const usable = saved.enabled && !(c.pro && state.settings.license !== "pro") && !state.settings.paused;
      b.disabled = !usable || !!busy || !run.parsed;
      if (id.startsWith("sync")) b.classList.toggle("busy", !!busy);
    }
    const info = document.getElementById(`info-${name}`);
    if (!info) return;
    info.textContent = "";
    const c = state.categories.find(x => x.name === name);
    const parts = [];
    if (imp) {
      // fetched, then every count the merge reports (the registry's MERGE_COUNTS, served with the categories)
      const numbers = ["fetched", ...catalog.counts].map(k => [` · ${labelOf("count_", k)} `, el("b", { text: String(imp[k] ?? "–") })]);
      const counts = el("span", { class: "counts", id: `counts-${name}` },
        t("last_import", { when: fmt(imp.started_at) }) + " ", el("b", { text: labelOf("state_", imp.status) + (imp.dry_run ? t("dry_run") : "") + (imp.full_refresh ? ` (${t("full_refresh")})` : "") }),
        ...numbers.flat());
      parts.push(counts);
      // How the counts add up, so that fetched minus the rest is no riddle (served from the registry's MERGE_COUNTS).
      const explained = isDutch() ? catalog.dutch_counts_explained : catalog.counts_explained;
      if (explained) parts.push(el("div", { class: "hint", id: `counts-explained-${name}`, text: explained }));
      if (imp.error) parts.push(el("div", { class: "error", text: imp.error }));
    } else {
      parts.push(el("span", { id: `counts-${name}`, text: t("no_import_yet") }));
    }
    const line = el("div", {});
    if (run.active) line.append(el("b", { text: t("import_going_on") }));
    line.append(t("next_run", { when: run.next_run ? fmt(run.next_run) : t("none") }));
    if (run.paused) line.append(t("paused"));
    // Airflow's own pages: through airflowLink, as the frame's sandbox refuses target="_top" and new tabs.
    line.append(" · ", airflowLink(c.grid_url, t("dag_grid"), { id: `grid-${name}` }));
    if (latest && latest.log_url) line.append(" · ", airflowLink(latest.log_url, t("last_task_log"), { id: `log-${name}` }));
    parts.push(line);
    info.append(...parts);
  }

  // ---- save -------------------------------------------------------------------------------------------------------
  function clearErrors() {
    for (const f of document.querySelectorAll(".field")) { f.classList.remove("invalid"); const e = $(".error", f); if (e) e.textContent = ""; }
  }
  function showErrors(errors) {
    const fields = [...document.querySelectorAll(".field[data-path]")];
    const unplaced = [];
    for (const err of errors) {
      // the longest field path that the error's path starts with: "categories.materials.item_groups[0]" -> item groups
      let best = null;
      for (const f of fields) {
        const p = f.dataset.path;
        if ((err.path === p || err.path.startsWith(p + ".") || err.path.startsWith(p + "[")) && (!best || p.length > best.dataset.path.length)) best = f;
      }
      if (best) { best.classList.add("invalid"); const e = $(".error", best); e.textContent = (e.textContent ? e.textContent + " " : "") + err.message; }
      else unplaced.push(`${err.path}: ${err.message}`);
    }
    return unplaced;
  }

  async function save() {
    clearErrors();
    const msg = $("#save-message");
    msg.className = "save-message"; msg.textContent = t("saving");
    $("#save").disabled = true;
    try {
      if (schedulePending) await schedulePending;   // the picker's last change is in form.schedule
      const body = { settings: form, version: state.version };
      if (state.stored.replace_required) body.replace = replacing;   // see app.py: the explicit "replace" flag
      const r = await call("PUT", company ? `/companies/${encodeURIComponent(company)}` : "/settings", body);
      if (r.status === 200) {
        state.version = r.data.version;
        state.settings = r.data.settings;
        form = JSON.parse(JSON.stringify(r.data.settings));
        state.exists = true; state.stored_error = null; replacing = false;
        state.stored = { status: "valid", problems: [], error: null, replace_required: false };
        msg.className = "save-message ok"; msg.textContent = t("saved");
        banner("");
        picker = { ...r.data.schedule_picker };
        renderAll();
        renderPicker();
        previewSoon();   // the preview in the state is the one loaded with the page, not the saved schedule's
        refreshStatus();
      } else if (r.status === 422) {
        const rest = showErrors(r.data.detail.errors || []);
        msg.className = "save-message bad"; msg.textContent = r.data.detail.message + (rest.length ? " " + rest.join("; ") : "");
      } else if (r.status === 409 && r.data && r.data.detail && r.data.detail.replace_required) {
        msg.className = "save-message bad"; msg.textContent = detail(r.data);
      } else if (r.status === 409) {
        msg.className = "save-message bad"; msg.textContent = t("not_saved_elsewhere");
        banner(detail(r.data), "reload");
      } else if (r.status === 401) {
        msg.className = "save-message bad"; msg.textContent = t("not_saved_login");   // the banner has the link
      } else {
        msg.className = "save-message bad"; msg.textContent = t("not_saved", { status: r.status, why: detail(r.data) });
      }
    } finally { $("#save").disabled = false; }
  }

  // ---- sync -------------------------------------------------------------------------------------------------------
  // The full refresh asks first, in the page: Airflow's iframe sandbox does not allow window.confirm().
  function confirmFull(c) {
    const box = document.getElementById(`confirm-${c.name}`);
    box.textContent = "";
    box.hidden = false;
    box.append(t("confirm_full", { title: catTitle(c) }) + " ",
      el("button", { type: "button", class: "icon-btn danger", id: `confirm-full-${c.name}`, text: t("start_full"), onclick: () => { box.hidden = true; sync(c, true); } }), " ",
      el("button", { type: "button", class: "icon-btn", id: `cancel-full-${c.name}`, text: t("cancel"), onclick: () => { box.hidden = true; } }));
  }

  async function sync(c, full) {
    const m = document.getElementById(`sync-msg-${c.name}`);
    m.textContent = "";
    starting[c.name] = true; renderStatus(c.name);
    const r = await call("POST", at(`/categories/${c.name}/sync`), { full_refresh: !!full });
    delete starting[c.name];
    if (r.status === 201) {
      state.runs[c.name].active = true; state.runs[c.name].latest_run = r.data.run;
    } else {
      m.textContent = t("not_started", { status: r.status, why: detail(r.data) });
    }
    renderStatus(c.name);
    schedulePoll(1000);
  }

  // ---- live status ------------------------------------------------------------------------------------------------
  async function refreshStatus() {
    const r = await call("GET", at("/status"));
    if (r.status !== 200) return;
    state.runs = r.data.runs; state.imports = r.data.imports;
    if (r.data.version !== state.version) banner(t("saved_elsewhere"), "reload");
    for (const c of state.categories) renderStatus(c.name);
  }
  function schedulePoll(delay) {
    clearTimeout(pollTimer);
    if (loginGone) return;   // every request would be refused until the user logs in again
    const active = state && Object.values(state.runs).some(r => r.active);
    pollTimer = setTimeout(async () => { try { await refreshStatus(); } finally { schedulePoll(); } }, delay || (active ? 2000 : 15000));
  }

  // Exact's consent page refuses to be framed, and the UI's iframe sandbox does not allow this frame to navigate the
  // top window. The frame is same-origin with the UI (allow-same-origin), so a link made in the top document and
  // clicked there navigates the top window as the UI itself would (connection.js's and companies.js's connect).
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

  // What connection.js and companies.js share with this script: one `call` (one way to meet an expired login), the
  // words; and for companies.js (#21) the company shown, switching to another, and the page's own helpers.
  window.exactPage = {
    call, t, detail,
    language: () => LANG,
    onLanguageChange: (listener) => languageListeners.push(listener),
    el, banner, airflowLink, openTop,
    get company() { return company; },
    get state() { return state; },
    select(key) {
      try { window.sessionStorage.setItem(COMPANY_STORE, key); } catch (e) { /* private mode: not kept */ }
      clearTimeout(pollTimer); groups = null;
      $("#save-message").textContent = "";
      return load();
    },
    reload: () => load(),
  };

  applyLabels();
  load();
})();
