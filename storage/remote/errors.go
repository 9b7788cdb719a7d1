package remote

import "errors"

// ErrConnLost: the connection to the store failed or was closed by the
// store while the call was outstanding. The error also wraps the cause:
// storage.ErrClosed when the store shut down.
var ErrConnLost = errors.New("remote: connection to the store lost")
