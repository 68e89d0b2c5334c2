// The job page, live: the job's event stream (Server-Sent Events, through the dashboard's
// /dashboard/jobs/<id>/events) says when the job changed; the page's job part is then rendered
// again by the server (one fetch of this page) and swapped in place. No polling, no reload.
// Without EventSource (or for a settled job) the page stays as it was rendered.
(function () {
  "use strict";

  var root = document.getElementById("job-live");
  if (!root || !window.EventSource || !window.fetch || !window.DOMParser) { return; }
  var url = root.getAttribute("data-stream");
  if (!url) { return; }

  var JOB_EVENTS = ["job.queued", "job.started", "job.completed", "job.failed", "job.canceled",
                    "job.language_completed"];
  var SETTLED = { completed: true, failed: true, canceled: true };
  var source = new EventSource(url);
  var busy = false;
  var again = false;

  // The same fingerprint the server renders in data-live-state (pages/jobs.py live_state).
  function state(job) {
    var languages = (job.languages || []).map(function (l) {
      return l.language + ":" + l.status;
    }).join(",");
    return job.status + "|" + Math.round(job.progress * 100) + "|" + languages;
  }

  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(window.location.pathname, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (answer) {
        if (!answer.ok) { throw new Error("HTTP " + answer.status); }
        return answer.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("job-live");
        if (!fresh) { return; }
        root.innerHTML = fresh.innerHTML;
        root.setAttribute("data-live-state", fresh.getAttribute("data-live-state") || "");
      })
      .catch(function () { /* the next event tries again */ })
      .then(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
  }

  function onJob(event) {
    var data;
    try { data = JSON.parse(event.data); } catch (e) { return; }
    if (!data || !data.job) { return; }
    if (SETTLED[data.job.status]) { source.close(); }  // the stream's final event
    if (state(data.job) !== root.getAttribute("data-live-state")) { refresh(); }
  }

  JOB_EVENTS.forEach(function (type) { source.addEventListener(type, onJob); });
  source.addEventListener("queue_position", function (event) {
    var data;
    try { data = JSON.parse(event.data); } catch (e) { return; }
    var slot = root.querySelector("[data-queue-position]");
    if (slot && data) { slot.textContent = "Position in queue: " + data.queue_position + "."; }
  });
})();
