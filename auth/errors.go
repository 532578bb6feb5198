// Package auth verifies the signed JWT every caller sends as
// "Authorization: Bearer <jwt>", following the NHS API platform's
// application-restricted signed-JWT pattern (the client assertion is sent
// directly, there is no token endpoint). Errors carry the platform's status
// codes and error strings so callers familiar with the NHS platform recognise
// them. The package is HTTP-free apart from those status codes.
package auth

import (
	"fmt"
	"net/http"
)

// Error codes, as the NHS platform returns them in the "error" field.
const (
	CodeInvalidRequest = "invalid_request"
	CodePublicKey      = "public_key error"
	CodeUnavailable    = "temporarily_unavailable"
)

// Error descriptions. They are the platform's strings with "client_assertion"
// dropped or replaced where it would mislead (the JWT is the bearer token
// here, not a client_assertion form field).
const (
	DescMissingAuthorization = "Missing Authorization header - must be 'Bearer <signed JWT>'"
	DescInvalidAuthorization = "Invalid Authorization header - must be 'Bearer <signed JWT>'"
	DescMalformed            = "Malformed JWT in Authorization header"
	DescMissingKid           = "Missing 'kid' header in JWT"
	DescUnknownKid           = "Invalid 'kid' header in JWT - no matching public key"
	DescInvalidTyp           = "Invalid 'typ' header in JWT - must be 'JWT'"
	DescMissingAlg           = "Missing 'alg' header in JWT"
	DescInvalidAlgPrefix     = "Invalid 'alg' header in JWT - unsupported JWT algorithm - must be " // + 'RS512' or one of a list
	DescInvalidIssSub        = "Invalid 'iss'/'sub' claims in JWT"
	DescMissingIssSub        = "Missing or non-matching 'iss'/'sub' claims in JWT"
	DescMissingJti           = "Missing 'jti' claim in JWT"
	DescReplayedJti          = "Non-unique 'jti' claim in JWT"
	DescInvalidJti           = "Invalid 'jti' claim in JWT - must be a unique string value such as a GUID"
	DescInvalidAud           = "Missing or invalid 'aud' claim in JWT"
	DescMissingExp           = "Missing 'exp' claim in JWT"
	DescExpired              = "Invalid 'exp' claim in JWT - JWT has expired"
	DescExpTooFar            = "Invalid 'exp' claim in JWT - more than 5 minutes in future"
	DescExpNotInteger        = "Invalid 'exp' claim in JWT - must be an integer"
	DescNotYetValid          = "Invalid 'nbf' claim in JWT - JWT is not yet valid"
	DescBadSignature         = "JWT signature verification failed"
	DescNoPublicKey          = "You need to register a public key to use this authentication method - please contact support to configure"
	DescJWKSUnreachable      = "The JWKS endpoint for your client can not be reached"
	DescReplayUnavailable    = "Unable to check the 'jti' claim is unique - please retry"
)

// Error is every verification failure: an HTTP status, the platform's error
// code and its description. The description is safe to return to the caller
// and to log (it never contains token contents).
type Error struct {
	Status      int
	Code        string
	Description string
	cause       error // internal detail for logs (never patient data); not part of Error()
}

func (e *Error) Error() string {
	return fmt.Sprintf("auth: %d %s: %s", e.Status, e.Code, e.Description)
}

// Unwrap exposes the underlying cause (e.g. a Redis or JWKS fetch error).
func (e *Error) Unwrap() error { return e.cause }

func badRequest(desc string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Description: desc}
}

func unauthorized(desc string) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: CodeInvalidRequest, Description: desc}
}

func publicKeyError(status int, desc string, cause error) *Error {
	return &Error{Status: status, Code: CodePublicKey, Description: desc, cause: cause}
}
