// pricebench report: sortable tables and item search. No dependencies, no network.
(function () {
  "use strict";
  function key(cell, type) {
    var raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
    if (type === "num") { var v = parseFloat(raw.replace(/[$,%\s]/g, "")); return isNaN(v) ? null : v; }
    return raw.toLowerCase();
  }
  function sortBy(table, th, index) {
    var type = th.getAttribute("data-type") || "text";
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[index], type), y = key(b.cells[index], type);
      if (x === y) return 0;
      if (x === null) return 1;          // empty cells last, whatever the direction
      if (y === null) return -1;
      return (x < y ? -1 : 1) * (ascending ? 1 : -1);
    });
    var fragment = document.createDocumentFragment();
    rows.forEach(function (r) { fragment.appendChild(r); });
    body.appendChild(fragment);
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("thead th").forEach(function (th, index) {
      th.addEventListener("click", function () { sortBy(table, th, index); });
    });
  });
  document.querySelectorAll("input.search").forEach(function (input) {
    var table = document.getElementById(input.getAttribute("data-table"));
    var counter = document.querySelector('.count[data-for="' + table.id + '"]');
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    var texts = rows.map(function (r) { return r.textContent.toLowerCase(); });
    function update() {
      var q = input.value.trim().toLowerCase(), shown = 0;
      rows.forEach(function (r, i) {
        var hit = !q || texts[i].indexOf(q) !== -1;
        r.style.display = hit ? "" : "none";
        if (hit) shown++;
      });
      if (counter) counter.textContent = shown + " of " + rows.length + " items";
    }
    input.addEventListener("input", update);
    update();
  });
})();
