/* A transcript page rendered for another time zone than the browser's (the `tz` cookie
   was not set yet, or the computer travelled), opened without ?tz=, loads again in the
   browser's zone. */
"use strict";
(function () {
  const zone = SB.rememberZone();
  const page = document.querySelector("[data-zone]");
  const url = new URL(location.href);
  if (zone && page && page.dataset.zone !== zone && !url.searchParams.has("tz")) {
    url.searchParams.set("tz", zone);
    location.replace(url.toString());
  }
})();
