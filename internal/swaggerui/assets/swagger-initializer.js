// The gateway's Swagger UI settings (replaces the stock swagger-initializer.js
// of swagger-ui-dist): the OpenAPI document next to this page, the token kept
// across reloads (Authorize once with "Bearer <JWT>"), operations listed.
window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: 'doc.json',
    dom_id: '#swagger-ui',
    validatorUrl: null,
    persistAuthorization: true,
    docExpansion: 'list',
    deepLinking: true,
    defaultModelsExpandDepth: 1,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: 'StandaloneLayout',
  });
};
