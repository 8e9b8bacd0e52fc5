// Command cairnctl is Cairn's operator CLI: every etcdctl command, from
// etcdctl's own packages (so flags and output are etcdctl's), and beside
// them the commands etcdutl has for a stopped member's files, written for
// Cairn: snapshot restore and status, hashkv, offline defrag (defrag
// --data-dir), and check data-dir.
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.etcd.io/etcd/etcdctl/v3/ctlv3/command"
	"go.etcd.io/etcd/pkg/v3/cobrautl"
)

const (
	cliName        = "cairnctl"
	cliDescription = "A command line client for Cairn and etcd3, and offline tools for a stopped member's files."

	// etcdctl's defaults.
	defaultDialTimeout      = 2 * time.Second
	defaultCommandTimeOut   = 5 * time.Second
	defaultKeepAliveTime    = 2 * time.Second
	defaultKeepAliveTimeOut = 6 * time.Second
)

func main() {
	runCheckDBChild()
	root := newRootCommand()
	if err := root.Execute(); err != nil {
		if root.SilenceErrors {
			cobrautl.ExitWithError(cobrautl.ExitError, err)
		}
		os.Exit(cobrautl.ExitError)
	}
}

// newRootCommand builds the command tree: etcdctl's root with its global
// flags and commands, then Cairn's offline commands beside them.
func newRootCommand() *cobra.Command {
	cobra.EnablePrefixMatching = true
	var g command.GlobalFlags
	root := &cobra.Command{
		Use:        cliName,
		Short:      cliDescription,
		SuggestFor: []string{"cairnctl", "etcdctl", "etcdutl"},
	}
	pf := root.PersistentFlags()
	pf.StringSliceVar(&g.Endpoints, "endpoints", []string{"127.0.0.1:2379"}, "gRPC endpoints")
	pf.BoolVar(&g.Debug, "debug", false, "enable client-side debug logging")
	pf.StringVarP(&g.OutputFormat, "write-out", "w", "simple", "set the output format (fields, json, protobuf, simple, table)")
	pf.BoolVar(&g.IsHex, "hex", false, "print byte strings as hex encoded strings")
	root.RegisterFlagCompletionFunc("write-out", func(_ *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		return []string{"fields", "json", "protobuf", "simple", "table"}, cobra.ShellCompDirectiveDefault
	})
	pf.DurationVar(&g.DialTimeout, "dial-timeout", defaultDialTimeout, "dial timeout for client connections")
	pf.DurationVar(&g.CommandTimeOut, "command-timeout", defaultCommandTimeOut, "timeout for short running command (excluding dial timeout)")
	pf.DurationVar(&g.KeepAliveTime, "keepalive-time", defaultKeepAliveTime, "keepalive time for client connections")
	pf.DurationVar(&g.KeepAliveTimeout, "keepalive-timeout", defaultKeepAliveTimeOut, "keepalive timeout for client connections")
	pf.IntVar(&g.MaxCallSendMsgSize, "max-request-bytes", 0, "client-side request send limit in bytes (if 0, it defaults to 2.0 MiB (2 * 1024 * 1024).)")
	pf.IntVar(&g.MaxCallRecvMsgSize, "max-recv-bytes", 0, "client-side response receive limit in bytes (if 0, it defaults to \"math.MaxInt32\")")
	pf.BoolVar(&g.Insecure, "insecure-transport", true, "disable transport security for client connections")
	pf.BoolVar(&g.InsecureDiscovery, "insecure-discovery", true, "accept insecure SRV records describing cluster endpoints")
	pf.BoolVar(&g.InsecureSkipVerify, "insecure-skip-tls-verify", false, "skip server certificate verification (CAUTION: this option should be enabled only for testing purposes)")
	pf.StringVar(&g.TLS.CertFile, "cert", "", "identify secure client using this TLS certificate file")
	pf.StringVar(&g.TLS.KeyFile, "key", "", "identify secure client using this TLS key file")
	pf.StringVar(&g.TLS.TrustedCAFile, "cacert", "", "verify certificates of TLS-enabled secure servers using this CA bundle")
	pf.StringVar(&g.Token, "auth-jwt-token", "", "JWT token used for authentication (if this option is used, --user and --password should not be set)")
	pf.StringVar(&g.User, "user", "", "username[:password] for authentication (prompt if password is not supplied)")
	pf.StringVar(&g.Password, "password", "", "password for authentication (if this option is used, --user option shouldn't include password)")
	pf.StringVarP(&g.TLS.ServerName, "discovery-srv", "d", "", "domain name to query for SRV records describing cluster endpoints")
	pf.StringVarP(&g.DNSClusterServiceName, "discovery-srv-name", "", "", "service name to query when using DNS discovery")

	root.AddGroup(
		command.NewKVGroup(),
		command.NewClusterMaintenanceGroup(),
		command.NewConcurrencyGroup(),
		command.NewAuthenticationGroup(),
		command.NewUtilityGroup(),
	)
	maintenance := command.NewClusterMaintenanceGroup().ID

	snapshot := command.NewSnapshotCommand()
	snapshot.AddCommand(newSnapshotRestoreCommand(), newSnapshotStatusCommand())
	check := command.NewCheckCommand()
	check.AddCommand(newCheckDataDirCommand(), newCheckHealthCommand())
	hashkv := newHashKVCommand()
	hashkv.GroupID = maintenance

	root.AddCommand(
		command.NewGetCommand(),
		command.NewPutCommand(),
		command.NewDelCommand(),
		command.NewTxnCommand(),
		command.NewCompactionCommand(),
		command.NewAlarmCommand(),
		withOfflineDefrag(command.NewDefragCommand()),
		command.NewEndpointCommand(),
		command.NewMoveLeaderCommand(),
		command.NewWatchCommand(),
		command.NewVersionCommand(),
		command.NewLeaseCommand(),
		command.NewMemberCommand(),
		snapshot,
		hashkv,
		command.NewMakeMirrorCommand(),
		command.NewLockCommand(),
		command.NewElectCommand(),
		command.NewAuthCommand(),
		command.NewUserCommand(),
		command.NewRoleCommand(),
		check,
		command.NewCompletionCommand(),
		command.NewDowngradeCommand(),
		command.NewOptionsCommand(root),
	)
	command.SetHelpCmdGroup(root)

	// As etcdctl: global flags are listed by "options", not by every help.
	root.PersistentFlags().VisitAll(func(f *pflag.Flag) {
		root.PersistentFlags().MarkHidden(f.Name)
	})
	if root.Flags().Lookup("help") == nil {
		root.Flags().BoolP("help", "h", false, "help for "+root.Name())
	}
	root.Flags().MarkHidden("help")
	help := root.HelpFunc()
	root.SetHelpFunc(func(cmd *cobra.Command, args []string) {
		help(cmd, args)
		fmt.Fprintln(cmd.OutOrStdout(), `Use "cairnctl options" for a list of global command-line options (applies to all commands).`)
	})
	return root
}
