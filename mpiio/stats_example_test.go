package mpiio_test

import (
	"context"
	"log"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ckptio/ckptio/mpiio"
	"github.com/ckptio/ckptio/mpiio/mpi"
	"github.com/ckptio/ckptio/mpiio/mpicomm"
)

// checkpointMetrics registers a program's checkpoint metrics on reg and
// returns the Config.OnCheckpoint that records them. It records on world
// rank 0 only: the byte counts are the whole version's, the same on every
// rank, and every rank takes part in each checkpoint.
func checkpointMetrics(reg prometheus.Registerer) func(mpiio.CheckpointStats) {
	checkpoints := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ckpt_app_checkpoints_total",
		Help: "Checkpoints ended, by result (ok, error)."}, []string{"result"})
	duration := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ckpt_app_checkpoint_duration_seconds",
		Help: "Time from the start of a checkpoint to its commit.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)})
	blocked := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ckpt_app_checkpoint_blocked_seconds",
		Help: "Time a Checkpoint call kept the program from its work.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)})
	sent := prometheus.NewCounter(prometheus.CounterOpts{Name: "ckpt_app_checkpoint_sent_bytes_total",
		Help: "Stored bytes sent to the stores by committed checkpoints, every copy counted."})
	reg.MustRegister(checkpoints, duration, blocked, sent)
	return func(st mpiio.CheckpointStats) {
		if st.Rank != 0 {
			return
		}
		blocked.Observe(st.Blocked.Seconds())
		if st.Err != nil {
			checkpoints.WithLabelValues("error").Inc()
			return
		}
		checkpoints.WithLabelValues("ok").Inc()
		duration.Observe(st.Duration.Seconds())
		sent.Add(float64(st.SentBytes))
	}
}

// A program that exports its checkpoints' figures to Prometheus: rank 0
// serves them at :9400/metrics (docs/mpiio.md, "Metrics").
func ExampleConfig_onCheckpoint() {
	if err := mpi.Init(); err != nil {
		log.Fatal(err)
	}
	defer mpi.Finalize()
	reg := prometheus.NewRegistry()
	ctx := context.Background()
	cp, err := mpiio.Open(ctx, mpicomm.Wrap(mpi.World()), mpiio.Config{Job: "heat", OnCheckpoint: checkpointMetrics(reg)})
	if err != nil {
		log.Fatal(err)
	}
	defer cp.Close(ctx)
	if cp.Rank() == 0 {
		go http.ListenAndServe(":9400", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	}
	// ... Protect, Resume, compute and Checkpoint as in Example ...
}
