// The class summary's student tables: sort by any column (click its header) and filter by
// student name. Plain DOM and no library, so the page works from file:// without a network;
// without JavaScript the tables read as they are.
(function () {
  "use strict";

  function value(row, index) {
    var cell = row.cells[index];
    if (!cell) return "";
    var v = cell.getAttribute("data-value");
    return v === null ? cell.textContent.trim() : v;
  }

  function compare(a, b) {
    var x = parseFloat(a), y = parseFloat(b);
    var xNum = a !== "" && !isNaN(x), yNum = b !== "" && !isNaN(y);
    if (xNum && yNum) return x - y;
    if (xNum !== yNum) return xNum ? -1 : 1;  // blank cells after numbers
    return a.localeCompare(b, undefined, {numeric: true, sensitivity: "base"});
  }

  function sortable(table) {
    var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
    headers.forEach(function (th, index) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      while (th.firstChild) button.appendChild(th.firstChild);
      th.appendChild(button);
      button.addEventListener("click", function () {
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        headers.forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows).map(function (row, i) { return [row, i]; });
        rows.sort(function (p, q) {
          return (ascending ? 1 : -1) * compare(value(p[0], index), value(q[0], index)) || p[1] - q[1];
        });
        rows.forEach(function (p) { body.appendChild(p[0]); });
      });
    });
  }

  function filterable(input) {
    var table = document.getElementById(input.getAttribute("data-table"));
    var counter = document.getElementById(input.getAttribute("data-count"));
    input.hidden = false;
    input.addEventListener("input", function () {
      var needle = input.value.trim().toLowerCase();
      var shown = 0, rows = table.tBodies[0].rows;
      for (var i = 0; i < rows.length; i++) {
        var match = rows[i].getAttribute("data-student").toLowerCase().indexOf(needle) !== -1;
        rows[i].hidden = !match;
        shown += match ? 1 : 0;
      }
      if (counter) counter.textContent = needle ? shown + " of " + rows.length + " shown" : "";
    });
  }

  document.querySelectorAll("table.sortable").forEach(sortable);
  document.querySelectorAll("input.filter").forEach(filterable);
})();
