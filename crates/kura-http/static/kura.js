// Kura console: the only script. Uploads with a progress bar and passkeys; every page but
// passkey registration works without it
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

// Passkeys (WebAuthn). The server sends the options of navigator.credentials.create() /
// .get() with binary fields in base64url; the answer goes back the same way, in a hidden
// form field, and the form posts normally.
(function () {
  function b64urlToBuf(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function bufToB64url(buf) {
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function creationOptions(o) {
    var pk = o.publicKey;
    pk.challenge = b64urlToBuf(pk.challenge);
    pk.user.id = b64urlToBuf(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = b64urlToBuf(c.id); });
    return { publicKey: pk };
  }
  function requestOptions(o) {
    var pk = o.publicKey;
    pk.challenge = b64urlToBuf(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = b64urlToBuf(c.id); });
    return { publicKey: pk };
  }
  function registration(c) {
    return {
      id: c.id, rawId: bufToB64url(c.rawId), type: c.type, extensions: {},
      response: {
        attestationObject: bufToB64url(c.response.attestationObject),
        clientDataJSON: bufToB64url(c.response.clientDataJSON),
        transports: c.response.getTransports ? c.response.getTransports() : undefined
      }
    };
  }
  function assertion(c) {
    return {
      id: c.id, rawId: bufToB64url(c.rawId), type: c.type, extensions: {},
      response: {
        authenticatorData: bufToB64url(c.response.authenticatorData),
        clientDataJSON: bufToB64url(c.response.clientDataJSON),
        signature: bufToB64url(c.response.signature),
        userHandle: c.response.userHandle ? bufToB64url(c.response.userHandle) : null
      }
    };
  }
  function postJson(url, body, csrf) {
    var headers = { "content-type": "application/json" };
    if (csrf) headers["x-csrf-token"] = csrf;
    return fetch(url, { method: "POST", credentials: "same-origin", headers: headers, body: JSON.stringify(body || {}) })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); });
  }
  // One button: fetch options, ask the authenticator, put the answer in the form, post it.
  function wire(formId, buttonId, start, ask, encode) {
    var form = document.getElementById(formId);
    var button = document.getElementById(buttonId);
    if (!form || !button) return;
    if (!window.PublicKeyCredential || !navigator.credentials) return;
    form.hidden = false;
    button.disabled = false;
    var status = form.querySelector("[role=status]");
    button.addEventListener("click", function () {
      if (status) status.textContent = "";
      button.disabled = true;
      var csrf = form.elements["_csrf"].value;
      new Promise(function (resolve) { resolve(start(form, csrf)); })
        .then(function (st) {
          form.elements["ceremony"].value = st.ceremony;
          return ask(st.options);
        })
        .then(function (cred) {
          form.elements["credential"].value = JSON.stringify(encode(cred));
          form.submit();
        })
        .catch(function () {
          if (status) status.textContent = form.getAttribute("data-failed");
          button.disabled = false;
        });
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    wire("passkey-form", "passkey-add",
      function (form, csrf) { return postJson("/api/v1/me/mfa/passkeys/options", {}, csrf); },
      function (o) { return navigator.credentials.create(creationOptions(o)); },
      registration);
    wire("passkey-login-form", "passkey-login",
      function (form, csrf) {
        var tenant = document.getElementById("login-tenant");
        if (!tenant.value) { tenant.reportValidity(); throw new Error("tenant"); }
        form.elements["tenant"].value = tenant.value;
        return postJson("/login/passkey/options", { tenant: tenant.value }, csrf);
      },
      function (o) { return navigator.credentials.get(requestOptions(o)); },
      assertion);
    wire("mfa-passkey-form", "mfa-passkey",
      function (form) { return postJson("/api/v1/auth/mfa/passkey/options", { challenge: form.elements["challenge"].value }); },
      function (o) { return navigator.credentials.get(requestOptions(o)); },
      assertion);
  });
})();
