// The zest-mock admin console: polls the documented /_mock control plane about once a second and renders it;
// every button is one documented control call, sent as JSON from this origin. No dependencies, no build step.
"use strict";

const POLL_MS = 1000;
const JOURNAL_ROWS = 60;
const EVENT_ROWS = 60;
const last = {}; // section -> JSON it was last rendered from

// ---- small helpers -------------------------------------------------------------------------------------------

function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

async function api(method, path, body) {
  const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (method !== "GET") {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body === undefined ? {} : body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (!response.ok) {
    const detail = (data && (data.detail || data.code)) || text || response.statusText;
    throw new Error(`${method} ${path} answered ${response.status}: ${detail}`);
  }
  return data;
}

function say(text, isError) {
  const box = document.getElementById("message");
  box.textContent = text;
  box.className = isError ? "error" : "ok";
  box.hidden = !text;
}

async function act(button, description, call) {
  if (button) button.disabled = true;
  try {
    const result = await call();
    say(typeof description === "function" ? description(result) : description, false);
  } catch (error) {
    say(error.message, true);
  } finally {
    if (button) button.disabled = false;
    refresh();
  }
}

const enc = encodeURIComponent;

function when(instant) {
  return instant ? String(instant).replace("T", " ").replace(/\.\d+Z$|Z$/, "") : "";
}

function table(headers, rows, empty) {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  return h("div", { class: "table" }, h("table", {},
    h("thead", {}, h("tr", {}, headers.map((name) => h("th", { scope: "col" }, name)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell, i) => h("td", { "data-label": headers[i] }, cell)))))));
}

function badge(text, kind) {
  return h("span", { class: `badge ${kind || String(text).replace(/[^a-z0-9]+/gi, "-").toLowerCase()}` }, text);
}

function money(m) {
  return m ? `${m.value} ${m.currency}` : "";
}

// ---- sections ------------------------------------------------------------------------------------------------

const SPV_ORDER = [["pending-review", "Pending review"], ["approved", "Approved"], ["rejected", "Rejected"],
  ["cancelled", "Cancelled"]];

function renderSpv(data) {
  const items = data.spv.items;
  const out = [h("p", { class: "counts" }, SPV_ORDER.map(([status, label]) =>
    badge(`${label}: ${items.filter((r) => r.status === status).length}`, status)))];
  for (const [status, label] of SPV_ORDER) {
    const rows = items.filter((r) => r.status === status).reverse();
    if (!rows.length) continue;
    out.push(h("h3", {}, `${label} (${rows.length})`));
    out.push(table(["Slug", "Template", "Partner", "Created", status === "pending-review" ? "Decision" : "Outcome"],
      rows.map((r) => [h("code", { id: `spv-${r.spvRequestSlug}` }, r.spvRequestSlug),
        `${r.templateId} ${r.templateVersion}`, r.clientId, when(r.createdAt), spvOutcome(r)]), ""));
  }
  if (!items.length) out.push(h("p", { class: "muted" }, "No SPV requests yet: create one through the Partner API."));
  return out;
}

function spvOutcome(r) {
  const slug = r.spvRequestSlug;
  if (r.status === "pending-review") {
    return h("div", { class: "buttons" },
      h("button", { type: "button", "aria-describedby": `spv-${slug}`,
        onclick: (e) => act(e.currentTarget, `Approved ${slug}`,
          () => api("POST", `/_mock/admin/spv-requests/${enc(slug)}/approve`)) }, "Approve"),
      h("button", { type: "button", class: "danger", "aria-describedby": `spv-${slug}`,
        onclick: () => openReject(slug) }, "Reject"));
  }
  if (r.status === "approved" && r.materialisedRefs) {
    const refs = r.materialisedRefs;
    return h("dl", { class: "refs" }, ["vehicleSlug", "opportunitySlug", "spSlug", "spcSlug"].map((key) =>
      [h("dt", {}, key.replace("Slug", "")), h("dd", {}, h("code", {}, refs[key]))]));
  }
  if (r.status === "rejected") return `rejected: ${r.rejectionReason || ""}`;
  return when(r.cancelledAt);
}

