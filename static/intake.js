// The intake's resident look-up: typing a phone lists that resident's open and recent cases
// (GET /residents/lookup?phone=..., permission-scoped on the server). No inline script: the CSP forbids it.
(function () {
  "use strict";
  function start() {
    var box = document.getElementById("resident-lookup");
    var phone = document.getElementById("resident_phone");
    if (!box || !phone || !window.fetch) { return; }
    var list = box.querySelector("[data-list]");
    var more = box.querySelector("[data-more]");
    var timer = null;
    var asked = "";

    function show(data) {
      list.textContent = "";
      if (!data.cases || !data.cases.length) { box.hidden = true; return; }
      data.cases.forEach(function (c) {
        var item = document.createElement("li");
        var link = document.createElement("a");
        link.href = c.url;
        link.target = "_blank";
        link.rel = "noopener";
        link.textContent = c.number;
        item.appendChild(link);
        item.appendChild(document.createTextNode(" " + c.status + " · " + c.category + " · " + c.building));
        var text = document.createElement("div");
        text.className = "muted";
        text.textContent = c.description;
        item.appendChild(text);
        list.appendChild(item);
      });
      if (data.more_url) { more.href = data.more_url; }
      box.hidden = false;
    }

    function ask() {
      var value = phone.value.trim();
      if (value === asked) { return; }
      asked = value;
      if (value.replace(/\D/g, "").length < 7) { box.hidden = true; return; }
      fetch(box.dataset.url + "?phone=" + encodeURIComponent(value), {credentials: "same-origin",
        headers: {"Accept": "application/json"}})
        .then(function (r) { return r.ok ? r.json() : {cases: []}; })
        .then(function (data) { if (asked === value) { show(data); } })
        .catch(function () { box.hidden = true; });
    }

    phone.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(ask, 300);
    });
    phone.addEventListener("change", ask);
    if (phone.value) { ask(); }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
