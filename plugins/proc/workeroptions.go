package proc

import (
	"time"

	"github.com/hwe-run/hwe/host/api"
)

// WorkerOptions configure the warm interpreter workers a runner keeps (the
// Python and Node runners embed them in their Options). The zero value is
// ready to use.
type WorkerOptions struct {
	// PoolSize is how many workers one tenant keeps alive; 0 = number of
	// CPUs (at least 2). Spares is how many unused workers are kept started
	// ahead of need (0 = 1, negative = none). IdleTimeout ends idle workers
	// (0 = 5 minutes).
	PoolSize    int
	Spares      int
	IdleTimeout time.Duration

	// Spawn starts every worker process; nil starts it directly. This is
	// the hook an OS sandbox wraps. WorkerKey is what, besides the tenant,
	// a warm worker must share with every step it runs (nil = the grant's
	// paths and limits); a sandbox that mounts the run's TempDir at start
	// includes it. Inside maps host folders to the paths a sandboxed worker
	// sees them at (nil = the same).
	Spawn     SpawnFunc
	WorkerKey func(req *api.StepRequest) string
	Inside    InsideFunc

	// PATH is the PATH steps see; "" = DefaultPATH.
	PATH string

	// ScratchDir is where a step's private folder is made when the engine
	// gives none; "" = the system temp folder.
	ScratchDir string
}
