package auth

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/meshgateway/gateway/registry"
)

// DemoKeyID is the kid of the key GenerateDemoKey returns.
const DemoKeyID = "gateway-demo-1"

// SignToken makes a caller JWT the way a client should: header
// {"alg","typ":"JWT","kid"}, claims iss = sub = clientID, aud, a fresh UUID
// jti and exp = now + lifetime (keep lifetime at or under 5 minutes). key must
// be an *rsa.PrivateKey for RS512/PS512 or an *ecdsa.PrivateKey for ES256.
// It is for the embedded demo, tests and example clients.
func SignToken(key crypto.Signer, kid, alg, clientID, audience string, lifetime time.Duration, now time.Time) (string, error) {
	if !slices.Contains(registry.SupportedAlgorithms(), alg) {
		return "", fmt.Errorf("auth.SignToken: algorithm %q not supported", alg)
	}
	if key == nil || kid == "" || clientID == "" || audience == "" || lifetime <= 0 {
		return "", errors.New("auth.SignToken: key, kid, clientID, audience and a positive lifetime are required")
	}
	token := jwt.NewWithClaims(jwt.GetSigningMethod(alg), jwt.MapClaims{
		"iss": clientID,
		"sub": clientID,
		"aud": audience,
		"jti": uuid.NewString(),
		"exp": now.Add(lifetime).Unix(),
	})
	token.Header["kid"] = kid
	signed, err := token.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("auth.SignToken: %w", err)
	}
	return signed, nil
}

// GenerateDemoKey creates a 2048-bit RSA key for the embedded demo and returns
// it with the public JWKS (kid DemoKeyID, alg RS512) to register for the demo client.
func GenerateDemoKey() (*rsa.PrivateKey, json.RawMessage, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, fmt.Errorf("auth.GenerateDemoKey: %w", err)
	}
	jwks, err := PublicJWKS(DemoKeyID, registry.AlgRS512, &key.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	return key, jwks, nil
}

// PublicJWKS renders one public key as a JWKS document ({"keys":[…]});
// an empty alg leaves the JWK usable with any algorithm its key type allows.
func PublicJWKS(kid, alg string, pub crypto.PublicKey) (json.RawMessage, error) {
	jwk, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{
		Metadata: jwkset.JWKMetadataOptions{ALG: jwkset.ALG(alg), KID: kid, USE: jwkset.UseSig},
	})
	if err != nil {
		return nil, fmt.Errorf("auth.PublicJWKS: jwkset.NewJWKFromKey: %w", err)
	}
	data, err := json.Marshal(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{jwk.Marshal()}})
	if err != nil {
		return nil, fmt.Errorf("auth.PublicJWKS: %w", err)
	}
	return data, nil
}
