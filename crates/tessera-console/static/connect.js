// Tessera connect page. The page works without it, except for telling a
// framing page or an opener that the person finished.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // Framed: a provider's sign-in page refuses to be framed, so OAuth flows
  // open in a new window; "Refresh" shows the result here afterwards.
  if (window.top !== window.self) {
    for (const form of document.querySelectorAll("form.oauth")) form.target = "_blank";
  }
  const done = document.getElementById("connect-done");
  if (!done) return;
  const message = {
    type: "tessera.connect",
    status: done.dataset.status,
    integration: done.dataset.integration,
    sessionId: done.dataset.session,
  };
  let origins = [];
  try { origins = JSON.parse(done.dataset.origins || "[]"); } catch (e) { origins = []; }
  const target = window.opener || (window.parent !== window ? window.parent : null);
  if (target && origins.length > 0) {
    // Delivered only to a listed origin: postMessage drops it elsewhere.
    for (const origin of origins) target.postMessage(message, origin);
    if (window.opener) window.close();
    return;
  }
  if (done.dataset.redirect) window.location.replace(done.dataset.redirect);
});
