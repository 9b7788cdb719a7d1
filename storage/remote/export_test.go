package remote

// WithSentHook returns opts with f to be called each time a request has
// been written to the connection, for tests that must know a call was
// sent rather than sleep until it probably was.
func WithSentHook(opts Options, f func()) Options {
	opts.sent = f
	return opts
}

// WithQueuedHook returns opts with f to be called each time a put is
// queued for a batch, with the puts then queued.
func WithQueuedHook(opts Options, f func(queued int)) Options {
	opts.queued = f
	return opts
}
