// The return page while a paid checkout waits for the provider's confirmation: look again
// every 2 seconds, up to 15 times. Without script the page says to reload; nothing depends on it.
(function () {
  "use strict";
  var status = document.getElementById("checkout-status");
  if (!status || status.getAttribute("data-pending") !== "true") {
    return;
  }
  var key = "clipmix-return-" + location.search;
  var tries = Number(sessionStorage.getItem(key) || "0");
  if (tries >= 15) {
    status.insertAdjacentHTML(
      "beforeend",
      "<p class=\"muted small\">Still waiting for the confirmation. Reload this page in a minute.</p>"
    );
    return;
  }
  sessionStorage.setItem(key, String(tries + 1));
  setTimeout(function () { location.reload(); }, 2000);
})();
