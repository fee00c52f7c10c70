// Starts Swagger UI on the page that loads this file (no inline script: the page's CSP allows
// scripts from this origin only). The document's URL is the script tag's data-spec.
const spec = document.currentScript.dataset.spec;
window.addEventListener('load', () => {
  window.ui = SwaggerUIBundle({
    url: spec,
    dom_id: '#swagger-ui',
    deepLinking: true,
    validatorUrl: null,  // the online validator badge would call an outside origin
  });
});
