// SpacePOS desktop UI: renders the View pushed by the runtime and calls its
// commands (see ../UI-CONTRACT.md). No business logic lives here.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const SCREENS = ["onboarding", "status", "updates", "spacefuel", "staff"];
  let last = null; // the View on screen
  let screen = null; // the chosen screen once onboarded
  let wasOnboarded = false;
  const busy = new Set(); // keys of the commands running

  // ---- words and numbers -------------------------------------------------
  const ERP = {
    online: "Online",
    offline: "Offline — sales are kept and sent when it is back",
    "credentials-refused": "Credentials refused — onboard again",
    unknown: "Not checked yet",
  };
  const BROKER = {
    online: "Online",
    offline: "Offline — the till catches up when it is back",
    none: "Not used on this till",
    unknown: "Not checked yet",
  };
  const SHORT = { online: "Online", offline: "Offline", "credentials-refused": "Refused", none: "Not used", unknown: "Not checked" };
  const SERVICE = { "not-installed": "Not installed", unknown: "Not checked yet" };

  const pad = (n) => String(n).padStart(2, "0");
  const cap = (w) => (w ? w.charAt(0).toUpperCase() + w.slice(1).replace(/-/g, " ") : "");
  const plural = (n, one, many) => n + " " + (n === 1 ? one : many);
  const mb = (bytes) => (bytes / 1048576).toFixed(1);

  // RFC 3339 to ms; chrono writes up to 9 fractional digits, keep 3 for any engine.
  const parse = (iso) => Date.parse(String(iso).replace(/(\.\d{3})\d+/, "$1"));

  // Local time as HH:MM:SS (or HH:MM), with the date in front when not today.
  function clock(iso, seconds = true) {
    if (!iso) return "—";
    const d = new Date(parse(iso));
    if (isNaN(d.getTime())) return String(iso);
    let t = pad(d.getHours()) + ":" + pad(d.getMinutes()) + (seconds ? ":" + pad(d.getSeconds()) : "");
    if (d.toDateString() !== new Date().toDateString()) {
      t = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + t;
    }
    return t;
  }

  function age(s) {
    s = Math.max(0, Math.floor(s));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min";
    return Math.floor(s / 3600) + " h";
  }

  const errText = (e) => (e && typeof e === "object" && e.message ? e.message : String(e || "Something went wrong. Try again."));

  // ---- small DOM helpers ---------------------------------------------------
  function text(el, t) {
    t = t == null ? "" : String(t);
    if (el.textContent !== t) el.textContent = t;
  }
  function show(el, on) {
    el.hidden = !on;
  }
  function make(tag, cls, t) {
    const el = document.createElement(tag);
    if (cls) el.className = cls;
    if (t != null) el.textContent = t;
    return el;
  }
  function setState(el, state, words) {
    el.dataset.state = state;
    text(el, words ? words[state] || cap(state) : cap(state));
  }
  function say(el, msg, isError) {
    text(el, msg);
    el.classList.toggle("error", !!isError);
  }
  function setButton(b, label, disabled, key) {
    const working = busy.has(key);
    text(b, working ? "Working…" : label);
    b.disabled = !!disabled || working;
    b.setAttribute("aria-busy", String(working));
  }
  // Keyed update of a list: existing rows (and their focused buttons) survive.
  function sync(box, items, keyOf, build, update) {
    const old = new Map(Array.from(box.children, (el) => [el.dataset.key, el]));
    items.forEach((item, i) => {
      const key = String(keyOf(item));
      let el = old.get(key);
      if (el) old.delete(key);
      else {
        el = build(item);
        el.dataset.key = key;
      }
      update(el, item);
      if (box.children[i] !== el) box.insertBefore(el, box.children[i] || null);
    });
    old.forEach((el) => el.remove());
  }
  const detailAt = (s) => [s.detail, s.at ? "as of " + clock(s.at) : ""].filter(Boolean).join(" · ");

  // ---- render --------------------------------------------------------------
  function render(view) {
    if (!view) return;
    if (last && view !== last && parse(view.updatedAt) < parse(last.updatedAt)) return; // stale
    last = view;
    if ($("app-message").dataset.kind === "view") show($("app-message"), false);

    if (!view.onboarded) screen = null;
    else if (!wasOnboarded || !screen) screen = "status";
    wasOnboarded = !!view.onboarded;
    const current = view.onboarded ? screen : "onboarding";
    SCREENS.forEach((name) => show($("screen-" + name), name === current));
    document.querySelectorAll("#nav button").forEach((b) => {
      if (b.dataset.screen === current) b.setAttribute("aria-current", "page");
      else b.removeAttribute("aria-current");
    });

    renderHeader(view);
    renderOnboarding(view);
    if (view.onboarded) {
      renderStatus(view);
      renderUpdates(view);
      renderSpaceFuel(view);
      renderStaff(view);
    }
  }

  function renderHeader(view) {
    const t = view.terminal;
    show($("identity"), !!(view.onboarded && t));
    if (t) {
      text($("identity"), [t.clientId, "Store " + t.storeNumber, "Terminal " + t.terminalNumber, t.company].filter(Boolean).join(" · "));
    }
    show($("nav"), !!view.onboarded);
    show($("links"), !!view.onboarded);
    setState($("link-erp"), view.erp.state, SHORT);
    setState($("link-broker"), view.broker.state, SHORT);
    $("link-erp").title = ERP[view.erp.state] || "";
  }

  function renderOnboarding(view) {
    const preset = view.apiPreset;
    show($("onboard-api-field"), !preset);
    show($("onboard-api"), !preset);
    show($("onboard-preset"), !!preset);
    text($("onboard-preset"), preset ? "ERP: " + preset : "");
    setButton($("onboard-submit"), "Set up till", false, "onboard");
  }

  function staffWords(s) {
    let w;
    if (s.state === "logged-in") w = (s.storeStaffId || "Staff") + " is logged in" + (s.expiresAt ? " until " + clock(s.expiresAt) : "");
    else if (s.state === "expired") w = "The staff session has expired — log in again";
    else if (s.state === "nobody") w = "Nobody is logged in";
    else w = "Staff login not checked yet";
    return s.detail ? w + " · " + s.detail : w;
  }

  function renderStatus(view) {
    setState($("erp-state"), view.erp.state, ERP);
    text($("erp-detail"), detailAt(view.erp));
    setState($("broker-state"), view.broker.state, BROKER);
    text($("broker-detail"), detailAt(view.broker));

    const ls = view.lastSync;
    $("last-sync").dataset.state = ls ? (ls.ok ? "ok" : "error") : "unknown";
    text($("last-sync"), ls ? clock(ls.at) + " · " + (ls.ok ? "OK" : "Failed") + (ls.detail ? ": " + ls.detail : "") : "Not yet");

    const p = view.presence;
    if (p && p.error) $("presence").dataset.state = "error";
    else delete $("presence").dataset.state;
    let pw = "Not used on this till";
    if (p && !p.on) pw = "Off";
    else if (p) {
      pw = ["On, every " + age(p.intervalSeconds), p.lastBeatAt && "last " + clock(p.lastBeatAt), p.nextBeatAt && "next " + clock(p.nextBeatAt), p.error]
        .filter(Boolean)
        .join(" · ");
    }
    text($("presence"), pw);

    const q = view.queue;
    const pending = $("queue-pending");
    pending.dataset.count = q.pending;
    pending.dataset.state = q.pending ? "waiting" : "ok";
    text(pending, q.pending ? plural(q.pending, "sale", "sales") + " waiting" : "No sales waiting");
    text($("queue-oldest"), q.pending && q.oldestPendingAgeSeconds != null ? ", oldest " + age(q.oldestPendingAgeSeconds) : "");
    const parked = $("queue-parked");
    parked.dataset.count = q.parked;
    parked.dataset.state = q.parked ? "error" : "ok";
    text(parked, q.parked ? plural(q.parked, "operation", "operations") + " parked — retry them below" : "None");
    text($("queue-done"), String(q.done));
    $("staff-state").dataset.state = view.staff.state;
    text($("staff-state"), staffWords(view.staff));

    show($("parked-empty"), view.parked.length === 0);
    sync($("parked-list"), view.parked, (op) => op.id, buildParked, updateParked);
    sync($("datasets"), view.datasets, (d) => d.name, buildDataset, updateDataset);
  }

  function buildParked(op) {
    const li = make("li", "parked-op");
    li.dataset.id = op.id;
    const main = make("div", "row-main");
    main.append(make("strong", "op-type"), make("span", "muted op-meta"), make("p", "parked-error"));
    const b = make("button", "retry");
    b.type = "button";
    b.addEventListener("click", () =>
      act("retry:" + op.id, $("status-message"), () => window.__TAURI__.core.invoke("retry_operation", { id: op.id }), (v) => {
        render(v);
        return "The operation is back in the queue.";
      }),
    );
    li.append(main, b);
    return li;
  }
  function updateParked(li, op) {
    text(li.querySelector(".op-type"), op.type);
    text(li.querySelector(".op-meta"), " · " + clock(op.createdAt) + " · " + plural(op.attempts, "attempt", "attempts"));
    const err = li.querySelector(".parked-error");
    err.classList.toggle("none", !op.lastError);
    text(err, op.lastError || "No error recorded");
    const b = li.querySelector(".retry");
    setButton(b, "Retry", false, "retry:" + op.id);
    b.setAttribute("aria-label", "Retry " + op.type + " from " + clock(op.createdAt));
  }

  function buildDataset(d) {
    const tr = make("tr");
    tr.dataset.dataset = d.name;
    const th = make("th", "name");
    th.scope = "row";
    tr.append(th, make("td", "entities num"), make("td", "sequence num"), make("td", "applied"));
    return tr;
  }
  function updateDataset(tr, d) {
    text(tr.querySelector(".name"), d.name);
    text(tr.querySelector(".entities"), String(d.entities));
    text(tr.querySelector(".sequence"), d.sequence == null ? "—" : String(d.sequence));
    text(tr.querySelector(".applied"), d.lastAppliedAt ? clock(d.lastAppliedAt) : "Not yet");
  }

  function renderUpdates(view) {
    show($("updates-note"), !!view.updatesNote);
    text($("updates-note"), view.updatesNote);
    show($("updates-empty"), view.updates.length === 0);
    sync($("updates-list"), view.updates, (u) => u.component, buildUpdate, updateUpdate);
  }

  function buildUpdate(u) {
    const c = u.component;
    const el = make("article", "update card");
    el.dataset.component = c;
    const versions = make("p", "versions");
    versions.append(make("span", "installed"), make("span", "offered"), make("span", "staged"));
    const dl = make("div", "download");
    dl.append(make("progress"), make("span", "download-text"));
    const buttons = make("div", "buttons");
    const install = make("button", "install primary");
    const snooze = make("button", "snooze");
    install.type = snooze.type = "button";
    buttons.append(install, snooze);
    el.append(make("h3", "name"), versions, make("p", "applying"), make("p", "snoozed"), make("p", "rejected error"));
    el.append(make("p", "notes"), dl, make("p", "waiting"), make("p", "install-note"), buttons);
    const out = $("updates-message");
    const nameOf = () => (last.updates.find((x) => x.component === c) || u).name;
    install.addEventListener("click", () =>
      act("install:" + c, out, () => window.__TAURI__.core.invoke("install_update", { component: c }), (r) => {
        const tail = r.detail ? ": " + r.detail : ".";
        return r.result === "installing" ? "Installing " + nameOf() + tail : nameOf() + " will install at a safe moment" + tail;
      }),
    );
    snooze.addEventListener("click", () =>
      act("snooze:" + c, out, () => window.__TAURI__.core.invoke("snooze_update", { component: c }), (r) => {
        const left = r.left === 0 ? "no snoozes" : plural(r.left, "snooze", "snoozes");
        return nameOf() + " snoozed until " + clock(r.until, false) + " (" + left + " left)";
      }),
    );
    return el;
  }
  function updateUpdate(el, u) {
    const q = (sel) => el.querySelector(sel);
    text(q(".name"), u.name);
    text(q(".installed"), u.installed ? "Installed " + u.installed : "Not installed");
    text(q(".offered"), u.offered ? "Offered " + u.offered : "No new version offered");
    show(q(".staged"), !!u.staged);
    text(q(".staged"), u.staged && u.staged !== u.offered ? "Staged " + u.staged : "Staged");
    const line = (sel, on, t) => {
      show(q(sel), !!on);
      text(q(sel), on ? t : "");
    };
    line(".applying", u.applying, "Installing " + u.applying + "…");
    line(".snoozed", u.snoozedUntil, "Snoozed until " + clock(u.snoozedUntil));
    line(".rejected", u.lastRejected, "Last release refused: " + u.lastRejected);
    line(".notes", u.notes, u.notes);
    line(".waiting", u.waitingFor, "Waiting for a safe moment: " + u.waitingFor);
    line(".install-note", u.installNote, u.installNote);
    const d = u.download;
    show(q(".download"), !!d);
    if (d) {
      const bar = q("progress");
      bar.setAttribute("aria-label", "Download of " + u.name);
      if (d.total) {
        bar.max = d.total;
        bar.value = d.bytes;
      } else bar.removeAttribute("value");
      text(q(".download-text"), d.total ? mb(d.bytes) + " of " + mb(d.total) + " MB" : mb(d.bytes) + " MB");
    }
    setButton(q(".install"), "Install now", !u.canInstall, "install:" + u.component);
    setButton(q(".snooze"), "Snooze (" + u.snoozesLeft + " left)", !u.canSnooze, "snooze:" + u.component);
  }

  function renderSpaceFuel(view) {
    const sf = view.spacefuel;
    show($("sf-none"), !sf);
    show($("sf-body"), !!sf);
    if (!sf) return;
    text($("sf-active-slot"), sf.activeSlot ? cap(sf.activeSlot) : "None");
    text($("sf-active-version"), sf.activeVersion || "—");
    text($("sf-blue"), sf.blue || "Empty");
    text($("sf-green"), sf.green || "Empty");
    text($("sf-switch"), sf.switch || "None");
    setState($("sf-service"), sf.service, SERVICE);
    const ready = sf.ready === true ? "ready" : sf.ready === false ? "not ready yet" : "";
    text($("sf-service-detail"), [sf.serviceDetail, ready].filter(Boolean).join(" · "));
    text($("sf-unpaid"), String(sf.unpaidSales));
    show($("pumps-empty"), sf.pumps.length === 0);
    sync($("pumps"), sf.pumps, (p) => p.id, buildPump, updatePump);
  }
  function buildPump(p) {
    const li = make("li", "pump");
    li.dataset.pump = p.id;
    li.append(make("strong", "pump-name", "Pump " + p.id), make("span", "pump-state"), make("span", "pump-detail"));
    return li;
  }
  function updatePump(li, p) {
    li.dataset.state = p.state;
    setState(li.querySelector(".pump-state"), p.state);
    text(li.querySelector(".pump-detail"), p.detail);
  }

  function renderStaff(view) {
    const s = view.staff;
    $("staff-current").dataset.state = s.state;
    text($("staff-current"), staffWords(s));
    setButton($("staff-login"), "Log in", false, "login");
    setButton($("staff-logout"), "Log out", s.state === "nobody", "logout");
  }

  // ---- commands ------------------------------------------------------------
  // Runs a command once at a time per key; `done` turns the result into a
  // message for `out` (or ""); a rejection shows the ErrorDto's message.
  async function act(key, out, call, done) {
    if (busy.has(key)) return;
    busy.add(key);
    say(out, "");
    render(last);
    try {
      say(out, done(await call()) || "");
    } catch (e) {
      say(out, errText(e), true);
    } finally {
      busy.delete(key);
      render(last);
    }
  }

  function wire() {
    const invoke = (name, args) => window.__TAURI__.core.invoke(name, args);
    document.querySelectorAll("#nav button").forEach((b) =>
      b.addEventListener("click", () => {
        screen = b.dataset.screen;
        render(last);
      }),
    );
    $("onboard-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const code = $("onboard-code").value.trim();
      const api = last && last.apiPreset ? null : $("onboard-api").value.trim() || null;
      act("onboard", $("onboard-error"), () => invoke("onboard", { code, api }), (v) => {
        render(v);
        if (v && v.onboarded) {
          $("onboard-code").value = "";
          $("nav-status").focus();
        }
        return "";
      });
    });
    $("staff-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      if (busy.has("login")) return;
      const staff = $("staff-code").value.trim();
      const pin = $("staff-pin").value;
      $("staff-pin").value = "";
      act("login", $("staff-error"), () => invoke("staff_login", { staff, pin }), (v) => {
        render(v);
        $("staff-code").value = "";
        return "";
      });
    });
    $("staff-logout").addEventListener("click", () =>
      act("logout", $("staff-error"), () => invoke("staff_logout"), (v) => {
        render(v);
        return "";
      }),
    );
  }

  function banner(msg, kind) {
    const el = $("app-message");
    el.dataset.kind = kind;
    text(el, msg);
    show(el, true);
  }

  async function start() {
    wire();
    const T = window.__TAURI__;
    if (!T || !T.core || !T.event) {
      banner("This window only works inside the SpacePOS app.", "env");
      return;
    }
    try {
      await T.event.listen("view", (e) => render(e.payload));
    } catch (e) {
      banner("Live updates are off: " + errText(e) + " Restart SpacePOS.", "listen");
    }
    try {
      render(await T.core.invoke("view"));
    } catch (e) {
      banner(errText(e), "view");
    }
  }

  start();
})();
