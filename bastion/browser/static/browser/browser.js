// Browser-test pages. No inline scripts (CSP script-src 'self'): behaviour hooks on data-* attributes.
(function () {
  "use strict";

  // The step editor's "Add a step" kind list submits itself once a kind is chosen.
  document.addEventListener("change", function (event) {
    var field = event.target.closest("[data-autosubmit-field]");
    if (field && field.value) {
      var form = field.closest("form[data-autosubmit]");
      if (form) { form.submit(); }
    }
  });

  // Screenshot comparison: the slider reveals the current screenshot over the baseline, the
  // opacity control fades it; the buttons switch between side-by-side, slider, overlay and diff.
  function setup(compare) {
    var top = compare.querySelector("[data-compare-top]");
    var range = compare.querySelector("[data-compare-range]");
    var modes = compare.querySelectorAll("[data-compare-mode]");
    function apply() {
      var mode = compare.getAttribute("data-mode") || "side";
      var value = range ? Number(range.value) : 50;
      if (!top) { return; }
      if (mode === "slider") {
        top.style.opacity = "1";
        top.style.clipPath = "inset(0 " + (100 - value) + "% 0 0)";
      } else if (mode === "overlay") {
        top.style.clipPath = "none";
        top.style.opacity = String(value / 100);
      }
    }
    modes.forEach(function (button) {
      button.addEventListener("click", function () {
        compare.setAttribute("data-mode", button.getAttribute("data-compare-mode"));
        modes.forEach(function (b) { b.classList.toggle("active", b === button); b.setAttribute("aria-pressed", b === button ? "true" : "false"); });
        apply();
      });
    });
    if (range) { range.addEventListener("input", apply); }
    apply();
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-compare]").forEach(setup);
  });
})();

// Bars whose width comes from the data (a CSS width set here: no inline style attributes).
document.addEventListener("DOMContentLoaded", function () {
  "use strict";
  document.querySelectorAll("[data-width]").forEach(function (bar) {
    var value = Math.max(0, Math.min(100, Number(bar.getAttribute("data-width")) || 0));
    bar.style.width = value + "%";
  });
});
