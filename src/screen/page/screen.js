// The warning screen: renders each view the server sends on /events.
// EventSource reconnects by itself (the server asks for 1 s), so the page
// survives a server restart without a reload. Nothing here writes.
"use strict";

let view = null;
let offset = 0; // server time minus this browser's, from the last view

const $ = (id) => document.getElementById(id);

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function span(secs) {
  if (secs < 0) secs = 0;
  const h = Math.floor(secs / 3600), m = Math.floor((secs % 3600) / 60), s = Math.floor(secs % 60);
  if (h > 0) return `${h} h ${String(m).padStart(2, "0")} min`;
  if (m > 0) return `${m} min ${String(s).padStart(2, "0")} s`;
  return `${s} s`;
}

function hhmmss(ms) {
  return new Date(ms).toISOString().substring(11, 19) + " UTC";
}

function now() {
  return Date.now() + offset;
}

function renderHealth(h) {
  const box = $("health");
  if (h.problem) {
    box.className = "health bad";
    box.textContent = "STORE: " + h.problem;
  } else {
    box.className = "health ok";
    const age = h.checkpoint_age_secs == null ? "" : ` · newest entry ${span(h.checkpoint_age_secs)} ago`;
    box.textContent = `log ${h.log_size.toLocaleString("en")} entries · checkpoint ${h.checkpoint_size.toLocaleString("en")}${age}`;
  }
}

function renderAlerts(alerts) {
  const list = $("alerts");
  list.replaceChildren();
  for (const a of alerts) {
    const li = el("li", a.severity);
    li.dataset.alert = a.id;
    li.append(el("span", "sev", a.severity));
    li.append(el("span", "rule", " " + a.rule + (a.subject ? " · " + a.subject : "")));
    li.append(el("span", "age", span((now() - a.raised_at_ms) / 1000) + " ago"));
    if (a.state !== "open") li.append(el("span", "state", a.state));
    li.append(el("div", "summary", a.summary));
    list.append(li);
  }
  $("alert-count").textContent = alerts.length;
  $("no-alerts").hidden = alerts.length > 0;
}

function renderGrants(grants) {
  const body = $("grants");
  body.replaceChildren();
  for (const g of grants) {
    const tr = el("tr");
    tr.dataset.grant = g.id;
    if (g.break_glass) tr.className = "break-glass";
    tr.append(el("td", "who", (g.break_glass ? "BREAK-GLASS " : "") + g.holder));
    tr.append(el("td", "tenant", g.tenant));
    const left = (g.expires_at_ms - now()) / 1000;
    const td = el("td", "left" + (left < 900 ? " soon" : ""), span(left));
    td.dataset.expires = g.expires_at_ms;
    tr.append(td);
    tr.append(el("td", "why", g.reason + (g.ticket ? " (" + g.ticket + ")" : "")));
    body.append(tr);
  }
  $("grant-count").textContent = grants.length;
  $("no-grants").hidden = grants.length > 0;
}

function renderEvents(events) {
  const list = $("events");
  list.replaceChildren();
  for (const e of events) {
    const li = el("li");
    li.append(el("span", "t", hhmmss(e.at_ms)));
    li.append(el("span", "k", e.kind));
    li.append(el("span", "a", e.actor + (e.tenant ? " → " + e.tenant : "")));
    list.append(li);
  }
}

function render(v) {
  view = v;
  offset = v.now_ms - Date.now();
  $("screen-name").textContent = "screen/" + v.screen;
  renderHealth(v.health);
  renderAlerts(v.alerts);
  renderGrants(v.grants);
  renderEvents(v.events);
  tick();
  document.body.dataset.ready = "1";
}

// Time left and the clock move every second between views.
function tick() {
  $("clock").textContent = hhmmss(now());
  for (const td of document.querySelectorAll("td.left")) {
    const left = (Number(td.dataset.expires) - now()) / 1000;
    td.textContent = span(left);
    td.classList.toggle("soon", left < 900);
  }
}

function connect() {
  const source = new EventSource("/events");
  source.addEventListener("view", (m) => {
    $("connection").hidden = true;
    render(JSON.parse(m.data));
  });
  source.addEventListener("signed-out", () => {
    source.close();
    window.location.href = "/pair";
  });
  source.onerror = () => {
    $("connection").hidden = false;
    // A 401 (revoked while the server was down) closes the source for
    // good: check the session, go to pairing if it is gone.
    if (source.readyState === EventSource.CLOSED) {
      fetch("/api/view").then((r) => {
        if (r.status === 401) window.location.href = "/pair";
        else setTimeout(connect, 2000);
      }, () => setTimeout(connect, 2000));
    }
  };
}

setInterval(tick, 1000);
tick();
connect();
