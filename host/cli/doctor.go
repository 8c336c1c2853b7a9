package cli

import (
	"github.com/hwe-run/hwe/host/sandbox"
	ucli "github.com/urfave/cli/v2"
)

func doctorCommand(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:  "doctor",
		Usage: "show which OS sandbox layers are active on this machine, and why others are not",
		Action: func(c *ucli.Context) error {
			return sandbox.Doctor(env.Stdout)
		},
	}
}
