// After a refused submit, move the focus to the error summary, so that a screen reader reads it and
// a phone scrolls to it (the form may start below the fold). Not `autofocus`: browsers skip that when
// the address has a #fragment (the skip link leaves #main there), and they focus the fragment's
// target once the page has loaded; so this runs after that.
(function () {
  "use strict";
  function focusSummary() {
    // A one-field form (data-focus-first-invalid) puts the focus on the refused field itself.
    var target = document.querySelector("[data-focus-first-invalid] [aria-invalid=true]") ||
      document.getElementById("error-summary");
    if (target) target.focus();
  }
  if (document.readyState === "complete") focusSummary();
  else window.addEventListener("load", function () { window.setTimeout(focusSummary, 0); });
})();
