package mpiio

import (
	"errors"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ckptio/ckptio/storage/catalog"
)

// failed records err, the failure of the checkpoint of step, and applies
// Config.OnFailure: with Abort it returns err; with Continue it logs the
// failure on this rank (every rank does: the agreement gave them all the
// same outcome) and returns nil, so the program goes on and its next
// checkpoint tries again. Nothing of the failed checkpoint was committed
// (collective.Session.CheckpointWith), so the latest version is the one
// before it.
func (cp *Checkpointer) failed(step int64, err error) error {
	cp.mu.Lock()
	cp.lastErr = err
	latest := cp.latest
	cp.mu.Unlock()
	if cp.cfg.OnFailure == Abort {
		return err
	}
	fields := []zap.Field{zap.Int("rank", cp.Rank()), zap.String("job", cp.cfg.Job), zap.Int64("step", step),
		zap.String("latest version", "unchanged")}
	if latest > 0 {
		fields = append(fields, zap.Int64("latest known", latest))
	}
	msg := "checkpoint failed, nothing of it was committed; the program continues and the next checkpoint tries again"
	if errors.Is(err, catalog.ErrCommitUnknown) {
		msg = "checkpoint failed: its commit was sent but the manager did not answer again, so whether it committed is not known ('ckpt versions' tells); the program continues and the next checkpoint tries again"
	}
	cp.alert.Error(msg,
		append(fields, zap.Error(err), zap.String("to stop instead", "CKPT_ON_FAILURE=abort"))...)
	return nil
}

// LastError returns why the last checkpoint that ended failed: after a
// synchronous Checkpoint, or after Wait (or a call that waits) for an
// asynchronous one; nil when it committed, and while a checkpoint Checkpoint
// started is in flight. With Config.OnFailure Continue this is how a
// program learns of a failure, besides the log and Config.OnCheckpoint.
func (cp *Checkpointer) LastError() error {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.lastErr
}

// stderrLogger is the logger of the reports a program must see even
// without a Config.Logger: retries of the manager and failed checkpoints.
func stderrLogger() *zap.Logger {
	enc := zap.NewDevelopmentEncoderConfig()
	enc.EncodeTime = zapcore.RFC3339TimeEncoder
	return zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.Lock(os.Stderr), zap.InfoLevel)).Named("mpiio")
}
