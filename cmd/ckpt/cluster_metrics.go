package main

import (
	"fmt"

	"github.com/ckptio/ckptio/storage/cluster"
)

// printMetrics prints where each daemon of the local cluster serves its
// Prometheus metrics, one line per daemon; nothing for a cluster started
// before the daemons had them.
func printMetrics(info cluster.Info) {
	if info.ManagerMetrics != "" {
		fmt.Printf("manager metrics http://%s/metrics\n", info.ManagerMetrics)
	}
	for i, addr := range info.StoreMetrics {
		if i < len(info.Stores) && addr != "" {
			fmt.Printf("store %s metrics http://%s/metrics\n", info.Stores[i], addr)
		}
	}
}