function renderSubscriptions(data) {
  const items = data.subscriptions.items.slice().reverse();
  return table(["Subscription", "Partner", "SPV", "Investor", "Amount", "Status", "Form", "Funding", "Admin"],
    items.map((s) => [h("code", { id: `sub-${s.subscriptionSlug}` }, s.subscriptionSlug), s.clientId,
      h("code", {}, s.spvSlug), s.partnerInvestorId || s.personId, money(s.lumpSum), badge(s.status),
      s.form ? h("span", {}, h("a", { href: s.form.url, target: "_blank", rel: "noopener" }, "signed form"),
        ` ${when(s.form.uploadedAt)}`) : "not yet",
      s.funding ? h("span", {}, h("a", { href: s.funding.url, target: "_blank", rel: "noopener" }, "receipt"),
        ` ${s.funding.amount} ${s.funding.currency} · ${s.funding.wireReference}`) : "not yet",
      s.status === "funded" ? h("button", { type: "button", "aria-describedby": `sub-${s.subscriptionSlug}`,
        onclick: (e) => act(e.currentTarget, `Completed ${s.subscriptionSlug}`,
          () => api("POST", `/_mock/admin/subscriptions/${enc(s.subscriptionSlug)}/complete`, {})) }, "Complete")
        : (s.completedAt ? `completed ${when(s.completedAt)}` : "")]),
    "No subscriptions yet.");
}

function renderEvents(data) {
  const attempts = {};
  for (const a of data.attempts.items) (attempts[a.eventId] = attempts[a.eventId] || []).push(a);
  const events = data.events.items.slice(-EVENT_ROWS).reverse();
  if (!events.length) return h("p", { class: "muted" }, "No events yet.");
  return h("ol", { class: "timeline" }, events.map((e) => h("li", {},
    h("div", { class: "event" }, h("time", {}, when(e.occurredAt)), " ", h("strong", {}, e.eventType), " ",
      h("code", {}, e.eventId), " ", h("span", { class: "muted" }, e.clientId)),
    h("ol", { class: "attempts" }, (attempts[e.eventId] || []).map(attemptItem),
      (attempts[e.eventId] || []).length ? null : h("li", { class: "muted" }, "no attempt yet")))));
}

function attemptItem(a) {
  const result = a.statusCode !== null && a.statusCode !== undefined ? `HTTP ${a.statusCode}` : (a.error || "");
  return h("li", { class: `attempt ${a.outcome}` },
    `#${a.attempt} ${when(a.at)} → ${result} · ${Math.round(a.durationMs)} ms · `, badge(a.outcome),
    a.fault ? h("mark", { title: "injected by webhook chaos" }, `⚡ ${a.fault}`) : null,
    a.nextAttemptAt ? h("span", { class: "muted" }, ` next ${when(a.nextAttemptAt)}`) : null);
}

function renderDead(data) {
  return table(["Event", "Delivery", "Partner", "Attempts", ""], data.dead.items.map((d) => [
    h("code", {}, d.eventId), h("code", {}, d.deliveryId), d.clientId, d.attempts,
    h("button", { type: "button", onclick: (e) => act(e.currentTarget, `Redelivering ${d.eventId}`,
      () => api("POST", `/_mock/webhooks/events/${enc(d.eventId)}/redeliver`)) }, "Redeliver")]),
  "No dead deliveries.");
}

function renderPartners(data) {
  return data.partners.items.map((p) => {
    const chaos = data.chaos[p.clientId] || {};
    const endpoint = h("form", { class: "inline", "aria-label": `${p.clientId} webhook endpoint`,
      onsubmit: (e) => {
        e.preventDefault();
        const url = e.currentTarget.elements.url.value.trim();
        act(e.submitter, `Webhook endpoint of ${p.clientId} saved`,
          () => api("PUT", "/_mock/webhooks/endpoint", { clientId: p.clientId, url: url || null }));
      } },
    h("label", {}, "Webhook URL ", h("input", { name: "url", type: "url", value: p.webhookUrl || "",
      placeholder: "none: events are kept", size: 32 })), h("button", { type: "submit" }, "Save endpoint"));
    const chaosForm = h("form", { class: "inline", "aria-label": `${p.clientId} webhook chaos`,
      onsubmit: (e) => {
        e.preventDefault();
        const f = e.currentTarget.elements;
        const body = { duplicate: f.duplicate.checked, failAttempts: Number(f.failAttempts.value || 0),
          tamperShare: Number(f.tamperShare.value || 0) };
        if (f.reorderWindowSeconds.value) body.reorderWindowSeconds = Number(f.reorderWindowSeconds.value);
        act(e.submitter, `Webhook chaos of ${p.clientId} saved`,
          () => api("PUT", `/_mock/webhooks/chaos/${enc(p.clientId)}`, body));
      } },
    h("label", {}, h("input", { type: "checkbox", name: "duplicate", checked: !!chaos.duplicate }), " duplicate"),
    h("label", {}, "fail first ", h("input", { type: "number", name: "failAttempts", min: 0, max: 6,
      value: chaos.failAttempts || 0 })),
    h("label", {}, "reorder s ", h("input", { type: "number", name: "reorderWindowSeconds", min: 0, step: "any",
      value: chaos.reorderWindowSeconds || "" })),
    h("label", {}, "tamper share ", h("input", { type: "number", name: "tamperShare", min: 0, max: 1, step: "any",
      value: chaos.tamperShare || 0 })),
    h("button", { type: "submit" }, "Save chaos"));
    return h("div", { class: "partner" }, h("h3", {}, p.clientId, " ", h("span", { class: "muted" },
      `tenant ${p.tenantSlug}`)), endpoint, chaosForm);
  });
}

