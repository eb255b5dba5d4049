/* The Init. Token page: counts down, and polls each pending sign-in's status until it is over.
   A static file (the Content-Security-Policy runs scripts from this site only); the page gives it
   the CSRF token and where to go when done as data attributes of #init-token-page. */
(function () {
  "use strict";
  const page = document.getElementById("init-token-page");
  if (!page) { return; }
  const csrf = page.dataset.csrfToken;
  const doneUrl = page.dataset.doneUrl;
  const boxes = Array.from(document.querySelectorAll(".init-request"));

  function format(seconds) {
    const m = Math.floor(seconds / 60), s = seconds % 60;
    return m + ":" + String(s).padStart(2, "0");
  }
  function tick() {
    boxes.forEach(function (box) {
      const el = box.querySelector(".init-seconds");
      if (!el || box.dataset.status !== "pending") { return; }
      const left = Math.max(0, parseInt(el.dataset.seconds, 10) - 1);
      el.dataset.seconds = left;
      el.textContent = format(left);
    });
  }
  function show(box, data) {
    box.dataset.status = data.status;
    box.querySelector(".init-status").textContent = data.status_display;
    const seconds = box.querySelector(".init-seconds");
    if (seconds) { seconds.dataset.seconds = data.seconds_left; }
    if (data.error) {
      const error = box.querySelector(".init-error");
      error.textContent = data.error;
      error.hidden = false;
    }
    if (data.status === "failed") {
      box.querySelectorAll(".init-pending").forEach(function (el) { el.hidden = true; });
      box.querySelector(".init-again").hidden = false;
    }
  }
  function poll() {
    const pending = boxes.filter(function (box) { return box.dataset.status === "pending"; });
    if (!pending.length) {
      // Done: back to the account, unless a failure is on show with its Start again button.
      if (!boxes.some(function (box) { return box.dataset.status === "failed"; })) { window.location = doneUrl; }
      return;
    }
    Promise.all(pending.map(function (box) {
      return fetch(box.dataset.statusUrl, {method: "POST", headers: {"X-CSRFToken": csrf}, credentials: "same-origin"})
        .then(function (response) { return response.json(); })
        .then(function (data) { show(box, data); })
        .catch(function () {});
    })).then(function () { setTimeout(poll, 2000); });
  }
  tick();
  setInterval(tick, 1000);
  setTimeout(poll, 1000);
})();
