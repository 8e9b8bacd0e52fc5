package api

import (
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"
)

// procSelfFD lists the process's open file descriptors (Linux).
const procSelfFD = "/proc/self/fd"

// fdUsed is the number of file descriptors the process has open, as etcd
// counts them (the entries of /proc/self/fd); false where there is no
// such directory.
func fdUsed() (uint64, bool) {
	d, err := os.Open(procSelfFD)
	if err != nil {
		return 0, false
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return 0, false
	}
	return uint64(len(names)), true
}

// registerFDMetrics registers etcd's os_fd_used and os_fd_limit, read at
// each scrape (etcd samples them every 10 minutes), where the system
// tells them: a gauge with nothing to measure is left out rather than
// exported at 0.
func registerFDMetrics(reg prometheus.Registerer) error {
	var cs []prometheus.Collector
	if _, ok := fdUsed(); ok {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "os", Subsystem: "fd", Name: "used",
			Help: "The number of used file descriptors.",
		}, func() float64 { n, _ := fdUsed(); return float64(n) }))
	}
	if _, ok := fdLimit(); ok {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "os", Subsystem: "fd", Name: "limit",
			Help: "The file descriptor limit.",
		}, func() float64 { n, _ := fdLimit(); return float64(n) }))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("api: registering file descriptor metrics: %w", err)
		}
	}
	return nil
}
