// Package tlsconf builds the *tls.Config of ckptio's daemons and clients
// from PEM files: a server's certificate and key, a client's CA.
//
// TLS is optional in ckptio and sits under the existing authentication: the
// cluster token's HMAC handshake (storage/wire) and request signatures
// (storage/manager) run inside the TLS connection unchanged. TLS adds
// confidentiality and integrity in transit and proves the server's identity
// to a client holding the CA; it authenticates no client (the token does).
// Both sides require TLS 1.3. docs/security.md has the threat model and
// the openssl commands that make the files.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Server returns the configuration of a server presenting the certificate
// in certFile (PEM, the chain after the leaf) with the private key in
// keyFile (PEM). Errors name the file at fault.
func Server(certFile, keyFile string) (*tls.Config, error) {
	switch {
	case certFile == "" && keyFile == "":
		return nil, errors.New("tlsconf: no certificate and key files given")
	case certFile == "":
		return nil, fmt.Errorf("tlsconf: key file %s given without its certificate file", keyFile)
	case keyFile == "":
		return nil, fmt.Errorf("tlsconf: certificate file %s given without its key file", certFile)
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: certificate %s with key %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS13,
	}, nil
}

// Client returns the configuration of a client that verifies servers
// against the certificates in caFile (PEM, one or more), or against the
// system's roots when caFile is "". serverName is the name the server's
// certificate must carry; "" means the host of the address dialed, which
// is what a client of many stores wants (storage/remote and the manager
// client fill it in per connection).
func Client(caFile, serverName string) (*tls.Config, error) {
	if caFile == "" {
		return ClientPEM(nil, serverName)
	}
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: CA: %w", err)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("tlsconf: CA file %s is empty", caFile)
	}
	cfg, err := ClientPEM(data, serverName)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: CA file %s holds no PEM certificate", caFile)
	}
	return cfg, nil
}

// ClientPEM is Client with the CA's PEM certificates given rather than
// read from a file, for a process that got them from another (an MPI rank
// from rank 0); empty caPEM means the system's roots.
func ClientPEM(caPEM []byte, serverName string) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS13}
	if len(caPEM) == 0 {
		return cfg, nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("tlsconf: no PEM certificate in the CA given")
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// ForHost returns cfg for a connection to host: cfg itself when it names
// its server, else a copy whose ServerName is host. cfg must not be nil.
func ForHost(cfg *tls.Config, host string) *tls.Config {
	if cfg.ServerName != "" {
		return cfg
	}
	c := cfg.Clone()
	c.ServerName = host
	return c
}
