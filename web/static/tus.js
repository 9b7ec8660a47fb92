/* A small tus 1.0 client (docs/transfer.md) for files.js: create the upload (POST), then
   PATCH from the offset the broker has, resuming with HEAD after a lost connection. PATCH
   goes through XMLHttpRequest because fetch() reports no upload progress. */
"use strict";
window.SBTus = (function () {
  const CHUNK = 64 * 1024 * 1024;  // per PATCH; a lost connection resumes from the offset anyway
  const MAX_RETRIES = 12;

  function base64(text) {
    let binary = "";
    for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
    return btoa(binary);
  }

  async function errorOf(response) {
    const data = await response.json().catch(() => ({}));
    const error = new Error(data.message || response.statusText || String(response.status));
    error.code = data.error || "http_" + response.status;
    error.status = response.status;
    return error;
  }

  /* One upload: create it (POST), then PATCH from the offset the broker has, resuming
     with HEAD after a lost connection. */
  class TusUpload {
    constructor(file, opts) {
      this.file = file;
      // endpoint, headers, onCreated(id), onProgress(sent), onDone(), onFail(error), onRetry(),
      // onWait(seconds): the broker limits how many uploads a participant starts (429)
      this.opts = opts;
      this.url = null;
      this.xhr = null;
      this.retries = 0;
      this.cancelled = false;
      this.timer = null;
    }
    headers(extra) { return Object.assign({ "Tus-Resumable": "1.0.0" }, this.opts.headers, extra); }
    async start() {
      try {
        const response = await fetch(this.opts.endpoint, {
          method: "POST", credentials: "same-origin",
          headers: this.headers({
            "Upload-Length": String(this.file.size),
            "Upload-Metadata": "filename " + base64(this.file.name || "file"),
          }),
        });
        if (response.status === 429) { this.wait(response); return; }
        if (response.status !== 201) throw await errorOf(response);
        this.url = response.headers.get("Location");
        if (this.opts.onCreated) this.opts.onCreated(this.url.split("/").pop());
        if (this.file.size === 0) { this.opts.onDone(); return; }
        this.send(0);
      } catch (error) {
        if (error.status) this.opts.onFail(error); else this.retry(() => this.start());
      }
    }
    send(offset) {
      if (this.cancelled) return;
      const xhr = new XMLHttpRequest();
      this.xhr = xhr;
      xhr.open("PATCH", this.url);
      xhr.withCredentials = true;
      const headers = this.headers({ "Upload-Offset": String(offset),
                                     "Content-Type": "application/offset+octet-stream" });
      for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
      xhr.upload.onprogress = (e) => this.opts.onProgress(offset + e.loaded);
      xhr.onload = () => {
        if (this.cancelled) return;
        if (xhr.status === 204) {
          const next = Number(xhr.getResponseHeader("Upload-Offset"));
          this.retries = 0;
          this.opts.onProgress(next);
          if (next >= this.file.size) this.opts.onDone(); else this.send(next);
          return;
        }
        if (xhr.status === 409 || xhr.status === 423 || xhr.status >= 500) { this.retry(() => this.resume()); return; }
        let data = {};
        try { data = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
        const error = new Error(data.message || xhr.statusText);
        error.code = data.error || "http_" + xhr.status;
        error.status = xhr.status;
        this.opts.onFail(error);
      };
      xhr.onerror = () => { if (!this.cancelled) this.retry(() => this.resume()); };
      xhr.send(this.file.slice(offset, Math.min(this.file.size, offset + CHUNK)));
    }
    /* Ask where the broker stands, and go on from there. */
    async resume() {
      try {
        const response = await fetch(this.url, { method: "HEAD", credentials: "same-origin",
                                                  headers: this.headers({}) });
        if (response.status !== 200) throw await errorOf(response);
        const offset = Number(response.headers.get("Upload-Offset"));
        if (offset >= this.file.size) this.opts.onDone(); else this.send(offset);
      } catch (error) {
        if (error.status && error.status < 500) this.opts.onFail(error); else this.retry(() => this.resume());
      }
    }
    /* Too many uploads started at once: start this one when the broker says it may. */
    wait(response) {
      if (this.cancelled) return;
      const seconds = Math.min(300, Math.max(1, Number(response.headers.get("Retry-After")) || 1));
      if (this.opts.onWait) this.opts.onWait(seconds);
      this.timer = setTimeout(() => this.start(), seconds * 1000);
    }
    retry(again) {
      if (this.cancelled) return;
      if (this.retries >= MAX_RETRIES) {
        const error = new Error("network");
        error.code = "network";
        this.opts.onFail(error);
        return;
      }
      const delay = Math.min(30000, 1000 * 2 ** this.retries);
      this.retries += 1;
      this.opts.onRetry();
      const go = () => { window.removeEventListener("online", go); clearTimeout(this.timer); again(); };
      this.timer = setTimeout(go, delay);
      window.addEventListener("online", go);  // back online: at once
    }
    cancel() {
      this.cancelled = true;
      clearTimeout(this.timer);
      if (this.xhr) this.xhr.abort();
      if (this.url) {
        fetch(this.url, { method: "DELETE", credentials: "same-origin", headers: this.headers({}) })
          .catch(() => {});
      }
    }
  }

  return { TusUpload };
})();
