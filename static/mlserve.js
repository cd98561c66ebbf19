// mlserve web UI: progressive enhancement. Without this script every form is a plain post
// answered by a server-rendered page. With it, the prediction form posts in the background
// and the answer is taken from the same server-rendered page, so there is one renderer.
"use strict";

(function () {
  const form = document.getElementById("predict-form");
  if (!form) return;

  async function fetchPage(url, options) {
    const response = await fetch(url, Object.assign({ credentials: "same-origin", headers: { Accept: "text/html" } }, options));
    const html = await response.text();
    return new DOMParser().parseFromString(html, "text/html");
  }

  // Takes each field's error, and the result panel, from a rendered page.
  function showAnswer(page) {
    for (const field of form.querySelectorAll(".field")) {
      const fresh = page.querySelector('.field[data-field="' + CSS.escape(field.dataset.field) + '"]');
      if (!fresh) continue;
      const control = field.querySelector("input, select");
      const message = fresh.querySelector(".error-text").textContent;
      field.querySelector(".error-text").textContent = message;
      field.classList.toggle("invalid", message !== "");
      if (message) control.setAttribute("aria-invalid", "true");
      else control.removeAttribute("aria-invalid");
    }
    const result = document.getElementById("result");
    const fresh = page.getElementById("result");
    result.innerHTML = fresh.innerHTML;
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
      if (control.tagName === "SELECT") {
        control.innerHTML = fresh.innerHTML;
      }
      control.value = fresh.value;
      control.removeAttribute("aria-invalid");
      control.closest(".field").classList.remove("invalid");
      control.closest(".field").querySelector(".error-text").textContent = "";
    }
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    form.setAttribute("aria-busy", "true");
    try {
      const page = await fetchPage(form.action, {
        method: "POST",
        body: new URLSearchParams(new FormData(form)),
      });
      if (!page.getElementById("result")) {
        // Not a model page (the form expired, say): let the browser show it.
        form.submit();
        return;
      }
      showAnswer(page);
    } catch (error) {
      form.submit();
    } finally {
      form.removeAttribute("aria-busy");
    }
  });

  for (const link of document.querySelectorAll("a[data-fill]")) {
    link.addEventListener("click", async function (event) {
      event.preventDefault();
      try {
        fillFrom(await fetchPage(link.href));
        form.querySelector("input:not([type=hidden]), select").focus();
      } catch (error) {
        window.location.href = link.href;
      }
    });
  }
})();
