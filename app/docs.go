package app

import (
	"net/http"

	"github.com/gin-gonic/gin"
	swaggerFiles "github.com/swaggo/files"
	ginSwagger "github.com/swaggo/gin-swagger"

	_ "github.com/meshgateway/gateway/openapi" // registers the generated OpenAPI document
)

// registerDocs serves Swagger UI at /swagger/index.html (and /docs).
func registerDocs(r *gin.Engine) {
	r.GET("/swagger/*any", ginSwagger.WrapHandler(swaggerFiles.Handler,
		ginSwagger.PersistAuthorization(true), ginSwagger.DocExpansion("list")))
	r.GET("/docs", func(c *gin.Context) { c.Redirect(http.StatusFound, "/swagger/index.html") })
	r.GET("/openapi.json", func(c *gin.Context) { c.Redirect(http.StatusFound, "/swagger/doc.json") })
}
