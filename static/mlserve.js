// mlserve web UI: progressive enhancement. Without this script every form is a plain post
// answered by a server-rendered page. With it, the prediction form posts in the background
// and the answer is taken from the same server-rendered page, so there is one renderer.
"use strict";

(function () {
  const form = document.getElementById("predict-form");
  if (!form) return;
  // Feature names are arbitrary (a feature may be called "action" or "submit"), so the form's
  // own properties are read through the prototype, never as form.action or form.submit().
  const action = form.getAttribute("action");
  const submitNatively = () => HTMLFormElement.prototype.submit.call(form);
  let latest = 0; // only the answer to the latest request is shown

  async function fetchPage(url, options) {
    const response = await fetch(url, Object.assign({ credentials: "same-origin", headers: { Accept: "text/html" } }, options));
    const html = await response.text();
    return { ok: response.ok, page: new DOMParser().parseFromString(html, "text/html") };
  }

  // The form token may have been renewed (a new cookie came with the page).
  function takeToken(page) {
    const fresh = page.querySelector('#predict-form input[name="_csrf"]');
    const ours = form.querySelector('input[name="_csrf"]');
    if (fresh && ours) ours.value = fresh.value;
  }

  function setError(field, message) {
    const control = field.querySelector("input, select");
    field.querySelector(".error-text").textContent = message;
    field.classList.toggle("invalid", message !== "");
    if (message) control.setAttribute("aria-invalid", "true");
    else control.removeAttribute("aria-invalid");
  }

  // Takes each field's error, and the result panel, from a rendered page.
  function showAnswer(page) {
    for (const field of form.querySelectorAll(".field")) {
      const fresh = page.querySelector('.field[data-field="' + CSS.escape(field.dataset.field) + '"]');
      setError(field, fresh ? fresh.querySelector(".error-text").textContent : "");
    }
    const result = document.getElementById("result");
    result.innerHTML = page.getElementById("result").innerHTML;
    result.classList.remove("updated");
    void result.offsetWidth; // restart the highlight
    result.classList.add("updated");
    const firstInvalid = form.querySelector('[aria-invalid="true"]');
    if (firstInvalid) firstInvalid.focus();
  }

  // Copies the values of a rendered form (random row, or the example) into ours.
  function fillFrom(page) {
    for (const control of form.querySelectorAll("input[name], select[name]")) {
      if (control.type === "hidden") continue;
      const fresh = page.querySelector('#predict-form [name="' + CSS.escape(control.name) + '"]');
      if (!fresh) continue;
      if (control.tagName === "SELECT") control.innerHTML = fresh.innerHTML;
      control.value = fresh.value;
      setError(control.closest(".field"), "");
    }
    // The shown answer belonged to the old values.
    const result = document.getElementById("result");
    result.innerHTML = page.getElementById("result").innerHTML;
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    const request = ++latest;
    form.setAttribute("aria-busy", "true");
    try {
      const { page } = await fetchPage(action, {
        method: "POST",
        body: new URLSearchParams(new FormData(form)),
      });
      if (request !== latest) return;
      if (!page.getElementById("result")) {
        // Not a model page (the form expired, say): let the browser post and show it.
        submitNatively();
        return;
      }
      takeToken(page);
      showAnswer(page);
    } catch (error) {
      if (request === latest) submitNatively();
    } finally {
      if (request === latest) form.removeAttribute("aria-busy");
    }
  });

  for (const link of document.querySelectorAll("a[data-fill]")) {
    link.addEventListener("click", async function (event) {
      event.preventDefault();
      const request = ++latest;
      try {
        const { ok, page } = await fetchPage(link.href);
        if (request !== latest) return;
        if (!ok || !page.getElementById("predict-form")) {
          window.location.href = link.href;
          return;
        }
        takeToken(page);
        fillFrom(page);
        form.querySelector("input:not([type=hidden]), select").focus();
      } catch (error) {
        window.location.href = link.href;
      } finally {
        if (request === latest) form.removeAttribute("aria-busy");
      }
    });
  }
})();
