// Package plugin runs hwe runners as separate OS processes with
// hashicorp/go-plugin, speaking the versioned gRPC contract hwe.runner.v1
// (proto/hwe/runner/v1/runner.proto: Info, Configure, Run, Stop, and a Host
// service the plugin calls back during a Run).
//
// Both sides live here. In the plugin process, Serve serves any api.Runner;
// ServeBuiltinIfRequested does it for the hwe binary re-executed as
// `hwe __runner NAME`. In the host, Client is an api.Runner that launches the
// plugin on first use, forwards each Run, serves the step's api.Host back to
// the plugin while it runs, and replaces the process after it dies.
//
// Wiring in main:
//
//	func main() {
//		if plugin.ServeBuiltinIfRequested(os.Args, builtinRunner) {
//			return // this process was a plugin
//		}
//		python, _ := plugin.NewClient(plugin.BuiltinConfig(pythonrunner.New().Info()))
//		defer python.Close()
//		for _, f := range plugin.Discover(plugin.SearchPath()) {
//			if f.Err == nil {
//				c, _ := plugin.NewClient(f.Config()) // serves language f.Language
//				defer c.Close()
//			}
//		}
//		...
//	}
//
// What a plugin process gets: no environment from the host (go-plugin's
// variables, a fixed PATH and Config.Env only), /dev/null as stdin, its own
// process group (ended as a whole when the plugin exits or is closed), and
// sockets in a private 0700 folder that is removed afterwards. Third-party
// executables are checked against a pinned SHA-256 before every launch.
//
// Discover and List find third-party runners: executables named
// hwe-runner-LANG, with a hwe-runner-LANG.sha256 beside them, in the folders
// of $HWE_PLUGIN_PATH and then ~/.hwe/plugins. The public SDK for writing one
// is github.com/hwe-run/hwe/plugins/sdk.
package plugin
