// Offline capture: intake and visit records made without a network wait on the phone (IndexedDB), are
// shown as "waiting to send" (待发送) and are sent when the network returns. Each record carries a one-time
// key (intake_key / record_key) made on the phone, so sending it again never makes a second case or visit.
// A record the server refuses (the visit was reassigned or already recorded, a field is wrong) stays on
// the phone with the server's words until the person sends it again or removes it: nothing is dropped.
// The words come from <template id="offline-text"> in base.html (translated there). No inline script: CSP.
(function () {
  "use strict";

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/sw.js", {scope: "/"}).catch(function () { return null; });
    if (location.pathname === "/login" && navigator.serviceWorker.controller) {
      navigator.serviceWorker.controller.postMessage("forget-pages");  // logged out: forget cached pages
    }
  }
  var template = document.getElementById("offline-text");
  if (!template || !window.indexedDB) { return; }
  var user = template.dataset.user;
  var words = {};
  template.content.querySelectorAll("[data-k]").forEach(function (node) {
    words[node.dataset.k] = node.textContent;
  });
  function say(key, values) {
    return (words[key] || key).replace(/%\((\w+)\)s/g, function (_m, name) { return values[name]; });
  }

  // --- a small IndexedDB wrapper: one store, records keyed by their one-time key ------------------------
  function open() {
    return new Promise(function (resolve, reject) {
      var request = indexedDB.open("gridloop", 1);
      request.onupgradeneeded = function () { request.result.createObjectStore("outbox", {keyPath: "key"}); };
      request.onsuccess = function () { resolve(request.result); };
      request.onerror = function () { reject(request.error); };
    });
  }
  function store(mode, act) {
    return open().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction("outbox", mode);
        var request = act(tx.objectStore("outbox"));
        tx.oncomplete = function () { db.close(); resolve(request ? request.result : undefined); };
        tx.onerror = tx.onabort = function () { db.close(); reject(tx.error); };
      });
    });
  }
  var outbox = {
    all: function () { return store("readonly", function (s) { return s.getAll(); }); },
    put: function (record) { return store("readwrite", function (s) { return s.put(record); }); },
    remove: function (key) { return store("readwrite", function (s) { return s.delete(key); }); }
  };

  function newKey() {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID(); }
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function summary(form, kind) {
    if (form.dataset.summary) { return form.dataset.summary; }
    var name = form.elements.resident_name ? form.elements.resident_name.value : "";
    var what = form.elements.description ? form.elements.description.value : "";
    return (name ? name + " · " : "") + what.slice(0, 40) || say(kind, {});
  }

  // --- keeping a record made offline --------------------------------------------------------------------
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var kind = form.dataset && form.dataset.offline;
    if (!kind || navigator.onLine) { return; }  // online: the form goes to the server as usual
    event.preventDefault();
    var fields = [];
    new FormData(form).forEach(function (value, name) {
      if (name === "csrf_token" || name === "intake_key" || name === "record_key") { return; }
      if (value instanceof File && !value.size) { return; }  // no photo chosen
      fields.push([name, value]);
    });
    var record = {key: newKey(), kind: kind, url: location.pathname, fields: fields, user: user,
                  summary: summary(form, kind), created: new Date().toISOString(), state: "waiting", message: ""};
    outbox.put(record).then(function () {
      form.reset();
      notice(say("saved", {}));
      render();
    });
  });

  // --- sending what waits ---------------------------------------------------------------------------------
  var sending = false;
  var sent = [];
  function token() {
    // Any signed-in page carries the session's CSRF token (the log-out form's).
    return fetch("/", {credentials: "same-origin"}).then(function (response) {
      if (new URL(response.url).pathname === "/login") { return null; }
      return response.text().then(function (html) {
        var field = new DOMParser().parseFromString(html, "text/html").querySelector("input[name=csrf_token]");
        return field ? field.value : null;
      });
    });
  }
  function sendOne(record, csrf) {
    var body = new FormData();
    record.fields.forEach(function (pair) { body.append(pair[0], pair[1]); });
    body.append("csrf_token", csrf);
    body.append(record.kind === "case" ? "intake_key" : "record_key", record.key);
    if (record.kind === "case") { body.set("duplicates", "confirmed"); }  // checked by the leader later
    return fetch(record.url, {method: "POST", body: body, credentials: "same-origin"}).then(function (response) {
      var path = new URL(response.url).pathname;
      if (path === "/login") { return "login"; }
      if (response.ok && response.redirected) {
        sent.push({summary: record.summary, kind: record.kind, url: path});
        return outbox.remove(record.key).then(function () { return "sent"; });
      }
      if (response.status >= 500 || response.status === 429) {
        return "offline";  // the server is busy or restarting: the record keeps waiting for the next try
      }
      return response.text().then(function (html) {
        var page = new DOMParser().parseFromString(html, "text/html");
        var errors = Array.prototype.map.call(page.querySelectorAll("main .error"), function (node) {
          return node.textContent.trim();
        }).filter(Boolean);
        record.state = "conflict";
        record.message = errors.join(" ") || (response.status === 403 || response.status === 404
          ? say("reassigned", {}) : "HTTP " + response.status);
        return outbox.put(record).then(function () { return "conflict"; });
      });
    }, function () { return "offline"; });
  }
  function sendAll() {
    if (sending || !navigator.onLine) { return Promise.resolve(); }
    sending = true;
    return outbox.all().then(adopt).then(function (records) {
      var mine = records.filter(function (r) { return r.user === user && r.state === "waiting"; });
      if (!mine.length) { return null; }
      render(true);
      return token().then(function (csrf) {
        if (!csrf) { notice(say("login", {})); return null; }
        return mine.reduce(function (previous, record) {
          return previous.then(function (outcome) {
            return outcome === "offline" || outcome === "login" ? outcome : sendOne(record, csrf);
          });
        }, Promise.resolve(null));
      });
    }).catch(function () { return null; }).then(function () {
      sending = false;
      render();
    });
  }

  // --- showing what waits -------------------------------------------------------------------------------
  function notice(message) {
    var main = document.querySelector("main");
    var p = document.createElement("p");
    p.className = "flash offline-notice";
    p.setAttribute("role", "status");
    p.textContent = message;
    main.insertBefore(p, main.firstChild);
  }
  function button(label, action) {
    var b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.addEventListener("click", action);
    return b;
  }
  function adopt(records) {
    // Records the service worker kept from a failed send belong to the person whose page this is.
    return Promise.all(records.filter(function (r) { return !r.user; }).map(function (r) {
      r.user = user;
      return outbox.put(r);
    })).then(function () { return records; });
  }
  function render(busy) {
    outbox.all().then(adopt).then(function (all) {
      // Another person's records on a shared phone: counted, never shown (they name residents).
      var records = all.filter(function (r) { return r.user === user; });
      var others = all.length - records.length;
      var box = document.getElementById("outbox");
      if (!box) {
        box = document.createElement("section");
        box.id = "outbox";
        box.className = "card outbox";
        var main = document.querySelector("main");
        main.insertBefore(box, main.firstChild);
      }
      box.textContent = "";
      box.hidden = !records.length && !sent.length && !others;
      if (others) {
        var note = document.createElement("p");
        note.className = "muted others";
        note.textContent = say("others", {count: others});
        box.appendChild(note);
      }
      if (records.length) {
        var h = document.createElement("h2");
        h.textContent = say("waiting", {}) + " ";
        var count = document.createElement("span");
        count.className = "count";
        count.textContent = String(records.length);
        h.appendChild(count);
        box.appendChild(h);
        var list = document.createElement("ul");
        list.className = "outbox-list";
        records.forEach(function (record) {
          var li = document.createElement("li");
          li.className = record.state;
          li.dataset.key = record.key;
          var kind = document.createElement("strong");
          kind.textContent = say(record.kind, {}) + " ";
          li.appendChild(kind);
          li.appendChild(document.createTextNode(record.summary + " · " +
            new Date(record.created).toLocaleString(document.documentElement.lang || undefined) + " "));
          var state = document.createElement("span");
          state.className = "badge " + (record.state === "waiting" ? "due-soon" : "overdue");
          state.textContent = record.state === "waiting" ? (busy ? say("sending", {}) : say("waiting", {}))
            : say("refused", {});
          li.appendChild(state);
          if (record.message) {
            var why = document.createElement("p");
            why.className = "error";
            why.textContent = record.message;
            li.appendChild(why);
          }
          var actions = document.createElement("div");
          actions.className = "outbox-actions";
          if (record.state !== "waiting") {
            actions.appendChild(button(say("retry", {}), function () {
              record.state = "waiting";
              record.message = "";
              outbox.put(record).then(sendAll);
            }));
            if (record.kind === "visit") {
              var link = document.createElement("a");
              link.href = record.url;
              link.textContent = say("open", {});
              actions.appendChild(link);
            }
          }
          actions.appendChild(button(say("remove", {}), function () {
            if (window.confirm(say("confirm", {}))) { outbox.remove(record.key).then(function () { render(); }); }
          }));
          li.appendChild(actions);
          list.appendChild(li);
        });
        box.appendChild(list);
        if (navigator.onLine) { box.appendChild(button(say("send", {}), sendAll)); }
      }
      sent.forEach(function (done) {
        var p = document.createElement("p");
        p.className = "flash sent";
        var a = document.createElement("a");
        a.href = done.url;
        a.textContent = say(done.kind, {}) + " " + done.summary;
        p.appendChild(document.createTextNode(say("sent", {}) + " "));
        p.appendChild(a);
        box.appendChild(p);
      });
    });
  }

  // The day's visit pages and the intake form, fetched while there is a network, open without one.
  function prefetch() {
    if (!navigator.onLine || !navigator.serviceWorker || !navigator.serviceWorker.controller) { return; }
    if (location.pathname !== "/") { return; }
    var urls = ["/cases/new"];
    document.querySelectorAll("main a[href^='/visits/']").forEach(function (a) { urls.push(a.getAttribute("href")); });
    urls.forEach(function (url) {
      fetch(url, {credentials: "same-origin", headers: {"X-GridLoop-Prefetch": "1"}}).catch(function () { return null; });
    });
  }
  if (navigator.serviceWorker) {
    navigator.serviceWorker.addEventListener("controllerchange", prefetch);
  }
  window.addEventListener("online", function () {
    document.querySelectorAll(".offline-notice").forEach(function (node) { node.remove(); });
    render();
    sendAll();
  });
  window.addEventListener("offline", function () { render(); });
  render();
  prefetch();
  sendAll();
  window.setInterval(sendAll, 60000);  // a busy server (503, 429) or a flaky network: try again each minute
}());
