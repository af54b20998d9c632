// Django's two-list selector (filter_horizontal) names its search icon with aria-label on a <span>
// of no role, which ARIA does not allow (axe: aria-prohibited-attr). As an image it may be named.
// Django builds the selector in a "load" handler; the observer names each icon as it is added (its
// callback runs right after the handler that added it, before anything else can read the page).
(function () {
  "use strict";
  function nameIcons() {
    document.querySelectorAll(".help-tooltip[aria-label]:not([role])").forEach(function (icon) {
      icon.setAttribute("role", "img");
    });
  }
  new MutationObserver(nameIcons).observe(document.documentElement, { childList: true, subtree: true });
})();
