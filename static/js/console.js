// The console's only script of its own (CSP: no inline script, no eval). It marks a live region
// as connected or not, from htmx's websocket extension events.
document.addEventListener("htmx:wsOpen", (event) => {
  const region = event.target.closest("[data-live]");
  if (region) region.dataset.live = "on";
});
document.addEventListener("htmx:wsClose", (event) => {
  const region = event.target.closest("[data-live]");
  if (region) region.dataset.live = "off";
});
// A form marked data-autosubmit submits itself when one of its choices changes (the evacuation
// preview plans again), as does the form of a single choice so marked (a folder in the selection's
// plan); the form's own button does the same without script.
document.addEventListener("change", (event) => {
  const form = event.target.form;
  if (form && (form.hasAttribute("data-autosubmit") || event.target.hasAttribute("data-autosubmit"))) {
    form.requestSubmit();
  }
});
// "/" anywhere but in a field puts the cursor in the top bar's search, as GitHub and Proxmox do.
document.addEventListener("keydown", (event) => {
  if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  if (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName)) return;
  const search = document.getElementById("search-q");
  if (search) {
    event.preventDefault();
    search.focus();
  }
});
// The browser's time zone, so that the console shows and reads times in it (TimeZoneMiddleware);
// the page drawn before the cookie existed shows the console's zone, the next one the browser's.
(() => {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (zone && !document.cookie.split("; ").includes(`tz=${zone}`)) {
    document.cookie = `tz=${zone}; path=/; max-age=31536000; SameSite=Lax`;  // IANA names need no escaping
  }
})();
// A button marked data-print prints the page (the pre-maintenance report); print CSS drops the chrome.
document.addEventListener("click", (event) => {
  if (event.target.closest("[data-print]")) window.print();
});