function renderJournal(data) {
  const rows = data.journal.items.slice().reverse();
  return table(["#", "At", "Call", "Partner", "Status", "ms", "Fault"], rows.map((r) => [
    String(r.seq), when(r.at), h("span", {}, h("strong", {}, r.method), " ", h("code", {}, r.path),
      r.operationId ? h("span", { class: "muted" }, ` ${r.operationId}`) : null),
    r.clientId || "—", badge(String(r.status), r.status >= 500 ? "bad" : r.status >= 400 ? "warn" : "good"),
    String(Math.round(r.durationMs)), r.fault ? h("mark", {}, `⚡ ${r.fault}`) : ""]),
  "No partner API calls yet.");
}

function renderFaults(data) {
  return table(["#", "Match", "Action", "Fired", "Remaining", ""], data.faults.items.map((f) => [
    String(f.id), Object.entries(f.match || {}).map(([k, v]) => `${k}=${v}`).join(" ") || "every call",
    `${f.action}${f.action.startsWith("error") ? ` ${f.status}` : ""}${f.latencyMs ? ` ${f.latencyMs} ms` : ""}`,
    String(f.fired), f.remaining === null ? "always" : String(f.remaining),
    h("button", { type: "button", class: "danger", onclick: (e) => act(e.currentTarget, `Removed fault rule ${f.id}`,
      () => api("DELETE", `/_mock/faults/${f.id}`)) }, "Delete")]),
  "No fault rules: every call is answered normally.");
}

const RENDERERS = { spv: renderSpv, subscriptions: renderSubscriptions, events: renderEvents, dead: renderDead,
  partners: renderPartners, journal: renderJournal, faults: renderFaults };
const INPUTS = ["spv", "subscriptions", "events", "dead", "partners", "journal", "faults"];

// ---- polling -------------------------------------------------------------------------------------------------

async function load() {
  const [clock, spv, subscriptions, events, attempts, dead, journal, faults, partners] = await Promise.all([
    api("GET", "/_mock/clock"), api("GET", "/_mock/admin/spv-requests"), api("GET", "/_mock/admin/subscriptions"),
    api("GET", "/_mock/webhooks/events"), api("GET", "/_mock/webhooks/deliveries"),
    api("GET", "/_mock/webhooks/dead-letter"), api("GET", `/_mock/requests?limit=${JOURNAL_ROWS}`),
    api("GET", "/_mock/faults"), api("GET", "/_mock/partners")]);
  const chaos = {};
  await Promise.all(partners.items.map(async (p) => {
    chaos[p.clientId] = await api("GET", `/_mock/webhooks/chaos/${enc(p.clientId)}`);
  }));
  return { clock, spv, subscriptions, events, attempts, dead, journal, faults, partners, chaos };
}

function sectionData(name, data) {
  if (name === "events") return { events: data.events, attempts: data.attempts };
  if (name === "partners") return { partners: data.partners, chaos: data.chaos };
  return { [name]: data[name] };
}

function render(data) {
  document.getElementById("clock-now").textContent = `${when(data.clock.now)} UTC`;
  document.getElementById("clock-mode").textContent = data.clock.mode === "scaled"
    ? `scaled ×${data.clock.scale}` : data.clock.mode;
  for (const name of INPUTS) {
    const slice = sectionData(name, data);
    const key = JSON.stringify(slice);
    const box = document.querySelector(`[data-render="${name}"]`);
    const editing = box.contains(document.activeElement) && /INPUT|SELECT|TEXTAREA/.test(document.activeElement.tagName);
    if (last[name] === key || editing) continue;
    box.replaceChildren(...[RENDERERS[name](slice)].flat());
    last[name] = key;
  }
}

let queue = Promise.resolve();
let timer = null;

