// Start GOV.UK Frontend's components. Pages work without this file.
import { initAll } from "/govuk/govuk-frontend.min.js";

document.body.classList.add("js-enabled", "govuk-frontend-supported");
initAll();
