/* GridLoop: small helpers of the public pages, the grid map and the intake form. No libraries. */
(function () {
  "use strict";

  /* Any [data-print] button prints the page (the poster, a desk session's summary). */
  document.addEventListener("click", function (event) {
    var target = event.target.closest ? event.target.closest("[data-print]") : null;
    if (target) { window.print(); }
  });

  /* "Use my location": ask the phone where it is, then the server for the nearest building, and choose it. */
  function locate(button) {
    var select = document.getElementById(button.getAttribute("data-select"));
    var output = document.getElementById(button.getAttribute("data-output"));
    function say(text) { if (output) { output.textContent = text; } }
    if (!navigator.geolocation) { say(button.getAttribute("data-unsupported")); return; }
    say(button.getAttribute("data-asking"));
    navigator.geolocation.getCurrentPosition(function (position) {
      var url = button.getAttribute("data-url") + "?lat=" + encodeURIComponent(position.coords.latitude) +
        "&lon=" + encodeURIComponent(position.coords.longitude);
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) { return response.json(); })
        .then(function (found) {
          if (!found.building_id) { say(found.message || button.getAttribute("data-none")); return; }
          if (select) {
            select.value = String(found.building_id);
            select.dispatchEvent(new Event("change", { bubbles: true }));
          }
          say(found.message);
        })
        .catch(function () { say(button.getAttribute("data-failed")); });
    }, function () { say(button.getAttribute("data-denied")); }, { enableHighAccuracy: true, timeout: 15000 });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var buttons = document.querySelectorAll("button[data-locate]");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].hidden = false;
      buttons[i].addEventListener("click", function (event) { locate(event.currentTarget); });
    }
  });
}());
