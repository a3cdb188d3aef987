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

  // The result of an action (the message a form's answer brings back) takes focus, so a
  // keyboard or screen reader user lands on it instead of at the top of the page.
  var focusResult = function (el) {
    if (!el) return;
    el.tabIndex = -1;
    el.focus();
  };
  focusResult(document.querySelector("main [data-result]"));

  // On a phone each table row is shown as a card (portal.css): every cell is labelled with its
  // column's heading. A table wider than the screen scrolls in its wrapper, which can then take
  // focus so that it scrolls by keyboard too, and is named after the table.
  document.querySelectorAll("main table").forEach(function (table) {
    if (!table.tHead) return;
    var headers = Array.prototype.map.call(table.tHead.rows[0].cells, function (th) { return th.textContent.trim(); });
    Array.prototype.forEach.call(table.tBodies, function (body) {
      Array.prototype.forEach.call(body.rows, function (tr) {
        if (tr.cells.length !== headers.length) return;  // a "nothing here" row spans them all
        Array.prototype.forEach.call(tr.cells, function (td, i) { if (!td.dataset.label) td.dataset.label = headers[i]; });
      });
    });
  });
  var scrollers = document.querySelectorAll("main .scroll");
  var fitScrollers = function () {
    scrollers.forEach(function (box) {
      if (box.scrollWidth > box.clientWidth + 1) {
        var section = box.closest("section");
        var named = box.querySelector("caption") || (section && section.querySelector("h2")) || document.querySelector("main h1");
        box.tabIndex = 0;
        box.setAttribute("role", "region");
        box.setAttribute("aria-label", (named ? named.textContent.trim() : "Table") + " (scrolls sideways)");
      } else if (box.hasAttribute("tabindex")) {
        box.removeAttribute("tabindex"); box.removeAttribute("role"); box.removeAttribute("aria-label");
      }
    });
  };
  fitScrollers();
  window.addEventListener("resize", fitScrollers);

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
        focusResult(document.querySelector("#import-result .notice"));
      });
      xhr.addEventListener("error", function () { button.disabled = false; state.textContent = "The upload failed: check the connection."; });
      xhr.send(new FormData(form));
    });
  }

  // Live board: server-sent events keep the rows current. A row stays the same element for as
  // long as its call (channel) is up and only its changed cells are rewritten, so every update is
  // shown at once whatever has focus, and a focused Listen button is never rebuilt under the
  // user. If the focused button's call ends, focus goes to the board's status line.
  var board = document.getElementById("live-board");
  if (board && window.EventSource) {
    var state = document.getElementById("live-state");
    var problem = document.getElementById("live-problem");
    var maySupervise = board.dataset.maySupervise === "yes";
    var headers = Array.prototype.map.call(board.tHead.rows[0].cells, function (th) { return th.textContent; });
    // [mode, visible label, the rest of its name for a screen reader] as in live.html.
    var modes = [["listen", "Listen", " to "], ["whisper", "Whisper", " to "], ["barge", "Barge", " in on "]];
    var since = formatLondon;
    var texts = function (c) {
      return [c.agent, c.number, c.state, since(c.since), c.purpose || "-", c.decision || "-"];
    };
    var newRow = function (c) {
      var tr = document.createElement("tr");
      tr.dataset.channel = c.channel_id; tr.dataset.agent = c.agent;
      for (var i = 0; i <= texts(c).length; i++) {
        var td = document.createElement("td"); td.dataset.label = headers[i] || ""; tr.appendChild(td);
      }
      var td = tr.cells[tr.cells.length - 1];
      td.className = "supervise";
      if (maySupervise) {
        modes.forEach(function (m) {
          var f = document.createElement("form");
          f.method = "post"; f.action = "/live/supervise"; f.className = "inline";
          [["csrf", csrf()], ["agent", c.agent], ["mode", m[0]]].forEach(function (kv) {
            var i = document.createElement("input"); i.type = "hidden"; i.name = kv[0]; i.value = kv[1]; f.appendChild(i);
          });
          var b = document.createElement("button"); b.type = "submit"; b.className = m[0];
          b.appendChild(document.createTextNode(m[1]));
          var rest = document.createElement("span"); rest.className = "sr-only"; rest.textContent = m[2] + c.agent;
          b.appendChild(rest);
          f.appendChild(b); td.appendChild(f);
        });
      }
      return tr;
    };
    var emptyRow = function () {
      var tr = board.tBodies[0].querySelector("tr.empty");
      if (tr) return tr;
      tr = document.createElement("tr"); tr.className = "empty";
      var td = document.createElement("td"); td.colSpan = headers.length; td.textContent = "No calls in progress.";
      tr.appendChild(td);
      return tr;
    };
    var render = function (data) {
      var body = board.tBodies[0];
      var focused = body.contains(document.activeElement) ? document.activeElement : null;
      var up = {};
      Array.prototype.forEach.call(body.rows, function (tr) { if (tr.dataset.channel) up[tr.dataset.channel] = tr; });
      var rows = data.calls.map(function (c) {
        var tr = up[c.channel_id] || newRow(c);
        texts(c).forEach(function (text, i) { if (tr.cells[i].textContent !== text) tr.cells[i].textContent = text; });
        return tr;
      });
      if (!rows.length) rows.push(emptyRow());
      // Moving a row would take focus from a button in it: only rows out of place are moved,
      // and rows of calls that ended are removed from the end.
      rows.forEach(function (tr, i) { if (body.rows[i] !== tr) body.insertBefore(tr, body.rows[i] || null); });
      while (body.rows.length > rows.length) body.deleteRow(rows.length);
      problem.hidden = !data.problem; problem.textContent = data.problem || "";
      state.textContent = "Updated " + formatLondon(new Date()) + ": " + data.calls.length + " call(s)" +
        (focused && !body.contains(focused) ? "; the call you had chosen has ended." : ".");
      if (focused && !body.contains(focused)) state.focus();
    };
    var source = new EventSource("/live/events");
    source.addEventListener("calls", function (e) { render(JSON.parse(e.data)); });
    source.addEventListener("error", function () { state.textContent = "Reconnecting…"; });
  }
})();
