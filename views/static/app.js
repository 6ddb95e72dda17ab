// wabot portal: live link panel, QR countdown, copy buttons. Plain script,
// no build step; every page works without it (the link page falls back to
// a meta refresh).
(function () {
  "use strict";

  function startCountdowns(root) {
    root.querySelectorAll("[data-countdown]").forEach(function (el) {
      var until = Date.parse(el.getAttribute("data-countdown"));
      if (isNaN(until)) return;
      var tick = function () {
        if (!el.isConnected) return;
        var left = Math.max(0, Math.round((until - Date.now()) / 1000));
        el.textContent = String(left);
        if (left > 0) setTimeout(tick, 1000);
      };
      tick();
    });
  }

  function bindCopy(root) {
    root.querySelectorAll("[data-copy]").forEach(function (btn) {
      btn.addEventListener("click", function () {
        var text = btn.getAttribute("data-copy");
        if (navigator.clipboard) {
          navigator.clipboard.writeText(text).then(function () { btn.textContent = "Copied"; });
        }
      });
    });
  }

  // The link panel follows the server: each "panel" event carries the
  // panel's new HTML, rendered on the server (the QR image included).
  function followPanel() {
    var panel = document.getElementById("link-panel");
    if (!panel || !window.EventSource) return;
    var src = panel.getAttribute("data-stream");
    var version = panel.getAttribute("data-version") || "";
    var es = new EventSource(src + "?v=" + encodeURIComponent(version));
    es.addEventListener("panel", function (ev) {
      panel.innerHTML = ev.data;
      startCountdowns(panel);
      bindCopy(panel);
    });
    // The server ends a stream now and then and the browser reconnects by
    // itself. A reconnect it gives up on (signed out, too many pages open)
    // falls back to reloading, as the page does without JavaScript.
    es.addEventListener("error", function () {
      if (es.readyState === EventSource.CLOSED) setTimeout(function () { location.reload(); }, 5000);
    });
    window.addEventListener("pagehide", function () { es.close(); });
  }

  // Forms marked data-async post in the background: the page stays and
  // the live panel shows what happens.
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.hasAttribute || !form.hasAttribute("data-async") || !window.fetch) return;
    ev.preventDefault();
    var btn = form.querySelector("button");
    if (btn) btn.disabled = true;
    fetch(form.action, { method: "POST", credentials: "same-origin", headers: { "Accept": "application/json" } })
      .catch(function () {})
      .then(function () { if (btn && btn.isConnected) btn.disabled = false; });
  });

  document.addEventListener("DOMContentLoaded", function () {
    // With JavaScript on, the live panel replaces the no-script refresh.
    document.querySelectorAll("noscript").forEach(function (n) { n.remove(); });
    startCountdowns(document);
    bindCopy(document);
    followPanel();
  });
})();
