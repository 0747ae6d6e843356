// Starts Swagger UI (vendored in /_mock/assets/swagger-ui/) on the OpenAPI document named by #swagger-ui's
// data-spec, and hides the plain operation table once it has rendered. No network access: validatorUrl is off.
"use strict";
(function () {
  var root = document.getElementById("swagger-ui");
  if (!root || typeof SwaggerUIBundle !== "function") return;
  SwaggerUIBundle({
    url: root.getAttribute("data-spec"),
    dom_id: "#swagger-ui",
    validatorUrl: null,
    deepLinking: true,
    onComplete: function () {
      var table = document.getElementById("offline");
      if (table) table.hidden = true;
    },
  });
})();
