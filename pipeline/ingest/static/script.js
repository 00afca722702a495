/*
 * Privacy-first analytics tracker. No cookies, no storage, no fingerprinting.
 * <script defer data-domain="example.com" src="https://<collector>/script.js"></script>
 * Options (attributes of the script tag): data-api (pixel URL), data-hash (hash routing),
 * data-local (count localhost), data-outbound-links, data-file-downloads.
 * Events: analytics("Signup", {props: {plan: "pro"}, callback: fn}), or
 * data-analytics-event="Signup" (with data-analytics-prop-plan="pro") on any element.
 * Engagement: `engagement` events with the time the page was visible and the deepest scroll.
 * The collector serves it minified (pipeline/tracker.py); ES5 so any browser parses it.
 * Every byte counts (budget: 1,300 gzipped, docs/tracker.md): names are shortened by the
 * minifier, so keep them readable here and look for savings in what the code does.
 */
(function (w, d) {
  var script = d.currentScript,
    loc = w.location,
    nav = w.navigator,
    encode = encodeURIComponent,
    now = Date.now,
    // The page being viewed: its path and URL (sent with every event, so an engagement
    // sent on an SPA navigation carries the page being left); the ms it was visible that
    // are not sent yet; when its current visible stretch began (falsy while hidden); the
    // deepest scroll (percent of the document above the viewport's bottom).
    path, url, since, depth, engaged = 0;
  if (!script) return;
  // The script tag's data-* options: data.api, "fileDownloads" in data.
  var data = script.dataset,
    hashRouting = "hash" in data,
    api = data.api || new URL(script.src).origin + "/pixel";

  function send(name, options, extra) {
    // Automated browsers, local pages and visitors who ask not to be tracked send nothing.
    if (nav.webdriver || nav.globalPrivacyControl ||
      (!("local" in data) && /^(localhost|127\.[\d.]+|\[::1\]|)$/.test(loc.hostname))) return;
    options = options || {};
    var props = options.props,
      json = "",
      // then() ignores a callback that is no function, and the rejection of a collector
      // that is down must not be left unhandled.
      done = options.callback || Object;
    if (typeof props == "object") {
      // Each value a string of at most 500 characters. The collector keeps 30 props, drops
      // null values and takes nothing but an object (not null, not an array).
      json = JSON.stringify(props, function (key, value) {
        return key && value != null ? String(value).slice(0, 500) : value;
      });
    }
    // keepalive lets the hit outlive the page (outbound clicks, engagement on leaving); a
    // no-cors GET needs no preflight and, cross-origin, carries no cookies.
    fetch(api + "?d=" + encode(data.domain || loc.hostname) + "&n=" + encode(name) +
      "&u=" + encode(url) + "&r=" + encode(d.referrer) + "&w=" + w.innerWidth +
      (json.length > 2 && json.length < 4000 ? "&p=" + encode(json) : "") + (extra || ""),
      { mode: "no-cors", keepalive: true }).then(done, done);
  }

  // A link is sent as the collector keeps a page URL: origin and path plus utm_*, without
  // credentials, fragment, other query parameters, `;` path parameters or an encoded `?`/`#`
  // (presigned downloads, reset links and access tokens ride there). The collector strips again.
  function linkPath(link) {
    return link.pathname.replace(/(%3F|%23).*|(;|%3B)[^\/]*/gi, "");
  }

  function linkUrl(link) {
    var utm = link.search.match(/[?&]utm_(source|medium|campaign|term|content)=[^&]+/g) || [];
    return link.protocol + "//" + link.host + linkPath(link) + utm.join("").replace(/^./, "?");
  }

  // Engagement: time is measured with timestamps when visibility changes (no timer runs,
  // least of all while hidden). Scroll events come at most once per frame and the listener
  // only reads three numbers, so it needs no throttle of its own.
  function scrolled() {
    // clientHeight leaves out a horizontal scrollbar: at the very bottom this is 100.
    var root = d.documentElement;
    depth = Math.max(depth, Math.round((w.scrollY + root.clientHeight) / root.scrollHeight * 100));
  }

  // Report what is new and stop the clock (pagehide: the page is going away).
  function engage() {
    scrolled();
    if (since) engaged += now() - since;
    since = 0;
    // Only when the page was visible since the last report: a tab that stays hidden sends
    // nothing more.
    if (engaged) {
      send("engagement", 0, "&e=" + engaged + "&sd=" + depth);
      engaged = 0;
    }
  }

  // Report, then restart the clock if the page is visible. When it comes back into view,
  // there is nothing to report: all was sent when it was hidden.
  function visibility() {
    engage();
    since = !d.hidden && now();
  }

  function pageview() {
    var current = loc.pathname + (hashRouting ? loc.hash : "");
    if (current == path) return;
    path = current;
    visibility(); // reports the page being left, still under its own URL
    url = (hashRouting ? loc.href : loc.href.split("#")[0]).slice(0, 2000);
    depth = 0;
    send("pageview");
  }

  function analytics(name, options) {
    try {
      if (name) send(name.slice(0, 120), options); // slice() throws for no string
    } catch (e) { /* a tracker must never break its page */ }
  }

  // Single-page apps: a pageview whenever the path changes.
  ["pushState", "replaceState"].forEach(function (method) {
    var original = history[method];
    history[method] = function () {
      original.apply(this, arguments); // always undefined
      pageview();
    };
  });
  w.addEventListener("popstate", pageview);
  w.addEventListener("hashchange", pageview); // without data-hash the path is the same: no-op
  w.addEventListener("scroll", scrolled);
  w.addEventListener("pagehide", engage);
  d.addEventListener("visibilitychange", visibility);

  d.addEventListener("click", function (event) {
    var el = event.target.closest && event.target.closest("[data-analytics-event],a[href]"),
      name = el && el.getAttribute("data-analytics-event"),
      props = {},
      link;
    if (name) {
      [].forEach.call(el.attributes, function (a) {
        if (!a.name.indexOf("data-analytics-prop-")) props[a.name.slice(20)] = a.value;
      });
    } else if (el) {
      link = new URL(el.href);
      props.url = linkUrl(link);
      name = "fileDownloads" in data &&
        /\.(pdf|docx?|xlsx?|pptx?|csv|zip|t?gz|dmg|exe|msi|pkg|mp[34])$/i.test(linkPath(link)) ?
        "File Download" :
        "outboundLinks" in data && link.host != loc.host && /^http/.test(link.protocol) &&
        "Outbound Link: Click";
    }
    if (name) analytics(name, { props: props });
  }, true);

  // Calls made before the script loaded wait in analytics.q (sent after the pageview, which
  // sets the URL they carry).
  var queued = (w.analytics && w.analytics.q) || [];
  w.analytics = analytics;
  pageview();
  queued.forEach(function (args) { analytics.apply(null, args); });
})(window, document);
