/* The join link page: join at once; the button stays for browsers without scripts. */
"use strict";
(function () {
  const form = document.getElementById("join-link-form");
  if (form && form.dataset.autosubmit) form.submit();
})();
