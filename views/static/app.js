// wabot portal: live link panel and inbox, quick replies, QR countdown,
// copy buttons. Plain script,
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
          navigator.clipboard.writeText(text).then(function () { btn.textContent = btn.getAttribute("data-copied") || "Copied"; });
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


  // The inbox follows the server: a "changed" event makes the page read
  // itself again and swap the list and the open thread (the reply box is
  // left alone, so nothing typed is lost). Opening the thread's page is
  // what reads it, so a message that arrives while it is open is read.
  function followInbox() {
    var inbox = document.getElementById("inbox");
    if (!inbox || !window.EventSource || !window.fetch || !window.DOMParser) return;
    var src = inbox.getAttribute("data-stream");
    var es = new EventSource(src + "?mark=" + encodeURIComponent(inbox.getAttribute("data-mark") || ""));
    var busy = false, again = false;
    var refresh = function () {
      if (busy) { again = true; return; }
      busy = true;
      fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html) return;
          var doc = new DOMParser().parseFromString(html, "text/html");
          ["chat-list", "thread-messages"].forEach(function (id) {
            var now = document.getElementById(id), fresh = doc.getElementById(id);
            if (!now || !fresh) return;
            var atEnd = now.scrollHeight - now.scrollTop - now.clientHeight < 40;
            now.innerHTML = fresh.innerHTML;
            if (id === "thread-messages" && atEnd) now.scrollTop = now.scrollHeight;
          });
          document.title = doc.title;
        })
        .catch(function () {})
        .then(function () { busy = false; if (again) { again = false; refresh(); } });
    };
    es.addEventListener("changed", refresh);
    es.addEventListener("error", function () {
      if (es.readyState === EventSource.CLOSED) setTimeout(function () { location.reload(); }, 5000);
    });
    window.addEventListener("pagehide", function () { es.close(); });
    var thread = document.getElementById("thread-messages");
    if (thread) thread.scrollTop = thread.scrollHeight;
  }

  // Quick replies: choosing one in the select inserts it at the caret;
  // typing "/" and a shortcut offers the matching ones (Enter, Tab or a
  // click inserts the first or the chosen one). Without script the
  // select and its Insert button do the same through the server.
  function quickReplies() {
    var box = document.getElementById("reply-text");
    var select = document.getElementById("quick");
    if (!box || !select) return;
    var list = box.form.querySelector(".quick-suggest");
    var replies = [];
    Array.prototype.forEach.call(select.options, function (o) {
      if (o.value) replies.push({ shortcut: o.getAttribute("data-shortcut"), body: o.getAttribute("data-body") });
    });
    var insertBtn = box.form.querySelector("[data-testid=quick-insert]");
    if (insertBtn) insertBtn.hidden = true;
    var insert = function (body, from, to) {
      box.value = box.value.slice(0, from) + body + box.value.slice(to);
      var at = from + body.length;
      box.focus();
      box.setSelectionRange(at, at);
    };
    select.addEventListener("change", function () {
      var o = select.options[select.selectedIndex];
      if (o && o.value) insert(o.getAttribute("data-body"), box.selectionStart, box.selectionEnd);
      select.selectedIndex = 0;
    });
    // The "/word" just before the caret, if any.
    var typed = function () {
      var before = box.value.slice(0, box.selectionStart);
      var m = /(^|\s)\/([a-z0-9_-]*)$/.exec(before);
      return m ? { word: m[2], from: before.length - m[2].length - 1 } : null;
    };
    var shown = [];
    var hide = function () { list.hidden = true; list.innerHTML = ""; shown = []; };
    var choose = function (q) {
      var t = typed();
      if (t) insert(q.body, t.from, box.selectionStart);
      hide();
    };
    box.addEventListener("input", function () {
      var t = typed();
      if (!t) return hide();
      shown = replies.filter(function (q) { return q.shortcut.indexOf(t.word) === 0; }).slice(0, 8);
      if (!shown.length) return hide();
      list.innerHTML = "";
      shown.forEach(function (q, i) {
        var li = document.createElement("li");
        li.setAttribute("role", "option");
        if (i === 0) li.setAttribute("aria-selected", "true");
        li.textContent = "/" + q.shortcut + " — " + q.body;
        li.addEventListener("mousedown", function (ev) { ev.preventDefault(); choose(q); });
        list.appendChild(li);
      });
      list.hidden = false;
    });
    box.addEventListener("keydown", function (ev) {
      if (list.hidden || !shown.length) return;
      if (ev.key === "Enter" || ev.key === "Tab") { ev.preventDefault(); choose(shown[0]); }
      if (ev.key === "Escape") hide();
    });
    box.addEventListener("blur", hide);
  }

  // Enter in a field marked data-enter-clicks presses that button (the
  // Bot page's test question asks the model) instead of the form's first.
  // The form submits on Enter's keypress too, so that is stopped as well.
  function enterClicks(ev) {
    var el = ev.target;
    if (ev.key !== "Enter" || !el.getAttribute || !el.getAttribute("data-enter-clicks")) return null;
    return document.querySelector('[data-testid="' + el.getAttribute("data-enter-clicks") + '"]');
  }
  document.addEventListener("keydown", function (ev) {
    var btn = enterClicks(ev);
    if (btn) { ev.preventDefault(); btn.click(); }
  });
  document.addEventListener("keypress", function (ev) {
    if (enterClicks(ev)) ev.preventDefault();
  });

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
    followInbox();
    quickReplies();
  });
})();
