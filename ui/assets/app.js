// The dashboard's only script: copy buttons and the "select all" of a
// shown secret. Everything else works without it (plain links and forms).
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var field = document.getElementById(button.getAttribute("data-copy"));
      if (!field) {
        return;
      }
      var done = function () {
        button.textContent = "Copied";
        button.setAttribute("aria-live", "polite");
      };
      field.focus();
      field.select();
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done, function () {
          if (document.execCommand("copy")) {
            done();
          }
        });
      } else if (document.execCommand("copy")) {
        done();
      }
    });
  });
  document.querySelectorAll("input.secret-value").forEach(function (field) {
    field.addEventListener("focus", function () {
      field.select();
    });
  });
});
