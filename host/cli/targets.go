package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// resolveTargets turns `hwe run` arguments into workflow files: a file, a
// folder (every *.lua in it, sorted), or a bare name looked up in the
// workflows folder (with or without .lua). No argument means the workflows
// folder itself.
func resolveTargets(dir, workflowsDir string, args []string) ([]string, error) {
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	if len(args) == 0 {
		args = []string{workflowsDir}
	}
	var files []string
	for _, a := range args {
		p := abs(a)
		st, err := os.Stat(p)
		switch {
		case err == nil && st.IsDir():
			found, err := luaFiles(p)
			if err != nil {
				return nil, err
			}
			if len(found) == 0 {
				return nil, fmt.Errorf("no workflow files (*.lua) in %s", a)
			}
			for _, f := range found {
				files = append(files, display(dir, f))
			}
		case err == nil:
			files = append(files, a)
		default:
			f, ok := lookupBare(dir, workflowsDir, a)
			if !ok {
				return nil, fmt.Errorf("no workflow %q: not a file, a folder, or a name in %s/", a, workflowsDir)
			}
			files = append(files, f)
		}
	}
	return files, nil
}

func luaFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".lua") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(out)
	return out, nil
}

// lookupBare finds a bare workflow name in the workflows folder.
func lookupBare(dir, workflowsDir, name string) (string, bool) {
	if strings.ContainsAny(name, `/\`) {
		return "", false
	}
	wd := workflowsDir
	if !filepath.IsAbs(wd) {
		wd = filepath.Join(dir, wd)
	}
	// The reference also looked in these subfolders of the workflows folder.
	for _, sub := range []string{"", "examples", "templates", "tests"} {
		for _, cand := range []string{name, name + ".lua"} {
			p := filepath.Join(wd, sub, cand)
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				return display(dir, p), true
			}
		}
	}
	return "", false
}

// display shows a path relative to the working directory when it is inside it.
func display(dir, p string) string {
	if rel, err := filepath.Rel(dir, p); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return p
}
