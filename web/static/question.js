/* Asking before what cannot be undone, in the console's modal dialog (#confirm-dialog):
   window.SBQuestion.confirm(title, text, yes) resolves to true or false, and
   .ask(title, fieldLabel, yes) to the text typed, or null. */
"use strict";
(function () {
  const dialog = document.getElementById("confirm-dialog");
  /* An accessible question in a modal dialog. With `field` (a label) it asks for a text
     too and resolves to that text, or null; without, to true or false. */
  function question(title, text, yes, field) {
    const input = dialog.querySelector("textarea");
    dialog.querySelector('[data-role="title"]').textContent = title;
    dialog.querySelector('[data-role="text"]').textContent = text;
    dialog.querySelector('[data-role="text"]').hidden = !text;
    dialog.querySelector('[data-role="field-label"]').textContent = field || "";
    dialog.querySelector('[data-role="field"]').hidden = !field;
    dialog.querySelector('[data-action="confirm"]').textContent = yes;
    input.value = "";
    dialog.returnValue = "";
    dialog.showModal();
    (field ? input : dialog.querySelector('[data-action="confirm"]')).focus();
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => {
        const yes = dialog.returnValue === "confirm";
        resolve(field ? (yes ? input.value : null) : yes);
      }, { once: true });
    });
  }
  window.SBQuestion = {
    confirm: (title, text, yes) => question(title, text, yes),
    ask: (title, fieldLabel, yes) => question(title, "", yes, fieldLabel),
  };
})();
