// Reply templates (常用语): one click puts a template's text into its form's text area.
// {name} becomes the resident's name and {number} the case number (the intake form: the name typed so far).
// Loaded as a file (the Content Security Policy allows no inline script).
(function () {
  "use strict";

  function fill(text, box) {
    var nameInput = document.getElementById("resident_name");
    var name = box.dataset.name || (nameInput ? nameInput.value.trim() : "");
    return text.split("{name}").join(name).split("{number}").join(box.dataset.number || "");
  }

  function insert(button) {
    var box = button.closest(".reply-templates");
    var area = box && document.getElementById(box.dataset.target);
    if (!area) { return; }
    var text = fill(button.dataset.text || "", box);
    var start = area.selectionStart, end = area.selectionEnd;
    if (document.activeElement === area || (area.value && start !== area.value.length)) {
      area.setRangeText(text, start, end, "end");
    } else {
      area.value = area.value ? area.value.replace(/\s*$/, "\n") + text : text;
    }
    area.dispatchEvent(new Event("input", { bubbles: true }));
    area.focus();
  }

  // At intake the templates follow the chosen category (those for every category always show).
  function follow(select) {
    document.querySelectorAll(".reply-templates .reply-template").forEach(function (button) {
      var category = button.dataset.category;
      button.hidden = Boolean(category) && category !== select.value;
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest(".reply-template");
    if (button) { event.preventDefault(); insert(button); }
  });
  var category = document.getElementById("category");
  if (category && document.querySelector(".reply-templates")) {
    category.addEventListener("change", function () { follow(category); });
    follow(category);
  }
}());
