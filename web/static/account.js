/* The account menu in the top bar (web/templates/_account.html) closes on Escape and on a
   click elsewhere, as menus do. */
"use strict";
(function () {
  const menu = document.getElementById("account");
  if (!menu) return;
  document.addEventListener("click", (e) => { if (menu.open && !menu.contains(e.target)) menu.open = false; });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && menu.open) {
      menu.open = false;
      menu.querySelector("summary").focus();
    }
  });
})();
