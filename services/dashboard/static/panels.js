// Keys, webhook and jobs pages: progressive enhancement only (every form works without it).
// - [data-copy="<input id>"]: a Copy button, shown only where the clipboard can be written.
// - [data-once]: a submit button that disables itself once its form is sent (no double roll).
(function () {
  "use strict";

  function setupCopy(button) {
    var target = document.getElementById(button.getAttribute("data-copy"));
    if (!target || !navigator.clipboard || !window.isSecureContext) {
      // Without the async clipboard (plain HTTP off localhost) the field stays selectable.
      if (target) {
        target.addEventListener("focus", function () { target.select(); });
      }
      return;
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(target.value).then(function () {
        button.textContent = "Copied";
        button.setAttribute("aria-live", "polite");
        window.setTimeout(function () { button.textContent = "Copy"; }, 2000);
      }, function () {
        target.focus();
        target.select();
      });
    });
  }

  function setupOnce(button) {
    var form = button.form;
    if (!form) { return; }
    form.addEventListener("submit", function () {
      // After this turn, so the button's own name/value is still sent with the form.
      window.setTimeout(function () { button.disabled = true; }, 0);
    });
  }

  document.querySelectorAll("[data-copy]").forEach(setupCopy);
  document.querySelectorAll("button[data-once]").forEach(setupOnce);
  document.querySelectorAll(".secret-value").forEach(function (input) {
    input.addEventListener("focus", function () { input.select(); });
  });
})();
