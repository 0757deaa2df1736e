// Tessera console: shows times in the viewer's locale. Pages work without it.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const el of document.querySelectorAll("time[datetime]")) {
    const t = new Date(el.getAttribute("datetime"));
    if (!Number.isNaN(t.getTime())) {
      el.title = el.getAttribute("datetime");
      el.textContent = t.toLocaleString();
    }
  }
});
