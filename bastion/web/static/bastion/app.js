// Bastion UI behaviour. No inline scripts (CSP script-src 'self'): everything hooks on data-* attributes.
(function () {
  "use strict";

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } finally { document.body.removeChild(area); }
    return Promise.resolve();
  }

  document.addEventListener("click", function (event) {
    var copy = event.target.closest("[data-copy]");
    if (copy) {
      var source = document.querySelector(copy.getAttribute("data-copy"));
      if (!source) { return; }
      copyText(source.textContent.trim()).then(function () {
        var label = copy.querySelector("span");
        if (label) {
          var before = label.textContent;
          label.textContent = "Copied";
          copy.classList.add("copied");
          window.setTimeout(function () { label.textContent = before; copy.classList.remove("copied"); }, 1800);
        }
      });
      return;
    }
    var dismiss = event.target.closest("[data-dismiss]");
    if (dismiss) {
      var flash = dismiss.closest(".flash");
      if (flash) { flash.remove(); }
      return;
    }
    // Close open menus when clicking elsewhere.
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) { menu.removeAttribute("open"); }
    });
  });

  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      document.querySelectorAll("details.menu[open]").forEach(function (menu) { menu.removeAttribute("open"); });
    }
  });
})();
