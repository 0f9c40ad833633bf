// ɳSentry console: the little JavaScript there is. Every page works without it.
(function () {
  "use strict";
  // a chart mark's title shown in words when it is hovered or focused (keyboard)
  var info = document.getElementById("mark-info");
  if (info) {
    document.querySelectorAll("svg.chart .mark, svg.chart .would").forEach(function (mark) {
      var show = function () { info.textContent = mark.querySelector("title").textContent; };
      mark.addEventListener("focus", show);
      mark.addEventListener("mouseenter", show);
    });
  }
  // the viewer's time zone, from the browser, when the page was not told one
  var zone = document.querySelector("[data-viewer-zone]");
  if (zone && !zone.value && window.Intl) {
    zone.placeholder = Intl.DateTimeFormat().resolvedOptions().timeZone || zone.placeholder;
  }
})();
