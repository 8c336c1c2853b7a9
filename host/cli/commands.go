package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/host/workflow"
	ucli "github.com/urfave/cli/v2"
)

func validateCommand(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:      "validate",
		Usage:     "check workflows without running them; prints FILE:LINE: message for each problem",
		ArgsUsage: "FILE...",
		Action: func(c *ucli.Context) error {
			cfg, err := env.loadConfig()
			if err != nil {
				return err
			}
			files, err := resolveTargets(env.Dir, cfg.Get("workflows_dir"), c.Args().Slice())
			if err != nil {
				return usageErr("%v", err)
			}
			reg, err := env.registry(cfg)
			if err != nil {
				return err
			}
			defer reg.Close()
			bad := 0
			for _, f := range files {
				wf, problems := env.load(c.Context, f, reg)
				if problems != nil {
					bad++
					for _, p := range problems {
						fmt.Fprintln(env.Stdout, p.String())
					}
					continue
				}
				fmt.Fprintf(env.Stderr, "%s: ok (%d steps)\n", f, len(wf.Steps))
			}
			if bad > 0 {
				return &exitError{code: 1}
			}
			return nil
		},
	}
}

func graphCommand(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:      "graph",
		Usage:     "print a workflow's DAG as Graphviz dot, Mermaid or JSON",
		ArgsUsage: "FILE",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "dot", Usage: "dot, mermaid or json"},
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() != 1 {
				return usageErr("graph takes exactly one workflow file")
			}
			format := c.String("format")
			if format != "dot" && format != "mermaid" && format != "json" {
				return usageErr("--format must be dot, mermaid or json, not %q", format)
			}
			cfg, err := env.loadConfig()
			if err != nil {
				return err
			}
			files, err := resolveTargets(env.Dir, cfg.Get("workflows_dir"), c.Args().Slice())
			if err != nil || len(files) != 1 {
				return usageErr("graph takes exactly one workflow file")
			}
			reg, err := env.registry(cfg)
			if err != nil {
				return err
			}
			defer reg.Close()
			wf, problems := env.load(c.Context, files[0], reg)
			if problems != nil {
				for _, p := range problems {
					fmt.Fprintln(env.Stderr, p.String())
				}
				return &exitError{code: 1}
			}
			out, err := workflow.Graph(wf, format)
			if err != nil {
				return err
			}
			_, err = env.Stdout.Write(out)
			return err
		},
	}
}

func pluginsCommand(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:  "plugins",
		Usage: "runner plugins",
		Subcommands: []*ucli.Command{{
			Name:  "list",
			Usage: "every runner, built in or found on the plugin path, with its version",
			Action: func(c *ucli.Context) error {
				cfg, err := env.loadConfig()
				if err != nil {
					return err
				}
				reg, err := env.registry(cfg)
				if err != nil {
					return err
				}
				defer reg.Close()
				tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tVERSION\tKIND\tLANGUAGES\tPATH")
				infos := reg.Infos()
				if env.PluginInfos != nil {
					var builtin []api.RunnerInfo
					for _, info := range infos {
						if info.Kind == "builtin" {
							builtin = append(builtin, info)
						}
					}
					infos = append(builtin, env.PluginInfos(cfg)...)
				}
				for _, info := range infos {
					path := info.Path
					if path == "" {
						path = "-"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", info.Name, info.Version, info.Kind, strings.Join(info.Languages, ","), path)
				}
				return tw.Flush()
			},
		}},
	}
}

func configCommand(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:  "config",
		Usage: "print the effective value of every setting and where it came from",
		Action: func(c *ucli.Context) error {
			cfg, err := env.loadConfig()
			if err != nil {
				return err
			}
			if cfg.File != "" {
				fmt.Fprintf(env.Stdout, "# config file: %s\n", cfg.File)
			} else {
				fmt.Fprintf(env.Stdout, "# no config file (looked for hwe.toml, hwe.yaml, hwe.yml, hwe.json in %s and the user config folder)\n", env.Dir)
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KEY\tVALUE\tSOURCE\tENV\tMEANING")
			for _, v := range cfg.Describe() {
				fmt.Fprintf(tw, "%s\t%q\t%s\t%s\t%s\n", v.Key.Name, v.Value, v.Source, v.Key.Env, v.Key.Doc)
			}
			return tw.Flush()
		},
	}
}
