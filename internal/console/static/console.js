// latchkey console: progressive enhancements only. Every page works
// without this file; it adds live chart updates, copy buttons and
// downloads made from the page itself. No inline script is ever needed
// (the Content-Security-Policy allows scripts from this origin only).
'use strict';

(function () {
  function $(sel, root) { return (root || document).querySelector(sel); }
  function $$(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }

  function say(msg) {
    var s = $('.copy-status');
    if (s) { s.textContent = msg; }
  }

  // Reveal controls that only work with scripts.
  function reveal(root) {
    $$('[data-copy], [data-download], .buttons[hidden], .js-only', root).forEach(function (el) {
      el.hidden = false;
      if (el.parentElement && el.parentElement.hidden) { el.parentElement.hidden = false; }
    });
  }

  // Copy the text of the element named by data-copy.
  function copy(btn) {
    var target = $(btn.getAttribute('data-copy'));
    if (!target) { return; }
    var text = target.textContent;
    var done = function () { say('Copied to the clipboard.'); };
    var fallback = function () {
      var range = document.createRange();
      range.selectNodeContents(target);
      var sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      say('Selected: press Ctrl+C (or Cmd+C) to copy.');
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(done, fallback);
    } else {
      fallback();
    }
  }

  // Save the text of the element named by data-download as a file, built
  // in the browser: the secret is not sent to the server again.
  function download(btn) {
    var target = $(btn.getAttribute('data-download'));
    if (!target) { return; }
    var blob = new Blob([target.textContent], { type: 'text/plain' });
    var url = URL.createObjectURL(blob);
    var a = document.createElement('a');
    a.href = url;
    a.download = btn.getAttribute('data-filename') || 'credentials';
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
    say('Downloaded ' + a.download + '.');
  }

  document.addEventListener('click', function (ev) {
    var btn = ev.target.closest('[data-copy], [data-download]');
    if (!btn) { return; }
    ev.preventDefault();
    if (btn.hasAttribute('data-copy')) { copy(btn); } else { download(btn); }
  });

  // On a narrow screen the chart scrolls sideways: start at the newest
  // minutes, at the right.
  function scrollToNow(fig) {
    var s = $('.chart-scroll', fig);
    if (s) { s.scrollLeft = s.scrollWidth; }
  }

  // Live charts: fetch a fresh chart every few seconds and swap it in,
  // keeping the data table open if it was. live returns a function that
  // stops the updates and abandons a request still under way.
  function live(fig) {
    var secs = parseInt(fig.getAttribute('data-refresh-seconds'), 10) || 10;
    var pending = null;
    var timer = setInterval(function () {
      if (document.hidden || pending) { return; }
      pending = new AbortController();
      fetch(fig.getAttribute('data-refresh-url'), { credentials: 'same-origin', cache: 'no-store', headers: { 'Accept': 'text/html' }, signal: pending.signal })
        .then(function (res) {
          if (!res.ok) {
            throw new Error(res.status === 401 ? 'Your session has ended: reload the page to sign in again.' :
              res.status === 404 ? 'This key no longer exists: the chart is no longer updated.' :
              'The chart could not be updated (' + res.status + ').');
          }
          return res.text();
        })
        .then(function (html) {
          pending = null;
          var tpl = document.createElement('template');
          tpl.innerHTML = html.trim();
          var fresh = tpl.content.querySelector('figure.chart');
          if (!fresh) { return; }
          var open = $('details.chart-data', fig);
          if (open && open.open) { var d = $('details.chart-data', fresh); if (d) { d.open = true; } }
          reveal(fresh);
          var old = $('.chart-scroll', fig);
          var atEnd = !old || old.scrollLeft + old.clientWidth >= old.scrollWidth - 4;
          fig.replaceWith(fresh);
          fig = fresh;
          if (atEnd) { scrollToNow(fig); }
        })
        .catch(function (err) {
          pending = null;
          if (err.name === 'AbortError') { return; }
          clearInterval(timer);
          var p = $('.chart-updated', fig);
          if (p) { p.textContent = err.message; p.setAttribute('role', 'alert'); }
        });
    }, secs * 1000);
    return function stop() {
      clearInterval(timer);
      if (pending) { pending.abort(); }
    };
  }

  // A form sent from the page stops its live charts at once: the page is
  // about to change, and after a delete it must not ask for the chart of
  // a key that is gone (the answer, a 404, would arrive while the browser
  // still shows the page). If the browser brings the page back from its
  // back/forward cache, the charts start again.
  var stops = [];
  function startLive() {
    stops = $$('figure.chart[data-refresh-url]').map(live);
  }
  function stopLive() {
    stops.forEach(function (stop) { stop(); });
    stops = [];
  }
  document.addEventListener('submit', stopLive);
  window.addEventListener('pageshow', function (ev) {
    if (ev.persisted && stops.length === 0) { startLive(); }
  });

  // The page that shows a new secret wipes it when the browser leaves the
  // page, so that Back (even from the back/forward cache) cannot show it
  // again. The server sends it with Cache-Control: no-store as well.
  function guardSecrets() {
    if (!$('[data-secret]')) { return; }
    window.addEventListener('pagehide', function () {
      $$('[data-secret]').forEach(function (el) {
        el.textContent = 'The secret is no longer shown: it is displayed only once.';
      });
    });
  }

  function start() {
    reveal(document);
    guardSecrets();
    $$('figure.chart').forEach(scrollToNow);
    startLive();
  }
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
