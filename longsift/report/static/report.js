// The report's only script: the prompt browser (filters and pages) and the sortable, searchable leaderboard.
// No network, no framework; the page's Content-Security-Policy allows only this script (by hash).
(function () {
  "use strict";

  // --- prompt browser: every item lives in an inert <template>; one page of clones is in the document -------
  function browser() {
    var PAGE = 25;
    var root = document.getElementById("browser");
    var store = document.getElementById("item-store");
    var list = document.getElementById("items");
    if (!root || !store || !list) {
      return;
    }
    var items = Array.prototype.map.call(store.content.children, function (element) {
      return { element: element, data: element.dataset, text: element.textContent.toLowerCase() };
    });
    var controls = {
      comparison: document.getElementById("filter-comparison"),
      set: document.getElementById("filter-set"),
      policy: document.getElementById("filter-policy"),
      outcome: document.getElementById("filter-outcome"),
      search: document.getElementById("filter-search")
    };
    var count = document.getElementById("match-count");
    var prev = document.getElementById("page-prev");
    var next = document.getElementById("page-next");
    var where = document.getElementById("page-where");
    var page = 0;
    var matched = [];

    function matches(item) {
      var comparison = controls.comparison.value;
      var set = controls.set.value;
      var outcome = controls.outcome.value;
      var query = controls.search.value.trim().toLowerCase();
      if (comparison !== "all" && item.data.comparison !== comparison) {
        return false;
      }
      if (set !== "all" && item.data.set !== set) {
        return false;
      }
      if (outcome === "flipped" && item.data.flipped !== "1") {
        return false;
      }
      if (outcome !== "all" && outcome !== "flipped" && item.data[controls.policy.value] !== outcome) {
        return false;
      }
      return !query || item.text.indexOf(query) !== -1;
    }

    function show() {
      var pages = Math.max(1, Math.ceil(matched.length / PAGE));
      page = Math.min(Math.max(page, 0), pages - 1);
      var shown = matched.slice(page * PAGE, (page + 1) * PAGE);
      var fragment = document.createDocumentFragment();
      shown.forEach(function (item) {
        fragment.appendChild(item.element.cloneNode(true));
      });
      list.replaceChildren(fragment);
      count.textContent = String(matched.length);
      where.textContent = "page " + (page + 1) + " of " + pages;
      prev.disabled = page === 0;
      next.disabled = page >= pages - 1;
      root.dataset.visible = String(shown.length);
      root.dataset.page = String(page + 1);
      root.dataset.pages = String(pages);
    }

    function filter() {
      matched = items.filter(matches);
      page = 0;
      show();
    }

    ["comparison", "set", "policy", "outcome"].forEach(function (name) {
      controls[name].addEventListener("change", filter);
    });
    controls.search.addEventListener("input", filter);
    document.getElementById("filters").addEventListener("submit", function (event) {
      event.preventDefault();
    });
    prev.addEventListener("click", function () {
      page -= 1;
      show();
    });
    next.addEventListener("click", function () {
      page += 1;
      show();
    });
    document.getElementById("pager").hidden = false;
    filter();
  }

  // --- tables with class "sortable": click a header to sort (numbers by data-value), a search box filters ----
  function sortable(table) {
    var body = table.tBodies[0];
    var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
    headers.forEach(function (th, column) {
      th.tabIndex = 0;
      th.classList.add("sort");
      function sort() {
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        var numeric = th.dataset.type === "num";
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[column];
          var y = b.cells[column];
          var order;
          if (numeric) {
            var u = x.dataset.value === "" ? NaN : Number(x.dataset.value);
            var v = y.dataset.value === "" ? NaN : Number(y.dataset.value);
            if (isNaN(u) || isNaN(v)) {
              return isNaN(u) - isNaN(v); // missing values last, either way
            }
            order = u - v;
          } else {
            order = x.textContent.localeCompare(y.textContent);
          }
          return ascending ? order : -order;
        });
        headers.forEach(function (other) {
          other.removeAttribute("aria-sort");
        });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        rows.forEach(function (row) {
          body.appendChild(row);
        });
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          sort();
        }
      });
    });
  }

  function leaderboardSearch() {
    var input = document.getElementById("leaderboard-search");
    var table = document.getElementById("leaderboard");
    if (!input || !table) {
      return;
    }
    input.addEventListener("input", function () {
      var query = input.value.trim().toLowerCase();
      Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
        row.hidden = Boolean(query) && !row.classList.contains("ours") &&
          row.cells[1].textContent.toLowerCase().indexOf(query) === -1;
      });
    });
  }

  browser();
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), sortable);
  leaderboardSearch();
})();
