// Among devices of several systems (Windows, macOS), show only the inputs the chosen device's system
// uses: each such input says which systems use it (data-platforms), the page which system each device
// runs (#device-platforms). A hidden input is also disabled, so it is not sent; the server asks and
// sends only the chosen device's inputs in any case. Without JavaScript every input shows, each
// saying which devices it is for.
(function () {
  "use strict";
  function setUp() {
    var data = document.getElementById("device-platforms");
    var form = data && data.closest("form");
    if (!form) return;
    var platforms = JSON.parse(data.textContent);
    function update() {
      var chosen = form.querySelector("input[name=device]:checked") || form.querySelector("input[name=device][type=hidden]");
      var platform = chosen ? platforms[chosen.value] : null;
      form.querySelectorAll("[data-platforms]").forEach(function (input) {
        var shown = !platform || platform === "unknown" || input.dataset.platforms.split(" ").indexOf(platform) !== -1;
        var field = input.closest(".field");
        if (field) field.hidden = !shown;
        input.disabled = !shown;
      });
    }
    form.addEventListener("change", function (event) {
      if (event.target.name === "device") update();
    });
    update();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();
})();
