package wire

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ckptio/ckptio/storage"
)

// Handshake constants; see the package documentation.
const (
	NonceSize           = 32
	MACSize             = sha256.Size
	MaxHandshakePayload = 1024
	HandshakeTimeout    = 5 * time.Second
)

// WrongTokenMessage is the message of the server's Unauthorized answer.
const WrongTokenMessage = "wrong cluster token"

var (
	clientLabel = []byte("ckptio-client")
	serverLabel = []byte("ckptio-server")
)

// deadliner is the part of net.Conn the handshake uses to bound its time.
type deadliner interface {
	SetDeadline(t time.Time) error
}

// ServerHandshake runs the server's side of the handshake on a connection
// just accepted. It returns nil once the client has proved it knows token
// and has been sent the server's proof; on a wrong proof it answers
// Unauthorized and returns an error wrapping storage.ErrUnauthorized. The
// caller closes the connection on any error.
//
// When rw has a SetDeadline method (a net.Conn), the handshake is bounded
// by HandshakeTimeout and by ctx, and the deadline is cleared on success.
func ServerHandshake(ctx context.Context, rw io.ReadWriter, token []byte) error {
	return ServerHandshakeVerified(ctx, rw, token, nil)
}

// ServerHandshakeVerified is ServerHandshake with verified called once the
// client's proof has been checked and before the server's proof is sent:
// whatever verified records about the client is in place before the client
// can know it was let in.
func ServerHandshakeVerified(ctx context.Context, rw io.ReadWriter, token []byte, verified func()) error {
	done, err := bound(ctx, rw)
	if err != nil {
		return err
	}
	err = serverHandshake(rw, token, verified)
	return done(err)
}

func serverHandshake(rw io.ReadWriter, token []byte, verified func()) error {
	var sn [NonceSize]byte
	rand.Read(sn[:])
	if err := WriteFrame(rw, 0, OpHello, StatusOK, sn[:]); err != nil {
		return fmt.Errorf("wire: handshake: send hello: %w", err)
	}
	f, err := readHandshakeFrame(rw)
	if err != nil {
		return err
	}
	if f.Status != StatusOK || len(f.Payload) != NonceSize+MACSize {
		return fmt.Errorf("%w: client answer has status %s and %d bytes, want ok and %d",
			ErrHandshake, f.Status, len(f.Payload), NonceSize+MACSize)
	}
	cn := f.Payload[:NonceSize]
	if !hmac.Equal(f.Payload[NonceSize:], mac(token, clientLabel, sn[:], cn)) {
		// Best effort: the client learns why before the connection closes.
		_ = WriteError(rw, 0, OpHello, StatusUnauthorized, WrongTokenMessage)
		return fmt.Errorf("wire: client's proof does not match the cluster token: %w", storage.ErrUnauthorized)
	}
	if verified != nil {
		verified()
	}
	if err := WriteFrame(rw, 0, OpHello, StatusOK, mac(token, serverLabel, cn, sn[:])); err != nil {
		return fmt.Errorf("wire: handshake: send proof: %w", err)
	}
	return nil
}

// ClientHandshake runs the client's side of the handshake on a connection
// just dialed. It returns nil once both sides have proved they know token.
// When the server refuses the token, the error is a *StatusError that
// unwraps to storage.ErrUnauthorized; when the server takes no more
// connections, one that unwraps to ErrBusy; when the server's own proof is
// wrong, an error wrapping storage.ErrUnauthorized. The caller closes the
// connection on any error. Deadlines are handled as in ServerHandshake.
func ClientHandshake(ctx context.Context, rw io.ReadWriter, token []byte) error {
	done, err := bound(ctx, rw)
	if err != nil {
		return err
	}
	err = clientHandshake(rw, token)
	return done(err)
}

func clientHandshake(rw io.ReadWriter, token []byte) error {
	f, err := readHandshakeFrame(rw)
	if err != nil {
		return err
	}
	if f.Status != StatusOK {
		return ErrorFor(f.Status, f.Payload)
	}
	if len(f.Payload) != NonceSize {
		return fmt.Errorf("%w: hello of %d bytes, want a %d-byte nonce", ErrHandshake, len(f.Payload), NonceSize)
	}
	sn := f.Payload
	var cn [NonceSize]byte
	rand.Read(cn[:])
	if err := WriteFrame(rw, 0, OpHello, StatusOK, cn[:], mac(token, clientLabel, sn, cn[:])); err != nil {
		return fmt.Errorf("wire: handshake: send proof: %w", err)
	}
	f, err = readHandshakeFrame(rw)
	if err != nil {
		return err
	}
	if f.Status != StatusOK {
		return ErrorFor(f.Status, f.Payload)
	}
	if len(f.Payload) != MACSize || !hmac.Equal(f.Payload, mac(token, serverLabel, cn[:], sn)) {
		return fmt.Errorf("wire: the store does not prove it knows the cluster token: %w", storage.ErrUnauthorized)
	}
	return nil
}

// RefuseBusy sends, instead of the server's hello, a Busy notice with msg.
// The caller closes the connection after it.
func RefuseBusy(w io.Writer, msg string) error {
	return WriteError(w, 0, OpHello, StatusBusy, msg)
}

func readHandshakeFrame(r io.Reader) (Frame, error) {
	f, err := ReadFrame(r, MaxHandshakePayload)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	if f.Op != OpHello || f.ID != 0 {
		return Frame{}, fmt.Errorf("%w: got %s frame id %d, want hello id 0", ErrHandshake, f.Op, f.ID)
	}
	return f, nil
}

func mac(token, label, a, b []byte) []byte {
	m := hmac.New(sha256.New, token)
	m.Write(label)
	m.Write(a)
	m.Write(b)
	return m.Sum(nil)
}

// bound sets a deadline on rw for the handshake, when rw supports one, and
// makes ctx's cancellation interrupt it. The returned func clears both and
// turns an interrupted handshake's error into ctx's.
func bound(ctx context.Context, rw io.ReadWriter) (func(error) error, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d, ok := rw.(deadliner)
	if !ok {
		return func(err error) error { return err }, nil
	}
	deadline := time.Now().Add(HandshakeTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	if err := d.SetDeadline(deadline); err != nil {
		return nil, fmt.Errorf("wire: handshake: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = d.SetDeadline(time.Unix(1, 0)) })
	return func(err error) error {
		if !stop() {
			if cerr := ctx.Err(); cerr != nil {
				return fmt.Errorf("wire: handshake: %w", cerr)
			}
		}
		if err == nil {
			// Fails only on a closed connection, which its next use reports.
			_ = d.SetDeadline(time.Time{})
		}
		return err
	}, nil
}
