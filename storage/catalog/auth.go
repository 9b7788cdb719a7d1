package catalog

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// AuthScheme is the Authorization scheme of every request.
const AuthScheme = "CKPT-HMAC"

// MaxClockSkew is how far a request's timestamp may be from the manager's
// clock.
const MaxClockSkew = 5 * time.Minute

// Sign returns the Authorization header value for a request: the HMAC-SHA256
// under token of
//
//	METHOD "\n" PATH?QUERY "\n" ts "\n" hex(sha256(body))
//
// where PATH?QUERY is the request URI as sent (URL.RequestURI) and ts the
// Unix time in seconds.
func Sign(token []byte, method, requestURI string, ts int64, body []byte) string {
	sum := sha256.Sum256(body)
	return fmt.Sprintf("%s ts=%d,sig=%s", AuthScheme, ts, hex.EncodeToString(signature(token, method, requestURI, ts, sum[:])))
}

func signature(token []byte, method, requestURI string, ts int64, bodySum []byte) []byte {
	mac := hmac.New(sha256.New, token)
	fmt.Fprintf(mac, "%s\n%s\n%d\n%s", method, requestURI, ts, hex.EncodeToString(bodySum))
	return mac.Sum(nil)
}

// ParseAuth splits "CKPT-HMAC ts=...,sig=..." into its timestamp and
// signature.
func ParseAuth(h string) (ts int64, sig []byte, ok bool) {
	rest, found := strings.CutPrefix(h, AuthScheme+" ")
	if !found {
		return 0, nil, false
	}
	var tsOK, sigOK bool
	for _, kv := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		switch k {
		case "ts":
			n, err := strconv.ParseInt(v, 10, 64)
			ts, tsOK = n, err == nil
		case "sig":
			b, err := hex.DecodeString(v)
			sig, sigOK = b, err == nil && len(b) == sha256.Size
		}
	}
	return ts, sig, tsOK && sigOK
}

// Verify checks an Authorization header against the request. It returns
// ErrClockSkew (with the offset) or a plain "wrong cluster token" error.
func Verify(token []byte, header, method, requestURI string, now time.Time, body []byte) error {
	ts, sig, ok := ParseAuth(header)
	if !ok {
		return &AuthError{fmt.Sprintf("missing or malformed Authorization header (want %s ts=...,sig=...)", AuthScheme)}
	}
	skew := now.Sub(time.Unix(ts, 0))
	if skew > MaxClockSkew || skew < -MaxClockSkew {
		return fmt.Errorf("%w: request signed at %s, %s from the manager's clock (limit %s); synchronise the clocks",
			ErrClockSkew, time.Unix(ts, 0).UTC().Format(time.RFC3339), skew.Round(time.Second), MaxClockSkew)
	}
	sum := sha256.Sum256(body)
	if !hmac.Equal(sig, signature(token, method, requestURI, ts, sum[:])) {
		return errWrongToken
	}
	return nil
}

// AuthError is a request refused for its Authorization header (401).
type AuthError struct{ msg string }

func (e *AuthError) Error() string { return e.msg }

var errWrongToken = &AuthError{"wrong cluster token"}
