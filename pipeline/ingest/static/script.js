/*
 * Privacy-first analytics tracker. No cookies, no storage, no fingerprinting.
 * <script defer data-domain="example.com" src="https://<collector>/script.js"></script>
 * Options (attributes of the script tag): data-api (pixel URL), data-hash (hash routing),
 * data-local (count localhost), data-outbound-links, data-file-downloads.
 * Events: analytics("Signup", {props: {plan: "pro"}, callback: fn}), or
 * data-analytics-event="Signup" (with data-analytics-prop-plan="pro") on any element.
 * The collector serves it minified (pipeline/tracker.py); ES5 so any browser parses it.
 */
(function (w, d) {
  var script = d.currentScript,
    loc = w.location,
    nav = w.navigator,
    encode = encodeURIComponent,
    option = function (name) { return script.getAttribute("data-" + name); },
    hashRouting = script && option("hash") != null,
    lastPath;
  if (!script) return;
  var api = option("api") || new URL(script.src).origin + "/pixel";

  function send(name, options) {
    // Automated browsers, local pages and visitors who ask not to be tracked send nothing.
    if (nav.webdriver || nav.globalPrivacyControl ||
      (option("local") == null && /^(localhost|127\.[\d.]+|\[::1\]|)$/.test(loc.hostname))) return;
    options = options || {};
    var props = options.props,
      json = "";
    if (props && typeof props == "object" && !Array.isArray(props)) {
      // At most 30 props, each value a string of at most 500 characters (the collector
      // caps keys and values again).
      var clean = {};
      Object.keys(props).slice(0, 30).forEach(function (key) {
        if (props[key] != null) clean[key] = String(props[key]).slice(0, 500);
      });
      json = JSON.stringify(clean);
    }
    // Always settle the promise: an unreachable collector must not log an unhandled rejection.
    var done = typeof options.callback == "function" ? options.callback : function () {};
    // keepalive lets the hit outlive the page (outbound clicks); a no-cors GET needs no
    // preflight and, cross-origin, carries no cookies.
    fetch(api + "?d=" + encode(option("domain") || loc.hostname) + "&n=" + encode(name) +
      "&u=" + encode((hashRouting ? loc.href : loc.href.split("#")[0]).slice(0, 2000)) +
      "&r=" + encode(d.referrer) + "&w=" + w.innerWidth +
      (json.length > 2 && json.length < 4000 ? "&p=" + encode(json) : ""),
      { mode: "no-cors", keepalive: true }).then(done, done);
  }

  // A link is sent as the collector keeps a page URL: origin and path plus utm_*, without
  // credentials, fragment, other query parameters, `;` path parameters or an encoded `?`/`#`
  // (presigned downloads, reset links and access tokens ride there). The collector strips again.
  function linkPath(link) {
    return link.pathname.split(/%3F|%23/i)[0].replace(/(;|%3B)[^\/]*/gi, "");
  }

  function linkUrl(link) {
    var utm = link.search.slice(1).split("&").filter(function (pair) {
      return /^utm_(source|medium|campaign|term|content)=./.test(pair);
    });
    return (link.origin == "null" ? link.protocol : link.origin) + linkPath(link) +
      (utm.length ? "?" + utm.join("&") : "");
  }

  function pageview() {
    var path = loc.pathname + (hashRouting ? loc.hash : "");
    if (path == lastPath) return;
    lastPath = path;
    send("pageview");
  }

  function analytics(name, options) {
    try {
      if (name && typeof name == "string") send(name.slice(0, 120), options);
    } catch (e) { /* a tracker must never break its page */ }
  }

  // Single-page apps: a pageview whenever the path changes.
  ["pushState", "replaceState"].forEach(function (method) {
    var original = history[method];
    history[method] = function () {
      var result = original.apply(this, arguments);
      pageview();
      return result;
    };
  });
  w.addEventListener("popstate", pageview);
  if (hashRouting) w.addEventListener("hashchange", pageview);

  d.addEventListener("click", function (event) {
    var el = event.target.closest && event.target.closest("[data-analytics-event],a[href]");
    if (!el) return;
    var name = el.getAttribute("data-analytics-event"),
      props = {};
    if (name) {
      [].forEach.call(el.attributes, function (a) {
        if (!a.name.indexOf("data-analytics-prop-")) props[a.name.slice(20)] = a.value;
      });
    } else {
      var link = new URL(el.href);
      props.url = linkUrl(link);
      if (option("file-downloads") != null &&
        /\.(pdf|docx?|xlsx?|pptx?|csv|zip|t?gz|dmg|exe|msi|pkg|mp[34])$/i.test(linkPath(link))) {
        name = "File Download";
      } else if (option("outbound-links") != null && link.host != loc.host && /^http/.test(link.protocol)) {
        name = "Outbound Link: Click";
      }
    }
    if (name) analytics(name, { props: props });
  }, true);

  // Calls made before the script loaded wait in analytics.q.
  var queued = (w.analytics && w.analytics.q) || [];
  w.analytics = analytics;
  queued.forEach(function (args) { analytics.apply(null, args); });
  pageview();
})(window, document);
