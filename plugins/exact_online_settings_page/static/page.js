// The Exact Online imports page: plain JavaScript, no build step. It draws the categories the registry has
// (/api/categories: titles, switches, filter widgets; no category name is written here), fills them from /api/state,
// lets the user edit the settings, saves them with the version it loaded (409 if someone saved in between) and
// starts imports.
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

  let catalog = null;      // /api/categories: {categories: [{name, title, pro, filters: [...]}, ...], counts: [...]}
  let state = null;        // the last /api/state
  let form = null;         // the settings being edited (a deep copy of state.settings)
  let groups = null;       // item groups {groups, source, message}
  let pollTimer = null;
  let replacing = false;   // the user ticked "Replace the stored settings" (only offered when the page cannot read them)
  const starting = {};     // category -> true while a sync request is on its way

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
    if (r.status === 401) { window.top.location.href = (state && state.ui_base) || "/"; }
    return { status: r.status, data };
  }
  const detail = (d) => d && d.detail ? (typeof d.detail === "string" ? d.detail : (d.detail.message || JSON.stringify(d.detail))) : "";

  function fmt(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    return d.toLocaleString(undefined, { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
  }
  const tzName = Intl.DateTimeFormat().resolvedOptions().timeZone;

  // ---- load -------------------------------------------------------------------------------------------------------
  async function load() {
    const [cat, r] = await Promise.all([call("GET", "/categories"), call("GET", "/state")]);
    if (cat.status !== 200) { banner(`Could not load the categories (${cat.status}): ${detail(cat.data)}`, true); return; }
    if (r.status !== 200) { banner(`Could not load the page (${r.status}): ${detail(r.data)}`, true); return; }
    state = r.data;
    // What this user may do with each category (and its DAG's grid) joins the registry's description of it.
    const access = Object.fromEntries(state.categories.map(c => [c.name, c]));
    catalog = cat.data;
    state.categories = catalog.categories.map(c => ({ ...c, ...(access[c.name] || { can_trigger: false }) }));
    form = JSON.parse(JSON.stringify(state.settings));
    renderAll();
    $("#main").setAttribute("aria-busy", "false");
    loadGroups();
    schedulePoll();
  }

  async function loadGroups() {
    const r = await call("GET", "/item-groups");
    groups = r.status === 200 ? r.data : { groups: [], message: detail(r.data) };
    renderAllGroups();
  }

  function banner(text, bad) {
    const b = $("#banner");
    b.hidden = !text; b.className = "banner" + (bad ? " bad" : ""); b.textContent = "";
    if (!text) return;
    b.append(text);
    if (bad === "reload") b.append(" ", el("button", { type: "button", class: "icon-btn", id: "reload", onclick: () => location.reload(), text: "Reload" }));
  }

  // ---- render -----------------------------------------------------------------------------------------------------
  // Read-only: a user who may not edit, and anyone while the stored settings cannot be read and "replace" is not
  // ticked (a Save then loses what the Variable holds, so it must be chosen, not happen).
  const readOnly = () => !state.user.can_edit || (state.stored.replace_required && !replacing);

  function storedWarning() {
    const st = state.stored;
    if (st.status === "invalid") return "The stored settings do not validate, so nothing is scheduled. They are shown as stored, each problem marked in red; correct them and Save.";
    if (st.status === "unreadable") return `The stored settings cannot be read by this page, so nothing is scheduled: ${st.error} The page shows the defaults, read-only.` + (state.user.can_edit ? " To replace the stored settings with these, tick \"Replace the stored settings\" next to Save." : "");
    if (st.status === "absent") return "The settings Variable does not exist yet; the page shows the defaults.";
    return null;
  }

  function renderAll() {
    const ro = readOnly();
    $("#who").textContent = "";
    $("#who").append(`Logged in as ${state.user.name} `, !state.user.can_edit ? el("span", { class: "badge ro", id: "read-only", text: "read only (alleen lezen)" }) : el("span", { class: "badge", text: "may edit" }));
    const warnings = [storedWarning()].filter(Boolean);
    if (state.shadowed_by_environment) warnings.push("An environment variable AIRFLOW_VAR_EXACT_ONLINE_IMPORT_SETTINGS overrides the Variable saved here.");
    if (!state.imports.available) warnings.push(state.imports.message);

    for (const v of ["standard", "pro"]) { const r = $("#license-" + v); r.checked = form.license === v; r.disabled = ro; r.onchange = () => { form.license = v; renderCategories(); }; }
    const sched = $("#schedule"), manual = $("#manual-only"), tz = $("#timezone");
    sched.value = form.schedule || ""; manual.checked = form.schedule === null; sched.disabled = ro || manual.checked;
    tz.value = form.timezone; tz.disabled = ro; manual.disabled = ro;
    sched.oninput = () => { form.schedule = sched.value; previewSoon(); };
    manual.onchange = () => { form.schedule = manual.checked ? null : (sched.value || "@hourly"); sched.value = form.schedule || ""; sched.disabled = manual.checked; previewSoon(); };
    tz.oninput = () => { form.timezone = tz.value; previewSoon(); };
    showPreview(state.schedule_preview);
    $("#save").hidden = !state.user.can_edit; $("#save").disabled = ro; $("#save").onclick = save;
    const rb = $("#replace-box"), rc = $("#replace");
    rb.hidden = !(state.user.can_edit && state.stored.replace_required);
    rc.checked = replacing; rc.onchange = () => { replacing = rc.checked; renderAll(); };
    renderCategories();
    // The stored problems at their fields; those without a field (an unknown key, a switch) in the banner.
    clearErrors();
    const unplaced = showErrors(state.stored.problems || []);
    if (unplaced.length) warnings.push("Problems: " + unplaced.join("; ") + ".");
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
    if (p.errors && p.errors.length) { n.textContent = "This schedule is not valid: " + p.errors.map(e => e.message).join("; "); return; }
    if (!p.next.length) { n.textContent = p.message || "No scheduled runs."; return; }
    n.textContent = `Next runs it gives (your time, ${tzName}): ` + p.next.map(fmt).join(", ");
  }

  function renderCategories() {
    const ro = readOnly();
    const box = $("#categories");
    box.textContent = "";
    for (const c of state.categories) {
      const cs = form.categories[c.name];
      const locked = c.pro && form.license !== "pro";
      const card = el("section", { class: "card cat" + (cs.enabled ? "" : " off") + (locked ? " locked" : ""), id: "cat-" + c.name, "data-category": c.name });
      const sw = el("input", { type: "checkbox", id: `enabled-${c.name}`, "aria-label": `Import ${c.title}`, disabled: ro || locked });
      sw.checked = !!cs.enabled;
      sw.onchange = () => { cs.enabled = sw.checked; card.classList.toggle("off", !sw.checked); };
      const head = el("div", { class: "cat-head" },
        el("label", { class: "switch", title: "on / off (aan / uit)" }, sw, el("span", { class: "knob" })),
        el("h3", { title: c.long_title }, c.title, " ", el("span", { class: "nl", text: `(${c.dutch})` })),
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
    const b = el("span", { class: "lock", title: "Switch the licence to Pro to use this category" });
    b.innerHTML = '<svg viewBox="0 0 16 16" width="12" height="12" aria-hidden="true"><rect x="3" y="7" width="10" height="8" rx="1.5" fill="currentColor"/><path d="M5 7V5a3 3 0 0 1 6 0v2" fill="none" stroke="currentColor" stroke-width="1.6"/></svg> needs Exact Online Pro';
    return b;
  }

  function syncButtons(c) {
    const wrap = el("span", { class: "sync-wrap" });
    const saved = state.settings.categories[c.name];
    const lockedSaved = c.pro && state.settings.license !== "pro";
    if (!c.can_trigger) return wrap;
    const usable = saved.enabled && !lockedSaved;
    const why = usable ? "" : " (switch it on and Save first)";
    wrap.append(
      el("button", { type: "button", class: "icon-btn sync", id: `sync-${c.name}`, disabled: !usable, title: "Import now (nu synchroniseren)" + why, "aria-label": `Import ${c.title} now`, onclick: () => sync(c, false) }, el("span", { class: "spin", text: "⟳" })),
      " ",
      el("button", { type: "button", class: "icon-btn full", id: `full-${c.name}`, disabled: !usable, title: "Read everything again from Exact (volledig opnieuw inlezen)" + why, onclick: () => confirmFull(c), text: "Full refresh" }));
    return wrap;
  }

  function renderFilter(c, f, cs, disabled) {
    const path = `categories.${c.name}.${f.key}`;
    const field = el("div", { class: "field", "data-path": path });
    if (f.widget === "checkbox") {
      const cb = el("input", { type: "checkbox", id: `${c.name}-${f.key}`, disabled });
      cb.checked = !!cs[f.key]; cb.onchange = () => { cs[f.key] = cb.checked; };
      field.append(el("label", {}, cb, " ", f.label));
    } else if (f.widget === "checkboxes") {
      field.append(el("span", { class: "label", text: f.label }));
      for (const o of f.choices) {
        const cb = el("input", { type: "checkbox", id: `${c.name}-${f.key}-${o.value}`, value: o.value, disabled });
        cb.checked = (cs[f.key] || []).includes(o.value);
        cb.onchange = () => {
          const set = new Set(cs[f.key]); cb.checked ? set.add(o.value) : set.delete(o.value);
          cs[f.key] = f.choices.map(x => x.value).filter(v => set.has(v));
        };
        field.append(el("label", { class: "inline" }, cb, " ", o.label));
      }
    } else if (f.widget === "item_groups") {
      field.append(el("label", { class: "label", for: `${c.name}-${f.key}`, text: f.label }));
      const sel = el("select", { multiple: true, size: 6, id: `${c.name}-${f.key}`, disabled });
      sel.onchange = () => { cs[f.key] = [...sel.selectedOptions].map(o => o.value); };
      field.append(sel, el("div", { class: "hint", id: `${c.name}-${f.key}-source` }));
    } else {
      // A widget this page does not know: say so rather than drop the setting silently.
      field.append(el("span", { class: "label", text: `${f.label}: this page cannot show a "${f.widget}" setting.` }));
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
    for (const code of chosen) if (!list.some(g => g.code === code)) list.push({ code, description: "(not among the division's item groups)", unknown: true });
    for (const g of list) {
      const o = el("option", { value: g.code }, g.description ? `${g.code} — ${g.description}` : g.code);
      o.selected = chosen.has(g.code);
      sel.append(o);
    }
    const src = document.getElementById(`${name}-${key}-source`);
    if (!groups) src.textContent = "Loading the item groups …";
    else src.textContent = (groups.source ? `From ${groups.source}. ` : "") + (groups.message ? groups.message + " " : "") + "Ctrl/⌘-click selects more than one; none selected = all groups.";
  }

  function renderStatus(name) {
    const run = state.runs[name] || {};
    const imp = state.imports.by_category[name];
    const st = document.getElementById(`state-${name}`);
    const latest = run.latest_run;
    const shown = latest && (run.active || starting[name] || latest.state);
    if (st) {
      const s = starting[name] ? "queued" : (latest ? latest.state : null);
      st.hidden = !shown; st.className = "state " + (s || ""); st.textContent = s ? s : "";
      st.title = latest ? `Run ${latest.run_id}` : "";
    }
    const busy = run.active || starting[name];
    for (const id of [`sync-${name}`, `full-${name}`]) {
      const b = document.getElementById(id);
      if (!b) continue;
      const saved = state.settings.categories[name];
      const c = state.categories.find(x => x.name === name);
      const usable = saved.enabled && !(c.pro && state.settings.license !== "pro");
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
      const numbers = ["fetched", ...catalog.counts].map(k => [` · ${k.replaceAll("_", " ")} `, el("b", { text: String(imp[k] ?? "–") })]);
      const counts = el("span", { class: "counts", id: `counts-${name}` },
        `Last import ${fmt(imp.started_at)}: `, el("b", { text: imp.status + (imp.dry_run ? " (dry run)" : "") + (imp.full_refresh ? " (full refresh)" : "") }),
        ...numbers.flat());
      parts.push(counts);
      // How the counts add up, so that fetched minus the rest is no riddle (served from the registry's MERGE_COUNTS).
      if (catalog.counts_explained) parts.push(el("div", { class: "hint", id: `counts-explained-${name}`, text: catalog.counts_explained }));
      if (imp.error) parts.push(el("div", { class: "error", text: imp.error }));
    } else {
      parts.push(el("span", { id: `counts-${name}`, text: "No import yet (nog niet geïmporteerd)." }));
    }
    const line = el("div", {});
    if (run.active) line.append(el("b", { text: "An import is going on. " }));
    line.append(`Next scheduled run: ${run.next_run ? fmt(run.next_run) : "none"}`);
    if (run.paused) line.append(" (the DAG is paused in Airflow)");
    line.append(" · ", el("a", { href: c.grid_url, target: "_top", text: "DAG grid" }));
    if (latest && latest.log_url) line.append(" · ", el("a", { href: latest.log_url, target: "_top", id: `log-${name}`, text: "last task log" }));
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
    msg.className = "save-message"; msg.textContent = "Saving …";
    $("#save").disabled = true;
    try {
      const body = { settings: form, version: state.version };
      if (state.stored.replace_required) body.replace = replacing;   // see app.py: the explicit "replace" flag
      const r = await call("PUT", "/settings", body);
      if (r.status === 200) {
        state.version = r.data.version;
        state.settings = r.data.settings;
        form = JSON.parse(JSON.stringify(r.data.settings));
        state.exists = true; state.stored_error = null; replacing = false;
        state.stored = { status: "valid", problems: [], error: null, replace_required: false };
        msg.className = "save-message ok"; msg.textContent = r.data.message;
        banner("");
        renderAll();
        refreshStatus();
      } else if (r.status === 422) {
        const rest = showErrors(r.data.detail.errors || []);
        msg.className = "save-message bad"; msg.textContent = r.data.detail.message + (rest.length ? " " + rest.join("; ") : "");
      } else if (r.status === 409 && r.data && r.data.detail && r.data.detail.replace_required) {
        msg.className = "save-message bad"; msg.textContent = detail(r.data);
      } else if (r.status === 409) {
        msg.className = "save-message bad"; msg.textContent = "Not saved: the settings changed elsewhere.";
        banner(detail(r.data), "reload");
      } else {
        msg.className = "save-message bad"; msg.textContent = `Not saved (${r.status}): ${detail(r.data)}`;
      }
    } finally { $("#save").disabled = false; }
  }

  // ---- sync -------------------------------------------------------------------------------------------------------
  // The full refresh asks first, in the page: Airflow's iframe sandbox does not allow window.confirm().
  function confirmFull(c) {
    const box = document.getElementById(`confirm-${c.name}`);
    box.textContent = "";
    box.hidden = false;
    box.append(`Full refresh of ${c.title}: read everything again from Exact Online and mark what Exact no longer has as deleted. This takes longer than a normal import. `,
      el("button", { type: "button", class: "icon-btn danger", id: `confirm-full-${c.name}`, text: "Start full refresh", onclick: () => { box.hidden = true; sync(c, true); } }), " ",
      el("button", { type: "button", class: "icon-btn", id: `cancel-full-${c.name}`, text: "Cancel", onclick: () => { box.hidden = true; } }));
  }

  async function sync(c, full) {
    const m = document.getElementById(`sync-msg-${c.name}`);
    m.textContent = "";
    starting[c.name] = true; renderStatus(c.name);
    const r = await call("POST", `/categories/${c.name}/sync`, { full_refresh: !!full });
    delete starting[c.name];
    if (r.status === 201) {
      state.runs[c.name].active = true; state.runs[c.name].latest_run = r.data.run;
    } else {
      m.textContent = `Not started (${r.status}): ${detail(r.data)}`;
    }
    renderStatus(c.name);
    schedulePoll(1000);
  }

  // ---- live status ------------------------------------------------------------------------------------------------
  async function refreshStatus() {
    const r = await call("GET", "/status");
    if (r.status !== 200) return;
    state.runs = r.data.runs; state.imports = r.data.imports;
    if (r.data.version !== state.version) banner("Someone saved the settings after you loaded this page (or on the Variables page). Reload before you change anything here.", "reload");
    for (const c of state.categories) renderStatus(c.name);
  }
  function schedulePoll(delay) {
    clearTimeout(pollTimer);
    const active = state && Object.values(state.runs).some(r => r.active);
    pollTimer = setTimeout(async () => { try { await refreshStatus(); } finally { schedulePoll(); } }, delay || (active ? 2000 : 15000));
  }

  load();
})();
