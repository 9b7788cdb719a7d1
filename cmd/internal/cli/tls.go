package cli

import (
	"crypto/tls"
	"errors"

	"github.com/ckptio/ckptio/storage/tlsconf"
)

// SystemCA is the --tls-ca value that verifies servers against the
// system's roots rather than a CA file.
const SystemCA = "system"

// ServerTLS returns a daemon's TLS configuration from its --tls-cert and
// --tls-key files: nil when both are empty, to serve in clear.
func ServerTLS(certFile, keyFile string) (*tls.Config, error) {
	switch {
	case certFile == "" && keyFile == "":
		return nil, nil
	case keyFile == "":
		return nil, errors.New("--tls-cert needs --tls-key, the file of its private key")
	case certFile == "":
		return nil, errors.New("--tls-key needs --tls-cert, the file of its certificate")
	}
	return tlsconf.Server(certFile, keyFile)
}

// ClientTLS returns the TLS configuration of connections to a cluster's
// manager and stores from --tls-ca (or CKPT_TLS_CA): nil when caFile is
// empty, to connect in clear; SystemCA verifies against the system's
// roots; any other value is a PEM file of the CA.
func ClientTLS(caFile string) (*tls.Config, error) {
	switch caFile {
	case "":
		return nil, nil
	case SystemCA:
		return tlsconf.Client("", "")
	}
	return tlsconf.Client(caFile, "")
}
