/* Passkeys (WebAuthn) on the sign-in pages (web/passkeys.py): "Add a passkey" on Sign-in
   security, "Use a passkey" in a login's second step, "Sign in with a passkey" on the
   login page. The options come as JSON (binary fields base64url); the browser's answer
   goes back as a form, so what follows is an ordinary page. */
"use strict";
(function () {
  if (!window.PublicKeyCredential || !navigator.credentials) {
    const note = document.getElementById("passkey-unsupported");
    if (note) note.hidden = false;
    return;
  }

  function decode(text) {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(text.length / 4) * 4, "=");
    return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)).buffer;
  }
  function encode(buffer) {
    let text = "";
    new Uint8Array(buffer).forEach((byte) => { text += String.fromCharCode(byte); });
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function descriptors(list) {
    return (list || []).map((c) => ({ ...c, id: decode(c.id) }));
  }

  /* The answer as the server's webauthn library reads it (the WebAuthn JSON form). */
  function answer(credential) {
    const r = credential.response;
    const response = { clientDataJSON: encode(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = encode(r.attestationObject);
      if (r.getTransports) response.transports = r.getTransports();
    } else {
      response.authenticatorData = encode(r.authenticatorData);
      response.signature = encode(r.signature);
      if (r.userHandle) response.userHandle = encode(r.userHandle);
    }
    return JSON.stringify({
      id: credential.id, rawId: encode(credential.rawId), type: credential.type, response,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
    });
  }

  async function options(path, csrf) {
    const response = await fetch(path, { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf } });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      if (data.location) window.location.assign(data.location); // sign in again first
      throw new Error(data.error || response.statusText);
    }
    return data;
  }

  function post(action, fields) {
    const form = document.createElement("form");
    form.method = "post";
    form.action = action;
    form.hidden = true;
    for (const [name, value] of Object.entries(fields)) {
      const input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      input.value = value;
      form.append(input);
    }
    document.body.append(form);
    form.submit();
  }

  const add = document.getElementById("passkey-add");
  if (add) {
    add.hidden = false;
    const error = add.querySelector('[data-role="error"]');
    add.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.hidden = true;
      try {
        const made = await options("/account/passkeys/options", add.dataset.csrf);
        made.challenge = decode(made.challenge);
        made.user.id = decode(made.user.id);
        made.excludeCredentials = descriptors(made.excludeCredentials);
        const credential = await navigator.credentials.create({ publicKey: made });
        post("/account/passkeys", { name: add.elements.name.value, credential: answer(credential), _csrf: add.dataset.csrf });
      } catch (err) {
        error.hidden = false;
      }
    });
  }

  const signIn = document.getElementById("passkey-login");
  if (signIn) {
    signIn.hidden = false;
    const error = document.getElementById("passkey-error");
    signIn.addEventListener("click", async () => {
      if (error) error.hidden = true;
      try {
        const asked = await options("/login/passkey/options", signIn.dataset.csrf);
        asked.challenge = decode(asked.challenge);
        asked.allowCredentials = descriptors(asked.allowCredentials);
        const credential = await navigator.credentials.get({ publicKey: asked });
        post("/login/passkey", { credential: answer(credential), _csrf: signIn.dataset.csrf });
      } catch (err) {
        if (error) error.hidden = false;
      }
    });
  }
})();
