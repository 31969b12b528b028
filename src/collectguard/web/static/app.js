/* Keyboard shortcuts of the staff pages (documented on each page under "键盘快捷键 / Keyboard shortcuts").
 * Light by design: the pages work without it; it only adds keys. Keys are ignored while typing in a field.
 *   lists with data-keynav (the queue, decisions): j / k move, Enter or o opens the selected row
 *   queue: m mine, a all  ·  case: c check, r record the checked contact, h history, p promise, n note, q queue
 *   ? shows or hides the shortcut list
 */
(function () {
  "use strict";
  var table = document.querySelector("table[data-keynav]");
  var rows = table ? Array.prototype.slice.call(table.querySelectorAll("tbody tr[data-href]")) : [];
  var current = -1;

  function select(i) {
    if (!rows.length) return;
    current = Math.max(0, Math.min(rows.length - 1, i));
    rows.forEach(function (r, k) { r.classList.toggle("selected", k === current); r.setAttribute("aria-selected", k === current ? "true" : "false"); });
    var link = rows[current].querySelector("a");
    if (link) link.focus({ preventScroll: true });
    rows[current].scrollIntoView({ block: "nearest" });
  }
  function go(href) { if (href) window.location.href = href; }
  function focus(id) {
    var el = document.getElementById(id);
    if (!el) return false;
    el.scrollIntoView({ block: "center" });
    el.focus();
    return true;
  }
  function click(id) { var el = document.getElementById(id); if (el) el.click(); return !!el; }

  rows.forEach(function (r, k) {
    r.addEventListener("click", function (ev) { if (!ev.target.closest("a,button,input,select,textarea")) go(r.dataset.href); });
    r.addEventListener("focusin", function () { current = k; rows.forEach(function (x, n) { x.classList.toggle("selected", n === k); }); });
  });

  var actions = {
    "j": function () { return rows.length ? (select(current + 1), true) : false; },
    "k": function () { return rows.length ? (select(current - 1), true) : false; },
    "o": function () { return current >= 0 ? (go(rows[current].dataset.href), true) : false; },
    "Enter": function () { return current >= 0 && document.activeElement === document.body ? (go(rows[current].dataset.href), true) : false; },
    "m": function () { return table && table.id === "queue" ? (go("/work?view=mine"), true) : false; },
    "a": function () { return table && table.id === "queue" ? (go("/work?view=all"), true) : false; },
    "c": function () { return focus("channel"); },
    "r": function () { return click("record-checked"); },
    "h": function () { return focus("h-title") || false; },
    "p": function () { return focus("due_date"); },
    "n": function () { return focus("note-text"); },
    "q": function () { return document.getElementById("check-form") ? (go("/work"), true) : false; },
    "?": function () { var d = document.getElementById("keys-help"); if (!d) return false; d.open = !d.open; return true; }
  };
  var title = document.getElementById("h-title");
  if (title) title.setAttribute("tabindex", "-1");

  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    var t = ev.target;
    if (t && (t.isContentEditable || /^(INPUT|SELECT|TEXTAREA|BUTTON)$/.test(t.tagName))) {
      if (ev.key === "Escape") t.blur();
      return;
    }
    var act = actions[ev.key];
    if (act && act()) ev.preventDefault();
  });
})();
