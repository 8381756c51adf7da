// GridLoop's service worker: the app opens without a network, and intake and visit records made
// offline wait on the phone (static/offline.js keeps them in IndexedDB and sends them later).
//
// What is cached: GridLoop's own static files, and the two pages a record is made on — the intake form
// (/cases/new) and the visit pages (/visits/<id>) — as last loaded with a network. Nothing else: other
// pages hold residents' data and are always fetched (no-store), offline they show a short notice.
"use strict";

var VERSION = "gridloop-v1";  // raise it to drop every cache of an older worker
var ASSETS = "assets-" + VERSION;
var PAGES = "pages-" + VERSION;
var PRECACHE = [
  "/static/gridloop.css", "/static/menu.js", "/static/offline.js", "/static/intake.js",
  "/static/icons/icon-192.png", "/static/icons/icon-512.png", "/manifest.webmanifest"
];
var OFFLINE_PAGE = /^\/(cases\/new|visits\/\d+)$/;

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(ASSETS).then(function (cache) {
    // One missing file must not stop the worker from installing.
    return Promise.all(PRECACHE.map(function (url) {
      return cache.add(new Request(url, {cache: "reload"})).catch(function () { return null; });
    }));
  }).then(function () { return self.skipWaiting(); }));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (name) {
      return name !== ASSETS && name !== PAGES;
    }).map(function (name) { return caches.delete(name); }));
  }).then(function () { return self.clients.claim(); }));
});

self.addEventListener("message", function (event) {
  // Logging out forgets the cached pages (they name households); the waiting records stay.
  if (event.data === "forget-pages") {
    event.waitUntil(caches.delete(PAGES));
  }
});

function offlineNotice() {
  return new Response(
    "<!doctype html><meta charset=utf-8><meta name=viewport content='width=device-width, initial-scale=1'>" +
    "<link rel=stylesheet href='/static/gridloop.css'><main><section class=card><h1>离线 Offline</h1>" +
    "<p>没有网络，此页面无法打开。可以离线登记诉求和记录走访，联网后自动发送。</p>" +
    "<p>No network: this page cannot open. Cases and visits can be recorded offline and are sent when " +
    "the network returns.</p><p><a href='/cases/new'>登记诉求 New case</a> · <a href='/'>待办 Inbox</a></p>" +
    "</section></main>",
    {status: 503, headers: {"Content-Type": "text/html; charset=utf-8"}});
}

// A record sent while the phone believed it had a network, and the network failed: kept in the same
// outbox as static/offline.js keeps records (IndexedDB "gridloop", store "outbox"), under the form's own
// one-time key, so if the server did get it after all, sending it again changes nothing.
function keep(path, data) {
  var fields = [];
  data.forEach(function (value, name) {
    if (name === "csrf_token" || name === "intake_key" || name === "record_key") { return; }
    if (typeof value !== "string" && !value.size) { return; }  // no photo chosen
    fields.push([name, value]);
  });
  var kind = path === "/cases/new" ? "case" : "visit";
  var name = data.get("resident_name") || "";
  var record = {
    key: data.get("intake_key") || data.get("record_key") || self.crypto.randomUUID(),
    kind: kind, url: path, fields: fields, user: null,  // the page that shows it next gives it its person
    summary: kind === "case" ? (name ? name + " · " : "") + String(data.get("description") || "").slice(0, 40)
      : String(data.get("note") || "").slice(0, 40),
    created: new Date().toISOString(), state: "waiting", message: ""
  };
  return new Promise(function (resolve, reject) {
    var open = indexedDB.open("gridloop", 1);
    open.onupgradeneeded = function () { open.result.createObjectStore("outbox", {keyPath: "key"}); };
    open.onerror = function () { reject(open.error); };
    open.onsuccess = function () {
      var tx = open.result.transaction("outbox", "readwrite");
      tx.objectStore("outbox").put(record);
      tx.oncomplete = function () { open.result.close(); resolve(); };
      tx.onerror = function () { open.result.close(); reject(tx.error); };
    };
  });
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) {
    return;  // other sites: never touched
  }
  if (request.method === "POST" && request.mode === "navigate" && OFFLINE_PAGE.test(url.pathname)) {
    var copy = request.clone();
    event.respondWith(fetch(request).catch(function () {
      return copy.formData().then(function (data) { return keep(url.pathname, data); }).then(function () {
        return Response.redirect(url.pathname, 303);  // the cached form again, with the record waiting
      });
    }));
    return;
  }
  if (request.method !== "GET") {
    return;  // every other write goes straight to the network
  }
  if (url.pathname.indexOf("/static/") === 0 || url.pathname === "/manifest.webmanifest") {
    // Local assets: the network when there is one (a new deployment's files), else the cache.
    event.respondWith(fetch(request).then(function (response) {
      if (response.ok) {
        var copy = response.clone();
        caches.open(ASSETS).then(function (cache) { cache.put(request, copy); });
      }
      return response;
    }).catch(function () {
      return caches.match(request, {ignoreSearch: true});
    }));
    return;
  }
  if (request.mode !== "navigate" && request.headers.get("X-GridLoop-Prefetch") !== "1") {
    return;
  }
  if (OFFLINE_PAGE.test(url.pathname) && !url.search) {
    // The pages records are made on: the network first; offline, the copy from the last visit.
    event.respondWith(fetch(request).then(function (response) {
      if (response.ok && !response.redirected) {
        var copy = response.clone();
        caches.open(PAGES).then(function (cache) { cache.put(url.pathname, copy); });
      }
      return response;
    }).catch(function () {
      return caches.open(PAGES).then(function (cache) {
        return cache.match(url.pathname);
      }).then(function (cached) { return cached || offlineNotice(); });
    }));
    return;
  }
  event.respondWith(fetch(request).catch(offlineNotice));
});
