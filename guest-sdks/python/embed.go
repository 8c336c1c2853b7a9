// Package pythonsdk holds the hwe module of Python steps (hwe.py, the one
// copy): the Python runner's workers load it so that `import hwe` works
// inside a step.
package pythonsdk

import _ "embed"

// Module is the source of hwe.py.
//
//go:embed hwe.py
var Module string
