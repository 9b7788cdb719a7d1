// Command ckpt manages ckptio checkpoints: it puts files into a new version
// and gets them back, lists versions and stores, and controls the embedded
// local cluster. Run 'ckpt --help' for the commands.
package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/ckptio/ckptio/cmd/internal/cli"
	"github.com/ckptio/ckptio/storage"
	"github.com/ckptio/ckptio/storage/catalog"
	"github.com/ckptio/ckptio/storage/client"
	"github.com/ckptio/ckptio/storage/cluster"
	"github.com/ckptio/ckptio/storage/remote"
	"github.com/ckptio/ckptio/storage/token"
)

// globals are the flags every subcommand takes.
type globals struct {
	manager   string
	tokenFile string
	home      string
	logLevel  string
	tlsCA     string
	// command is the name of the subcommand that runs ("versions"),
	// set before it runs.
	command string
}

// readOnly are the commands that only read the cluster: in a CKPT_HOME
// with no local cluster (no catalog, no daemon) they say so and exit 4
// rather than start an empty cluster to look into.
var readOnly = map[string]bool{
	"versions": true, "ls": true, "stores": true, "jobs": true, "diff": true,
	"verify": true, "export": true, "get": true, "restore": true,
}

func main() {
	g := &globals{}
	root := &cobra.Command{
		Use:   "ckpt",
		Short: "Versioned checkpoints on scavenged desktop storage",
		Long: `ckpt talks to a ckptio cluster: a manager (catalog of jobs, versions and
stores) and ckpt-store daemons that donate disk space.

With --manager or CKPT_MANAGER it uses that cluster; the token comes from
--token-file, CKPT_TOKEN or CKPT_TOKEN_FILE. Without either, it uses the
embedded local cluster under CKPT_HOME (default ./.ckpt): a manager and 4
stores on 127.0.0.1, started on demand and kept running until
'ckpt cluster down'. A command that only reads (versions, ls, stores, jobs,
diff, verify, export, get, restore) does not start one in a CKPT_HOME that
has none: it exits 4.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       cli.VersionLine("ckpt"),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.PersistentPreRun = func(cmd *cobra.Command, _ []string) { g.command = cmd.Name() }
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return cli.Usage(err) })
	pf := root.PersistentFlags()
	pf.StringVar(&g.manager, "manager", os.Getenv("CKPT_MANAGER"), "manager address HOST:PORT (default $CKPT_MANAGER; empty = local cluster)")
	pf.StringVar(&g.tokenFile, "token-file", "", "file holding the cluster token (default $CKPT_TOKEN, $CKPT_TOKEN_FILE)")
	pf.StringVar(&g.home, "home", "", "local cluster directory (default $CKPT_HOME or ./.ckpt)")
	pf.StringVar(&g.logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	pf.StringVar(&g.tlsCA, "tls-ca", os.Getenv("CKPT_TLS_CA"), "PEM CA to verify the manager and stores with, for a cluster run with --tls-cert ('system': the system's roots; default $CKPT_TLS_CA)")

	root.AddCommand(putCmd(g), getCmd(g), restoreCmd(g), lsCmd(g), diffCmd(g), verifyCmd(g), versionsCmd(g), storesCmd(g), clusterCmd(g))
	root.AddCommand(retentionCmds(g)...)
	root.AddCommand(repairCmd(g))
	root.AddCommand(mountCmd(g), umountCmd(g))
	root.AddCommand(exportCmd(g))
	root.AddCommand(jobsCmd(g))
	usageArgs(root)
	ctx, stop := cli.SignalContext()
	defer stop()
	cli.Exit("ckpt", root.ExecuteContext(ctx))
}

// session is a connection to a cluster for one command.
type session struct {
	addr string
	tok  []byte
	mc   *catalog.Client
	pool *client.Pool
	log  *zap.Logger
}

func (g *globals) connect(ctx context.Context) (*session, error) {
	log, err := cli.Logger(g.logLevel)
	if err != nil {
		return nil, err
	}
	s := &session{addr: g.manager, log: log}
	if s.addr == "" {
		if readOnly[g.command] && !cluster.Exists(g.home) {
			return nil, cli.WithCode(cli.ExitUnreachable, noCluster(cluster.HomeDir(g.home)))
		}
		info, err := cluster.Up(ctx, cluster.Options{Home: g.home, Progress: func(msg string) {
			fmt.Fprintln(os.Stderr, "ckpt:", msg)
		}})
		if err != nil {
			return nil, err
		}
		s.addr = info.Manager
		if s.tok, err = token.ReadFile(info.TokenFile); err != nil {
			return nil, err
		}
	} else if s.tok, err = token.Resolve(g.tokenFile); err != nil {
		return nil, err
	}
	// The embedded local cluster listens on 127.0.0.1 without TLS.
	var tlsConf *tls.Config
	if g.manager != "" {
		if tlsConf, err = cli.ClientTLS(g.tlsCA); err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
	}
	s.mc = catalog.NewClient(s.addr, s.tok, catalog.ClientOptions{TLS: tlsConf})
	tok := s.tok
	s.pool = client.NewPool(s.mc, func(ctx context.Context, addr string) (storage.BlockStore, error) {
		return remote.Dial(ctx, addr, tok, remote.Options{Logger: log, NoVerify: true, TLS: tlsConf})
	}, log)
	return s, nil
}

// usageArgs makes every argument error of c and its subcommands a usage
// error (exit status 2), and an unknown subcommand one too.
func usageArgs(c *cobra.Command) {
	if args := c.Args; args != nil {
		c.Args = func(cmd *cobra.Command, a []string) error { return cli.Usage(args(cmd, a)) }
	} else if c.HasSubCommands() {
		// A command that only groups others prints its help, and
		// refuses an unknown subcommand (cobra would print the help and
		// succeed).
		if !c.Runnable() {
			c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
		}
		c.Args = func(cmd *cobra.Command, a []string) error {
			if len(a) == 0 {
				return nil
			}
			msg := fmt.Sprintf("unknown command %q for %q", a[0], cmd.CommandPath())
			if s := cmd.SuggestionsFor(a[0]); len(s) > 0 {
				msg += fmt.Sprintf(" (did you mean %q?)", s[0])
			}
			return cli.Usagef("%s; see '%s --help'", msg, cmd.CommandPath())
		}
	}
	for _, sub := range c.Commands() {
		usageArgs(sub)
	}
}

func (s *session) Close() {
	s.pool.Close()
	s.log.Sync()
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}
