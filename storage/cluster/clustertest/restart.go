package clustertest

import (
	"strings"
	"testing"
)

// Exited reports whether the daemon has exited (killed, stopped or
// crashed).
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Flag returns the value of the --name argument p was started with (the
// last one when it was given twice, as the daemons' flag parsing does), or
// "" when it was not given. Both "--name value" and "--name=value" count.
func (p *Proc) Flag(name string) string {
	args := p.Cmd.Args[1:]
	val := ""
	for i := 0; i < len(args); i++ {
		a := strings.TrimPrefix(strings.TrimPrefix(args[i], "-"), "-")
		switch {
		case a == name && i+1 < len(args):
			val = args[i+1]
			i++
		case strings.HasPrefix(a, name+"="):
			val = strings.TrimPrefix(a, name+"=")
		}
	}
	return val
}

// Restart starts p's program again with the arguments p was started with,
// plus extra (a flag given again overrides its earlier value), and waits
// for its "listening on" line, like Start. p must have exited: Kill or Stop
// it first. With sameAddr every --listen value becomes the address p
// listened on, so that clients and daemons that know that address reach
// the new process (a manager coming back on its port); without it --listen
// keeps its value (port 0: a new port). The new process is killed when the
// test ends; p is left as it was.
func (p *Proc) Restart(t testing.TB, sameAddr bool, extra ...string) *Proc {
	t.Helper()
	if !p.Exited() {
		t.Fatalf("clustertest: restarting %s while it still runs: Kill or Stop it first", p.Cmd.Path)
	}
	args := append([]string(nil), p.Cmd.Args[1:]...)
	if sameAddr {
		for i := 0; i < len(args); i++ {
			switch a := strings.TrimPrefix(strings.TrimPrefix(args[i], "-"), "-"); {
			case a == "listen" && i+1 < len(args):
				args[i+1] = p.Addr
				i++
			case strings.HasPrefix(a, "listen="):
				args[i] = "--listen=" + p.Addr
			}
		}
	}
	return Start(t, p.Cmd.Path, append(args, extra...)...)
}

// RestartManager kills the manager with SIGKILL if it still runs, starts
// it again on the same address with the same arguments plus extra (for
// instance "--dead-after", "2s" to override NewCluster's value), and sets
// c.Manager to the new process. The stores heartbeat to that address and
// find it again by themselves; Env and Client are unchanged.
func (c *Cluster) RestartManager(t testing.TB, extra ...string) *Proc {
	t.Helper()
	if !c.Manager.Exited() {
		c.Manager.Kill()
	}
	c.Manager = c.Manager.Restart(t, true, extra...)
	return c.Manager
}

// RestartStore kills store i (its index in c.Stores) with SIGKILL if it
// still runs, starts it again with the same arguments, so on the same
// directory but a new port, and sets c.Stores[i] to the new process. A
// store whose directory was removed meanwhile comes back empty, with a new
// ID.
func (c *Cluster) RestartStore(t testing.TB, i int) *Proc {
	t.Helper()
	p := c.Stores[i]
	if !p.Exited() {
		p.Kill()
	}
	c.Stores[i] = p.Restart(t, false)
	return c.Stores[i]
}
