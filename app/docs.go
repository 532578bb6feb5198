package app

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/meshgateway/gateway/internal/swaggerui"
	"github.com/meshgateway/gateway/openapi"
)

// registerDocs serves Swagger UI at /swagger/index.html (and /docs) and the
// OpenAPI document at /swagger/doc.json. The Swagger UI files are embedded
// in the binary and only read when requested (swaggo/files, used before,
// copied all ~9 MB of them into the heap at start-up).
func registerDocs(r *gin.Engine) {
	r.GET("/swagger/*any", gin.WrapH(swaggerui.Handler("/swagger/", openapi.SwaggerInfo.ReadDoc)))
	r.GET("/docs", func(c *gin.Context) { c.Redirect(http.StatusFound, "/swagger/index.html") })
	r.GET("/openapi.json", func(c *gin.Context) { c.Redirect(http.StatusFound, "/swagger/"+swaggerui.DocName) })
}
