/* Search excerpts on a site opened from disk (site/_ext/offline_search.py).
 *
 * Sphinx's search page fetches each hit's page to cut an excerpt from it; a
 * browser refuses fetch() on file:// addresses. Opened from file://, answer
 * those requests from window.MTL_SEARCH_PAGES (the pages' text, written by
 * the build into _static/search-pages.js). Over http this does nothing. */
(function () {
  "use strict";
  if (window.location.protocol !== "file:" || !window.MTL_SEARCH_PAGES) {
    return;
  }
  var pages = window.MTL_SEARCH_PAGES;
  var browserFetch = window.fetch.bind(window);
  window.fetch = function (input, init) {
    var url = typeof input === "string" ? input : input.url;
    var root = document.documentElement.dataset.content_root || "";
    var key = url.indexOf(root) === 0 ? url.slice(root.length) : url;
    if (Object.prototype.hasOwnProperty.call(pages, key)) {
      return Promise.resolve(new Response(pages[key], { headers: { "Content-Type": "text/html" } }));
    }
    return browserFetch(input, init);
  };
})();
