// LiveCall portal: the few things that need a script. Everything else is plain HTML forms.
"use strict";

// Times for people, written as the server writes them (portal/formats.py): London wall-clock time
// with its zone, "29 Nov 2026 14:05 GMT" (BST in summer), whatever the browser's own locale and
// zone; "-" for nothing, and text that is no time as it is.
var LONDON_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
var LONDON_CLOCK = new Intl.DateTimeFormat("en-GB", {
  timeZone: "Europe/London", year: "numeric", month: "numeric", day: "numeric",
  hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short"
});
function formatLondon(value) {
  if (value === null || value === undefined || value === "") return "-";
  var at = value instanceof Date ? value : new Date(String(value).replace(/([+-]\d\d)(\d\d)$/, "$1:$2"));
  if (isNaN(at.getTime())) return String(value);
  var p = {};
  LONDON_CLOCK.formatToParts(at).forEach(function (part) { p[part.type] = part.value; });
  return Number(p.day) + " " + LONDON_MONTHS[Number(p.month) - 1] + " " + p.year + " " + p.hour + ":" + p.minute + " " + p.timeZoneName;
}

(function () {
  function fmt(seconds) {
    seconds = Math.max(0, Math.floor(seconds || 0));
    var m = Math.floor(seconds / 60), s = seconds % 60;
    return m + ":" + (s < 10 ? "0" : "") + s;
  }
  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  // Audio players: show the position; comments' times seek; the comment form takes the position.
  document.querySelectorAll("output[data-position-for]").forEach(function (out) {
    var audio = document.getElementById(out.dataset.positionFor);
    if (!audio) return;
    var offset = document.querySelector('input[data-offset-from="' + audio.id + '"]');
    audio.addEventListener("timeupdate", function () {
      out.value = fmt(audio.currentTime);
      out.textContent = fmt(audio.currentTime);
      out.dataset.seconds = String(audio.currentTime);
      if (offset && !offset.dataset.edited) offset.value = fmt(audio.currentTime);
    });
    if (offset) offset.addEventListener("input", function () { offset.dataset.edited = "yes"; });
  });
  document.querySelectorAll("button.seek").forEach(function (btn) {
    btn.addEventListener("click", function () {
      var audio = document.getElementById(btn.dataset.audio);
      if (!audio) return;
      audio.currentTime = parseFloat(btn.dataset.seconds) || 0;
      audio.play();
    });
  });

  // List upload: a progress bar while the file goes up, then the import report in place.
  var form = document.getElementById("upload-form");
  if (form && window.XMLHttpRequest && window.FormData) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var bar = document.getElementById("upload-progress");
      var state = document.getElementById("upload-state");
      var button = form.querySelector('button[type="submit"]');
      // The server refuses a body over [web] max_upload_mb (413); say so before sending it.
      var chosen = document.getElementById("u-file").files[0];
      var maxMb = parseInt(form.getAttribute("data-max-mb") || "0", 10);
      if (chosen && maxMb && chosen.size > maxMb * 1024 * 1024) {
        state.textContent = "Not uploaded: the file is larger than the limit of " + maxMb + " MB ([web] max_upload_mb).";
        return;
      }
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("X-Requested-With", "fetch");
      xhr.setRequestHeader("X-CSRF-Token", csrf());
      bar.hidden = false; bar.value = 0; button.disabled = true;
      state.textContent = "Uploading…";
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) {
          bar.value = Math.round(100 * e.loaded / e.total);
          bar.textContent = bar.value + "%";
          state.textContent = "Uploading… " + bar.value + "%";
        }
      });
      xhr.upload.addEventListener("load", function () { bar.value = 100; state.textContent = "Uploaded; importing…"; });
      xhr.addEventListener("load", function () {
        button.disabled = false;
        state.textContent = xhr.status === 200 ? "Imported." : (xhr.status === 422 ? "Not imported." : "Failed (" + xhr.status + ").");
        document.getElementById("import-result").innerHTML = xhr.responseText;
      });
      xhr.addEventListener("error", function () { button.disabled = false; state.textContent = "The upload failed: check the connection."; });
      xhr.send(new FormData(form));
    });
  }

  // Live board: server-sent events replace the rows as calls start and end.
  var board = document.getElementById("live-board");
  if (board && window.EventSource) {
    var state = document.getElementById("live-state");
    var problem = document.getElementById("live-problem");
    var maySupervise = board.dataset.maySupervise === "yes";
    var cell = function (tr, text) { var td = document.createElement("td"); td.textContent = text; tr.appendChild(td); return td; };
    var modes = ["listen", "whisper", "barge"];
    var render = function (data) {
      var body = board.tBodies[0];
      var rows = [];
      data.calls.forEach(function (c) {
        var tr = document.createElement("tr");
        tr.dataset.agent = c.agent;
        cell(tr, c.agent); cell(tr, c.number); cell(tr, c.state);
        cell(tr, formatLondon(c.since));
        cell(tr, c.purpose || "-"); cell(tr, c.decision || "-");
        var td = cell(tr, "");
        if (maySupervise) {
          modes.forEach(function (m) {
            var f = document.createElement("form");
            f.method = "post"; f.action = "/live/supervise"; f.className = "inline";
            [["csrf", csrf()], ["agent", c.agent], ["mode", m]].forEach(function (kv) {
              var i = document.createElement("input"); i.type = "hidden"; i.name = kv[0]; i.value = kv[1]; f.appendChild(i);
            });
            var b = document.createElement("button"); b.type = "submit"; b.className = m;
            b.textContent = m.charAt(0).toUpperCase() + m.slice(1);
            f.appendChild(b); td.appendChild(f);
          });
        }
        rows.push(tr);
      });
      if (!rows.length) {
        var tr = document.createElement("tr"); tr.className = "empty";
        var td = cell(tr, "No calls in progress."); td.colSpan = 7; rows.push(tr);
      }
      // Keep the row being used (focus inside it) if its call is still up.
      body.replaceChildren.apply(body, rows);
      problem.hidden = !data.problem; problem.textContent = data.problem || "";
      state.textContent = "Updated " + formatLondon(new Date()) + ": " + data.calls.length + " call(s).";
    };
    var source = new EventSource("/live/events");
    source.addEventListener("calls", function (e) {
      if (board.contains(document.activeElement) && document.activeElement.tagName === "BUTTON") return;
      render(JSON.parse(e.data));
    });
    source.addEventListener("error", function () { state.textContent = "Reconnecting…"; });
  }
})();
