package server

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hwe-run/hwe/host/workflow"
)

// maxSourceSize bounds a workflow file read or written through the API.
const maxSourceSize = 1 << 20

// catalog is one tenant's workflows folder: every *.lua file in it, loaded
// and validated, refreshed when a file changes on disk. Files are only ever
// opened through os.Root, so neither a name nor a symlink can reach outside
// the folder.
type catalog struct {
	dir  string
	load func(file string, src []byte) (*workflow.Workflow, error)

	mu      sync.Mutex
	entries map[string]*entry
	scanned map[string]*entry // what the last scan saw, to report changes once
}

// entry is one workflow file as last read.
type entry struct {
	Name     string // file stem: the workflow's API name
	Path     string // folder + file, as runs record it
	ModTime  time.Time
	Size     int64
	Source   []byte
	Workflow *workflow.Workflow // nil when invalid
	Problems workflow.Problems  // why it is invalid
}

func newCatalog(dir string, load func(string, []byte) (*workflow.Workflow, error)) *catalog {
	return &catalog{dir: dir, load: load, entries: map[string]*entry{}, scanned: map[string]*entry{}}
}

// errNoWorkflow means the workflow file does not exist.
var errNoWorkflow = errors.New("no such workflow")

func (c *catalog) path(name string) string { return filepath.Join(c.dir, name+".lua") }

// readFile reads name.lua through os.Root (no escape via .. or symlinks).
func (c *catalog) readFile(name string) ([]byte, fs.FileInfo, error) {
	root, err := os.OpenRoot(c.dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, errNoWorkflow
		}
		return nil, nil, err
	}
	defer root.Close()
	f, err := root.Open(name + ".lua")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, errNoWorkflow
		}
		return nil, nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, nil, errNoWorkflow
	}
	if info.Size() > maxSourceSize {
		return nil, nil, fmt.Errorf("workflow file %s is larger than %d bytes", name, maxSourceSize)
	}
	buf := bytes.NewBuffer(make([]byte, 0, info.Size()))
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, nil, err
	}
	return buf.Bytes(), info, nil
}

// get returns the current entry for name, re-reading the file if it changed
// since it was last read.
func (c *catalog) get(name string) (*entry, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refresh(name)
}

// refresh re-reads one file when its size or time changed. c.mu is held.
func (c *catalog) refresh(name string) (*entry, error) {
	root, err := os.OpenRoot(c.dir)
	if err == nil {
		info, serr := root.Stat(name + ".lua")
		root.Close()
		if old := c.entries[name]; serr == nil && old != nil && info.ModTime().Equal(old.ModTime) && info.Size() == old.Size {
			return old, nil
		}
	}
	src, info, err := c.readFile(name)
	if err != nil {
		delete(c.entries, name)
		return nil, err
	}
	e := &entry{Name: name, Path: c.path(name), ModTime: info.ModTime(), Size: info.Size(), Source: src}
	wf, err := c.load(e.Path, src)
	if err != nil {
		var ps workflow.Problems
		if !errors.As(err, &ps) {
			ps = workflow.Problems{{File: e.Path, Message: err.Error()}}
		}
		e.Problems = ps
	} else {
		e.Workflow = wf
	}
	c.entries[name] = e
	return e, nil
}

// names lists the workflow names in the folder (file stems that are
// valid names; others are unreachable through the API and ignored).
func (c *catalog) names() map[string]bool {
	names := map[string]bool{}
	dirents, _ := os.ReadDir(c.dir) // a missing folder is an empty catalog
	for _, d := range dirents {
		n := d.Name()
		if d.IsDir() || !strings.HasSuffix(n, ".lua") {
			continue
		}
		if stem := strings.TrimSuffix(n, ".lua"); checkName(stem) == nil {
			names[stem] = true
		}
	}
	return names
}

// scan re-reads the folder and returns the names whose content changed,
// appeared or disappeared since the last scan (the watcher's view; reads
// through get and list do not consume changes).
func (c *catalog) scan() (changed []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := c.names()
	for name := range c.scanned {
		if !names[name] {
			delete(c.scanned, name)
			delete(c.entries, name)
			changed = append(changed, name)
		}
	}
	for name := range names {
		e, err := c.refresh(name)
		if err != nil {
			if c.scanned[name] != nil {
				delete(c.scanned, name)
				changed = append(changed, name)
			}
			continue
		}
		if c.scanned[name] != e {
			c.scanned[name] = e
			changed = append(changed, name)
		}
	}
	sort.Strings(changed)
	return changed
}

// list returns every workflow in the folder, sorted by name.
func (c *catalog) list() []*entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*entry
	for name := range c.names() {
		if e, err := c.refresh(name); err == nil {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// write stores src as name.lua atomically (a temporary file renamed over
// the old one) and returns whether the file existed before.
func (c *catalog) write(name string, src []byte) (existed bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return false, err
	}
	root, err := os.OpenRoot(c.dir)
	if err != nil {
		return false, err
	}
	defer root.Close()
	if info, err := root.Lstat(name + ".lua"); err == nil {
		if !info.Mode().IsRegular() {
			return false, fmt.Errorf("%s.lua is not a regular file", name)
		}
		existed = true
	}
	tmp := fmt.Sprintf(".%s.lua.%d.tmp", name, time.Now().UnixNano())
	if err := root.WriteFile(tmp, src, 0o644); err != nil {
		return existed, err
	}
	if err := root.Rename(tmp, name+".lua"); err != nil {
		root.Remove(tmp)
		return existed, err
	}
	delete(c.entries, name)
	return existed, nil
}

// remove deletes name.lua.
func (c *catalog) remove(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	root, err := os.OpenRoot(c.dir)
	if err != nil {
		return errNoWorkflow
	}
	defer root.Close()
	if err := root.Remove(name + ".lua"); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return errNoWorkflow
		}
		return err
	}
	delete(c.entries, name)
	return nil
}
