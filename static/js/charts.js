/* Draw every Plotly figure on the page: elements with data-chart="<id of a json_script>".
   Runs on page load and after each htmx swap (panels arrive after the page). */
(function () {
  "use strict";

  function draw(root) {
    if (!window.Plotly || !root || !root.querySelectorAll) return;
    var nodes = Array.prototype.slice.call(root.querySelectorAll("[data-chart]"));
    if (root.matches && root.matches("[data-chart]")) nodes.push(root);
    nodes.forEach(function (el) {
      if (el.dataset.drawn === "1") return;
      var source = document.getElementById(el.dataset.chart);
      if (!source) return;
      var figure = JSON.parse(source.textContent);
      el.dataset.drawn = "1";
      el.textContent = "";
      var config = Object.assign({ responsive: true, displaylogo: false }, figure.config || {});
      window.Plotly.newPlot(el, figure.data, figure.layout || {}, config);
    });
  }

  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSwap", function (event) {
    // For outerHTML swaps the original target is gone: look from its parent, or the page.
    var target = event.detail && event.detail.target;
    draw(target && target.isConnected ? target : document);
  });
})();
