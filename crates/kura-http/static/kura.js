// Kura console: the only script. Uploads with a progress bar; every page works without it
// (the upload form posts normally when scripts are off).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("upload-form");
  if (!form || !window.XMLHttpRequest || !window.FormData) return;
  var status = document.getElementById("upload-status");
  var bar = document.getElementById("upload-progress");
  var pct = document.getElementById("upload-percent");
  var submit = document.getElementById("upload-submit");
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable && e.total > 0) {
        var v = Math.floor((e.loaded * 100) / e.total);
        bar.value = v;
        pct.textContent = v + "%";
      }
    });
    xhr.addEventListener("load", function () {
      bar.value = 100;
      pct.textContent = "100%";
      // The server answered with a redirect to the project page and its notice.
      window.location.assign(xhr.responseURL || form.action);
    });
    xhr.addEventListener("error", function () {
      pct.textContent = form.getAttribute("data-failed");
      submit.disabled = false;
    });
    status.hidden = false;
    submit.disabled = true;
    xhr.send(new FormData(form));
  });
});
