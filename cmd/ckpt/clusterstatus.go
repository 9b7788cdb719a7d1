package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ckptio/ckptio/cmd/internal/cli"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/cluster"
	"github.com/ckptio/ckptio/storage/token"
)

// States of the local cluster, as 'ckpt cluster status' reports them.
const (
	clusterRunning  = "running"  // the manager answers and every store is alive
	clusterDegraded = "degraded" // the manager answers, a store is dead
	clusterDown     = "down"     // not started, or the manager does not answer
)

// clusterStatus is 'ckpt cluster status --json' (ckptio.cluster/1).
type clusterStatus struct {
	Schema    string `json:"schema"`
	Home      string `json:"home"`
	State     string `json:"state"`            // running, degraded or down
	Reason    string `json:"reason,omitempty"` // why it is not running
	Manager   string `json:"manager,omitempty"`
	TokenFile string `json:"token_file,omitempty"`
	// ManagerMetrics is where the manager serves /metrics (docs/metrics.md).
	ManagerMetrics string `json:"manager_metrics,omitempty"`
	// Stores are the cluster's stores, alive as the manager sees them.
	Stores      []clusterStore `json:"stores"`
	AliveStores int            `json:"alive_stores"`
}

type clusterStore struct {
	Addr  string `json:"addr"`
	ID    string `json:"id,omitempty"`
	Alive bool   `json:"alive"`
	// Metrics is where the store serves /metrics.
	Metrics string `json:"metrics,omitempty"`
}

func localStatus(ctx context.Context, home string) clusterStatus {
	st := clusterStatus{Schema: schemaCluster, Home: cluster.HomeDir(home), State: clusterDown, Stores: []clusterStore{}}
	info, ok, err := cluster.Status(ctx, home)
	if info.Home != "" {
		st.Home = info.Home
	}
	if err != nil && info.Manager == "" {
		st.Reason = "not started"
		if cluster.Exists(home) {
			st.Reason = "stopped; its data is kept"
		}
		if !errors.Is(err, cluster.ErrNone) {
			st.Reason = err.Error()
		}
		return st
	}
	st.Manager, st.TokenFile, st.ManagerMetrics = info.Manager, info.TokenFile, info.ManagerMetrics
	if err != nil {
		st.Reason = err.Error()
		return st
	}
	// A manager whose process is gone (or whose pid now belongs to
	// another program) is down, whatever answers on its port.
	if len(info.Pids) == 0 || !cluster.Alive(st.Home, info.Pids[0]) {
		pid := 0
		if len(info.Pids) > 0 {
			pid = info.Pids[0]
		}
		st.Reason = fmt.Sprintf("ckpt-manager (pid %d) is not running", pid)
		return st
	}
	tok, err := token.ReadFile(info.TokenFile)
	if err != nil {
		st.Reason = err.Error()
		return st
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	known, err := catalog.NewClient(info.Manager, tok, catalog.ClientOptions{}).Stores(ctx)
	if err != nil {
		st.Reason = err.Error()
		return st
	}
	for i, addr := range info.Stores {
		cs := clusterStore{Addr: addr}
		if i < len(info.StoreMetrics) {
			cs.Metrics = info.StoreMetrics[i]
		}
		for _, k := range known {
			if k.Addr == addr {
				cs.ID, cs.Alive = k.ID, k.Alive
			}
		}
		if cs.Alive {
			st.AliveStores++
		}
		st.Stores = append(st.Stores, cs)
	}
	switch {
	case st.AliveStores < len(info.Stores):
		st.State = clusterDegraded
		st.Reason = fmt.Sprintf("%d of %d stores alive", st.AliveStores, len(info.Stores))
	case !ok:
		st.State = clusterDegraded
		st.Reason = "a daemon's process is gone"
	default:
		st.State = clusterRunning
	}
	return st
}

func (st clusterStatus) print() {
	switch st.State {
	case clusterDown:
		fmt.Printf("local cluster under %s: not running (%s)\n", st.Home, st.Reason)
	case clusterDegraded:
		fmt.Printf("local cluster under %s: degraded (%s)\nmanager %s, %d stores\n", st.Home, st.Reason, st.Manager, len(st.Stores))
	default:
		fmt.Printf("local cluster under %s: running\nmanager %s, %d stores\n", st.Home, st.Manager, len(st.Stores))
	}
	if st.ManagerMetrics != "" {
		fmt.Printf("manager metrics http://%s/metrics\n", st.ManagerMetrics)
	}
	for _, s := range st.Stores {
		if s.Metrics != "" {
			fmt.Printf("store %s metrics http://%s/metrics\n", s.Addr, s.Metrics)
		}
	}
}

// err is what the command exits with: nil when running, else an error
// with ExitUnreachable (down) or ExitDegraded.
func (st clusterStatus) err() error {
	switch st.State {
	case clusterDown:
		if st.Reason == "not started" {
			return cli.WithCode(cli.ExitUnreachable, noCluster(st.Home))
		}
		return cli.WithCode(cli.ExitUnreachable, fmt.Errorf("local cluster under %s is not running (%s); 'ckpt cluster up' starts it", st.Home, st.Reason))
	case clusterDegraded:
		return cli.WithCode(cli.ExitDegraded, fmt.Errorf("local cluster under %s is degraded (%s); 'ckpt cluster up' restarts what is missing", st.Home, st.Reason))
	}
	return nil
}

// noCluster is the error of a command that finds no local cluster and
// does not start one.
func noCluster(home string) error {
	return fmt.Errorf("no local cluster under %s: 'ckpt cluster up' starts one, or set CKPT_MANAGER", home)
}
