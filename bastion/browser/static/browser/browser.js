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

// The step editor: drag a step by its number onto another step of the same list (the top
// level, or one block's steps) to put it there. The move is posted through the same form
// action as the ↑ ↓ buttons, which stay for keyboards and pages without JavaScript.
document.addEventListener("DOMContentLoaded", function () {
  "use strict";
  document.querySelectorAll("ol[data-reorder]").forEach(function (list) {
    var form = document.getElementById(list.getAttribute("data-reorder"));
    if (!form) { return; }
    var dragged = null;

    function rowOf(node) {
      var row = node && node.closest ? node.closest("li[data-step-number]") : null;
      return row && list.contains(row) ? row : null;
    }
    function number(row) { return Number(row.getAttribute("data-step-number")); }
    function sameList(row) {
      return dragged && row && row !== dragged &&
        row.getAttribute("data-step-block") === dragged.getAttribute("data-step-block");
    }
    function clearMarks() {
      list.querySelectorAll(".drop-before, .drop-after").forEach(function (row) {
        row.classList.remove("drop-before", "drop-after");
      });
    }

    list.addEventListener("dragstart", function (event) {
      var handle = event.target.closest ? event.target.closest(".drag-handle") : null;
      dragged = handle ? rowOf(handle) : null;
      if (!dragged) { return; }
      dragged.classList.add("dragging");
      list.classList.add("reordering");
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", dragged.id);
      event.dataTransfer.setDragImage(dragged, 16, 16);
    });
    list.addEventListener("dragover", function (event) {
      var row = rowOf(event.target);
      if (!sameList(row)) { return; }
      event.preventDefault();  // a valid drop target
      event.dataTransfer.dropEffect = "move";
      clearMarks();
      row.classList.add(number(row) < number(dragged) ? "drop-before" : "drop-after");
    });
    list.addEventListener("dragleave", function (event) {
      var row = rowOf(event.target);
      if (row && !row.contains(event.relatedTarget)) {
        row.classList.remove("drop-before", "drop-after");
      }
    });
    list.addEventListener("drop", function (event) {
      var row = rowOf(event.target);
      if (!sameList(row)) { return; }
      event.preventDefault();
      var block = dragged.getAttribute("data-step-block");
      form.elements.index.value = (block ? block + "." : "") + number(dragged);
      form.elements.to.value = String(number(row));
      list.classList.add("saving");
      form.submit();
    });
    list.addEventListener("dragend", function () {
      if (dragged) { dragged.classList.remove("dragging"); }
      list.classList.remove("reordering");
      clearMarks();
      dragged = null;
    });
  });
});
