/* Support for the ipywidgets drawn on these static pages (site/_ext/mtl_site.py).
 *
 * 1. ipywidgets 8 typesets widget labels through the MathJax 2 API
 * (MathJax.Hub.Queue(["Typeset", MathJax.Hub, element])). These pages load
 * MathJax 3, which has no Hub, so the widget manager would throw while drawing
 * a labelled control. Give MathJax 3 a minimal Hub that forwards to
 * MathJax.typesetPromise. Installed at DOMContentLoaded: after the deferred
 * MathJax script ran and before the widget manager draws (on window "load").
 *
 * 2. The widget manager draws a widget's figure as an <img> without alt text.
 * The build puts the figure's description next to the widget
 * (<span class="mtl-widget-alt" data-alt="...">); copy it onto the images. */
(function () {
  "use strict";
  function install() {
    var mj = window.MathJax;
    if (!mj || mj.Hub) {
      return;
    }
    mj.Hub = {
      Queue: function () {
        var elements = [];
        Array.prototype.forEach.call(arguments, function (job) {
          if (Array.isArray(job) && job[0] === "Typeset" && job[2]) {
            elements.push(job[2]);
          }
        });
        var ready = (mj.startup && mj.startup.promise) || Promise.resolve();
        ready
          .then(function () {
            if (window.MathJax.typesetPromise && elements.length) {
              return window.MathJax.typesetPromise(elements);
            }
          })
          .catch(function (err) {
            console.warn("MathJax could not typeset a widget label:", err);
          });
      },
    };
  }
  function labelWidgetImages() {
    document.querySelectorAll(".mtl-widget-alt").forEach(function (label) {
      var output = label.closest(".cell_output") || label.parentElement;
      if (!output) {
        return;
      }
      output.querySelectorAll(".jupyter-widgets img:not([alt])").forEach(function (img) {
        img.setAttribute("alt", label.getAttribute("data-alt") || "");
      });
    });
  }

  function start() {
    install();
    if (document.querySelector(".mtl-widget-alt")) {
      labelWidgetImages();
      new MutationObserver(labelWidgetImages).observe(document.body, { childList: true, subtree: true });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
