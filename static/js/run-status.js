// Keeps the run page current without a reload: polls the run's JSON status until it is final.
(function () {
  "use strict";
  var box = document.getElementById("run-status");
  if (!box) return;
  var siteName = box.dataset.siteName || "";
  // The page's words in the employee's language, from the server (actions/views/runs.py, js_words).
  var wordsEl = document.getElementById("run-status-words");
  var words = wordsEl ? JSON.parse(wordsEl.textContent) : {};
  function say(key, values) {
    var text = words[key] || key;
    Object.keys(values || {}).forEach(function (name) { text = text.split("%(" + name + ")s").join(values[name]); });
    return text;
  }
  // A final run is followed only while its ticket waits for the service desk's number.
  if (box.dataset.final === "true" && !document.querySelector("#get-help [data-ticket-waiting]")) return;
  var delay = 1000;
  var url = box.dataset.statusUrl;
  // The first look when runs of this action usually end (actions/runs/pacing.py): asking sooner tells
  // nothing new. A run slower than that is then looked at as often as before: 1.3 s later, and so on.
  var firstDelay = Number(box.dataset.firstPollMs) || delay;

  function setText(field, text) {
    var el = box.querySelector('[data-field="' + field + '"]') || document.querySelector('[data-field="' + field + '"]');
    if (el) el.textContent = text;
  }

  function renderResults(results) {
    var body = document.getElementById("engine-results");
    if (!body || !results.length) return;
    body.textContent = "";
    results.forEach(function (r) {
      var row = document.createElement("tr");
      var name = document.createElement("td");
      name.dataset.label = say("engine_server");
      name.textContent = r.engine_name || r.database_uid;
      var code = document.createElement("td");
      code.dataset.label = say("engine_answer");
      var c = document.createElement("code");
      c.textContent = r.code;
      code.appendChild(c);
      var text = document.createElement("td");
      text.dataset.label = say("engine_meaning");
      text.textContent = r.explanation;
      if (r.message) {
        text.appendChild(document.createElement("br"));
        var m = document.createElement("span");
        m.className = "muted";
        m.textContent = r.message;
        text.appendChild(m);
      }
      row.append(name, code, text);
      body.appendChild(row);
    });
  }

  function showRunAgain(again) {
    var button = document.querySelector('[data-field="run_again"]');
    var text = document.querySelector('[data-field="run_again_text"]');
    if (!again || !button || !text) return;
    button.hidden = !again.allowed;
    if (again.allowed) button.href = again.url;
    text.textContent = again.text || "";
    text.hidden = !again.text;
  }

  function renderFacts(list, facts) {
    // [label, text] pairs, as the server words them (each time with its time zone).
    if (!list || !facts) return;
    list.textContent = "";
    facts.forEach(function (fact) {
      var term = document.createElement("dt");
      term.textContent = fact[0];
      var value = document.createElement("dd");
      value.textContent = fact[1];
      list.append(term, value);
    });
  }

  function renderOutputs(outputs) {
    var list = document.getElementById("device-outputs");
    if (!list || !outputs) return;
    var names = Object.keys(outputs);
    renderFacts(list, names.map(function (name) { return [name, outputs[name] || say("empty")]; }));
    var section = document.getElementById("device-result");
    if (section) section.hidden = names.length === 0;
  }

  function followTicket(ticket) {
    // The service desk gives the ticket its number: shown here as soon as it is known, no reload.
    // True once there is nothing more to wait for.
    var waiting = document.querySelector("#get-help [data-ticket-waiting]");
    if (!waiting || !ticket || !ticket.state) return true;
    if (ticket.state === "created") {
      waiting.removeAttribute("data-ticket-waiting");
      waiting.dataset.ticketState = "created";
      waiting.textContent = "";
      if (ticket.number) {
        // The sentence around the number, as translated: the number goes where %(number)s stands.
        var parts = say("ticket_number").split("%(number)s");
        var number = document.createElement("strong");
        number.dataset.field = "ticket_number";
        number.textContent = ticket.number;
        waiting.append(parts[0], number, parts.slice(1).join(""));
      } else {
        waiting.textContent = say("ticket_no_number");
      }
      return true;
    }
    if (ticket.try_again) {
      window.location.reload();  // it could not be opened: the page with the "Try again" button
      return true;
    }
    return false;
  }

  function apply(data) {
    var label = box.querySelector('[data-field="status_label"]');
    if (data.title) document.title = data.title + (siteName ? " · " + siteName : "");
    label.className = "status status-" + data.status;
    label.textContent = data.status_label;
    setText("summary", data.summary);
    var late = box.querySelector('[data-field="late"]');
    if (late) {
      // Waiting to be sent far longer than usual (actions/runs/pacing.py): the page says so.
      late.textContent = data.late || "";
      late.hidden = !data.late;
    }
    renderFacts(document.getElementById("run-times"), data.times);
    (data.technical_times || []).forEach(function (fact, i) { setText("tech_time_" + (i + 1), fact[1]); });
    setText("status", data.status);
    setText("attempts", say("attempts", { attempts: data.attempts, max_attempts: data.max_attempts }));
    setText("error_code", data.error_code || say("none"));
    setText("device_status", data.device_status || say("none"));
    setText("device_status_details", data.device_status_details || say("none"));
    renderResults(data.engine_results);
    setText("results_empty", data.results_empty);
    renderOutputs(data.outputs);
    document.querySelectorAll("[data-show-when-sent]").forEach(function (el) { el.hidden = !data.reached_device; });
    if (data.final) {
      if (data.ticket && data.ticket.can_request && !document.getElementById("get-help")) {
        // The run ended in a way IT can help with: the page with the "Get help" form, once.
        window.location.reload();
        return true;
      }
      showRunAgain(data.run_again);
      if (data.feedback_hint) setText("feedback_hint", data.feedback_hint);
      document.querySelectorAll("[data-show-when-feedback]").forEach(function (el) { el.hidden = !data.feedback_open; });
      box.dataset.final = "true";
      document.querySelectorAll("[data-show-when-final]").forEach(function (el) { el.hidden = false; });
      document.querySelectorAll("[data-hide-when-final]").forEach(function (el) { el.hidden = true; });
      // A final run still changes in one way: its ticket gets a number. Keep asking until it has.
      return followTicket(data.ticket);
    }
    return false;
  }

  // The tag of the last full answer: sent back, the portal answers 304 while nothing changed (no body).
  var etag = null;
  // A run whose status has not changed for half a minute is looked at every 15 s at most, as one
  // followed on the device: it is not about to end (an action's runs end in seconds; the page's
  // first look waits for the usual end), and every look costs the portal.
  var changedAt = Date.now();

  function poll() {
    var headers = { Accept: "application/json" };
    if (etag) headers["If-None-Match"] = etag;
    fetch(url, { credentials: "same-origin", headers: headers })
      .then(function (response) {
        if (response.status === 304) return { unchanged: true, status: box.dataset.status };
        var json = (response.headers.get("Content-Type") || "").indexOf("application/json") === 0;
        if (response.redirected || !json || response.status === 404) {
          // Signed out (sent to the sign-in page) or the run is gone: polling again cannot help.
          setText("summary", say("updates_stopped"));
          throw new Error("stop");
        }
        if (!response.ok) throw new Error("HTTP " + response.status);
        etag = response.headers.get("ETag");
        return response.json();
      })
      .then(function (data) {
        if (data.status !== box.dataset.status) changedAt = Date.now();
        if (data.unchanged || !apply(data)) {
          box.dataset.status = data.status;
          // Sent and waiting for the device (Infinity), waiting for approval, a ticket waiting for its
          // number, or a status that has stood 30 s takes minutes, not seconds: look less often.
          var slow = data.status === "following" || data.status === "waiting_approval" || data.final ||
            Date.now() - changedAt > 30000;
          delay = Math.min(delay * 1.3, slow ? 15000 : 5000);
          later(delay);
        }
      })
      .catch(function (error) {
        if (error.message === "stop") return;
        delay = Math.min(delay * 2, 15000);  // the server or network hiccupped: keep trying, more slowly
        later(delay);
      });
  }

  // A page nobody is looking at (a background tab) asks nothing; it catches up once shown again.
  var waitingForView = false;
  function later(ms) {
    window.setTimeout(function () {
      if (document.hidden) waitingForView = true;
      else poll();
    }, ms);
  }
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && waitingForView) {
      waitingForView = false;
      poll();
    }
  });

  later(firstDelay);
})();
