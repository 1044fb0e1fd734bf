// Prompt browser filter: show the rows whose data-* attributes match the selected filters, a page at a time.
// No network, no framework; the page's Content-Security-Policy allows only this script (by hash).
(function () {
  "use strict";
  var PAGE = 50;
  var root = document.getElementById("browser");
  var list = document.getElementById("items");
  if (!root || !list) {
    return;
  }
  var items = Array.prototype.slice.call(list.querySelectorAll("article.item"));
  var controls = {
    comparison: document.getElementById("filter-comparison"),
    set: document.getElementById("filter-set"),
    policy: document.getElementById("filter-policy"),
    outcome: document.getElementById("filter-outcome"),
    search: document.getElementById("filter-search")
  };
  var count = document.getElementById("match-count");
  var more = document.getElementById("show-more");
  var limit = PAGE;

  function matches(item) {
    var comparison = controls.comparison.value;
    var set = controls.set.value;
    var outcome = controls.outcome.value;
    var query = controls.search.value.trim().toLowerCase();
    if (comparison !== "all" && item.dataset.comparison !== comparison) {
      return false;
    }
    if (set !== "all" && item.dataset.set !== set) {
      return false;
    }
    if (outcome === "flipped" && item.dataset.flipped !== "1") {
      return false;
    }
    if (outcome !== "all" && outcome !== "flipped" && item.dataset[controls.policy.value] !== outcome) {
      return false;
    }
    return !query || item.textContent.toLowerCase().indexOf(query) !== -1;
  }

  function apply() {
    var matched = 0;
    items.forEach(function (item) {
      var ok = matches(item);
      if (ok) {
        matched += 1;
      }
      item.hidden = !ok || matched > limit;
    });
    count.textContent = String(matched);
    more.hidden = matched <= limit;
    root.dataset.visible = String(Math.min(matched, limit));
  }

  function reset() {
    limit = PAGE;
    apply();
  }

  ["comparison", "set", "policy", "outcome"].forEach(function (name) {
    controls[name].addEventListener("change", reset);
  });
  controls.search.addEventListener("input", reset);
  document.getElementById("filters").addEventListener("submit", function (event) {
    event.preventDefault();
  });
  more.addEventListener("click", function () {
    limit += PAGE;
    apply();
  });
  apply();
})();