function refresh() {
  queue = queue.then(async () => {
    clearTimeout(timer);
    const live = document.getElementById("live");
    try {
      render(await load());
      live.textContent = `live · ${new Date().toLocaleTimeString()}`;
      live.className = "";
    } catch (error) {
      live.textContent = `mock unreachable: ${error.message}`;
      live.className = "error";
    }
    timer = setTimeout(refresh, POLL_MS);
  });
  return queue;
}

// ---- forms ---------------------------------------------------------------------------------------------------

function parseDuration(text) {
  const raw = text.trim().toLowerCase();
  if (/^\d+(\.\d+)?$/.test(raw)) return Number(raw);
  const units = { d: 86400, h: 3600, m: 60, min: 60, s: 1 };
  let seconds = 0;
  const rest = raw.replace(/(\d+(?:\.\d+)?)\s*(d|h|min|m|s)/g, (_, n, unit) => { seconds += Number(n) * units[unit]; return ""; });
  if (rest.trim() || !raw) throw new Error(`cannot read ${JSON.stringify(text)} as a duration: try 90s, 5m, 2h30m or 1d`);
  return seconds;
}

function advance(button, seconds) {
  act(button, (r) => `Advanced to ${when(r.to)}: ${r.count} job(s) ran`,
    () => api("POST", "/_mock/clock/advance", { seconds }));
}

let rejecting = null;

function openReject(slug) {
  rejecting = slug;
  const dialog = document.getElementById("reject-dialog");
  document.getElementById("reject-slug").textContent = slug;
  dialog.querySelector("textarea").value = "";
  dialog.showModal();
}

function wire() {
  for (const button of document.querySelectorAll("[data-advance]")) {
    button.addEventListener("click", () => advance(button, Number(button.dataset.advance)));
  }
  document.getElementById("advance-form").addEventListener("submit", (e) => {
    e.preventDefault();
    try {
      advance(e.submitter, parseDuration(e.currentTarget.elements.duration.value));
    } catch (error) {
      say(error.message, true);
    }
  });
  document.getElementById("mode-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const f = e.currentTarget.elements;
    const body = { mode: f.mode.value };
    if (f.scale.value) body.scale = Number(f.scale.value);
    act(e.submitter, `Clock mode ${body.mode}`, () => api("PUT", "/_mock/clock", body));
  });
  document.getElementById("reject-dialog").addEventListener("close", (e) => {
    const dialog = e.currentTarget;
    const reason = dialog.querySelector("textarea").value.trim();
    if (dialog.returnValue === "confirm" && rejecting && reason) {
      const slug = rejecting;
      act(null, `Rejected ${slug}`, () => api("POST", `/_mock/admin/spv-requests/${enc(slug)}/reject`, { reason }));
    }
    rejecting = null;
  });
  document.getElementById("fault-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const f = e.currentTarget.elements;
    const match = {};
    for (const key of ["operationId", "method", "path"]) if (f[key].value.trim()) match[key] = f[key].value.trim();
    const rule = { match, action: f.action.value, status: Number(f.status.value || 503),
      times: f.times.value ? Number(f.times.value) : null, probability: Number(f.probability.value || 1) };
    if (f.latencyMs.value) rule.latencyMs = Number(f.latencyMs.value);
    act(e.submitter, (r) => `Added fault rule ${r.id}`, () => api("POST", "/_mock/faults", rule));
  });
  document.getElementById("scenario-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const name = e.currentTarget.elements.name.value;
    act(e.submitter, (r) => `Loaded scenario ${r.name} (seed ${r.seed})`,
      () => api("POST", `/_mock/scenarios/${enc(name)}/load`, {}));
  });
  document.getElementById("reset-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const keepPartners = e.currentTarget.elements.keepPartners.checked;
    act(e.submitter, "Reset done", () => api("POST", "/_mock/reset", { keepPartners }));
  });
}

async function loadStatic() {
  try {
    const [library, openapi] = await Promise.all([api("GET", "/_mock/scenarios"), api("GET", "/openapi.json")]);
    const select = document.getElementById("scenario-select");
    const describe = () => {
      const chosen = library.items.find((s) => s.name === select.value);
      document.getElementById("scenario-description").textContent = chosen ? chosen.description : "";
    };
    select.replaceChildren(...library.items.map((s) => h("option", { value: s.name }, s.name)));
    select.addEventListener("change", describe);
    describe();
    const ids = Object.values(openapi.paths).flatMap((ops) => Object.values(ops).map((op) => op.operationId));
    document.getElementById("operation-ids").replaceChildren(...ids.filter((id) => id).map((id) => h("option", { value: id })));
  } catch (error) {
    say(error.message, true);
  }
}

wire();
loadStatic();
refresh();
