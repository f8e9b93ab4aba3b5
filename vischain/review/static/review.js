// Keyboard shortcuts for the review pages. Keys are ignored while typing in a field.
//   queue: j / k move the selection, o or Enter open the task, a accepts it
//   task:  a accept, r reject (focuses the reason), f flag (focuses the note), n next task, u back to the queue
(function () {
  "use strict";

  function typing(event) {
    const target = event.target;
    return event.ctrlKey || event.metaKey || event.altKey ||
      (target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName)));
  }

  function rows() {
    return Array.from(document.querySelectorAll("table.queue tbody tr[data-href]"));
  }

  let selectedKey = null;

  function select(row) {
    rows().forEach(function (r) { r.classList.remove("selected"); });
    if (row) {
      row.classList.add("selected");
      row.scrollIntoView({ block: "nearest" });
      selectedKey = row.dataset.key;
    }
  }

  function selected() {
    return rows().find(function (r) { return r.dataset.key === selectedKey; }) || null;
  }

  function move(step) {
    const all = rows();
    if (!all.length) { return; }
    const index = all.indexOf(selected());
    select(all[Math.min(all.length - 1, Math.max(0, index < 0 ? 0 : index + step))]);
  }

  function click(selector, scope) {
    const element = (scope || document).querySelector(selector);
    if (element) { element.click(); return true; }
    return false;
  }

  function focus(selector) {
    const element = document.querySelector(selector);
    if (element) { element.focus(); return true; }
    return false;
  }

  document.addEventListener("keydown", function (event) {
    if (typing(event)) { return; }
    const key = event.key;
    const onQueue = rows().length > 0;
    let handled = false;
    if (onQueue && key === "j") { move(1); handled = true; }
    else if (onQueue && key === "k") { move(-1); handled = true; }
    else if (onQueue && (key === "o" || key === "Enter") && selected()) {
      window.location.href = selected().dataset.href; handled = true;
    }
    else if (onQueue && key === "a" && selected()) { handled = click("button.accept", selected()); }
    else if (!onQueue && key === "a") { handled = click("#accept"); }
    else if (key === "r") { handled = focus("#reject-reason"); }
    else if (key === "f") { handled = focus("#flag-note"); }
    else if (key === "n") { handled = click("#next"); }
    else if (key === "u") { handled = click("#queue-link"); }
    if (handled) { event.preventDefault(); }
  });

  // A click on a queue row (outside its links and buttons) selects it; a double click opens it.
  document.addEventListener("click", function (event) {
    const row = event.target.closest && event.target.closest("table.queue tbody tr[data-href]");
    if (row && !event.target.closest("a, button, form")) { select(row); }
  });
  document.addEventListener("dblclick", function (event) {
    const row = event.target.closest && event.target.closest("table.queue tbody tr[data-href]");
    if (row) { window.location.href = row.dataset.href; }
  });

  // After htmx replaces a row or the table, keep the selection on the same task.
  document.addEventListener("htmx:afterSettle", function () {
    const row = selected();
    if (row) { row.classList.add("selected"); }
  });
})();
