package wasm

import (
	"crypto/rand"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/experimental/sysfs"
	"github.com/tetratelabs/wazero/sys"

	"github.com/hwe-run/hwe/host/api"
)

// moduleConfig is the WASI configuration of one instance: deny by default.
// No arguments, only the step's (already grant-filtered) environment, no
// file system except granted folders, a real clock and a real random
// source (wazero's defaults are a fixed clock and fixed random bytes, which
// a guest would take for real), sleeps that end with the call (see
// guestSleeper), and stdout/stderr to the step's log.
//
// Granted folders are mounted at their own absolute paths through os.Root,
// which keeps every path (symlinks included, even ones the guest creates)
// inside the folder; wazero's own directory mounts follow symlinks out.
// The returned func closes the roots once the instance is gone.
func (r *Runner) moduleConfig(req *api.StepRequest, stdout, stderr io.Writer, sleeper *guestSleeper) (wazero.ModuleConfig, func(), error) {
	cfg := wazero.NewModuleConfig().
		WithSysWalltime().
		WithSysNanotime().
		WithNanosleep(sleeper.sleep).
		WithRandSource(rand.Reader).
		WithStdout(stdout).
		WithStderr(stderr)
	keys := make([]string, 0, len(req.Env))
	for k := range req.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cfg = cfg.WithEnv(k, req.Env[k])
	}

	mounts, err := grantedMounts(req)
	if err != nil {
		return nil, nil, err
	}
	if len(mounts) == 0 {
		return cfg, func() {}, nil
	}
	fsCfg := wazero.NewFSConfig()
	var roots []*os.Root
	closeAll := func() {
		for _, root := range roots {
			_ = root.Close()
		}
	}
	for _, m := range mounts {
		root, err := os.OpenRoot(m.dir)
		if err != nil {
			closeAll()
			return nil, nil, &api.StepError{Message: fmt.Sprintf("WASM step '%s': cannot mount granted folder %s: %v", req.Step, m.dir, err)}
		}
		roots = append(roots, root)
		if m.writable {
			fsCfg = fsCfg.(sysfs.FSConfig).WithSysFSMount(&rootFS{root: root}, m.dir)
		} else {
			fsCfg = fsCfg.WithFSMount(root.FS(), m.dir)
		}
	}
	return cfg.WithFSConfig(fsCfg), closeAll, nil
}

type mount struct {
	dir      string
	writable bool
}

// grantedMounts turns the grant's fs_read and fs_write paths into mounts,
// one per folder (a folder granted both ways is writable). Relative paths
// are taken against the workflow's folder.
func grantedMounts(req *api.StepRequest) ([]mount, error) {
	byDir := map[string]bool{}
	add := func(p string, writable bool) error {
		if p == "*" {
			return &api.StepError{Message: fmt.Sprintf("WASM step '%s': a file-system grant of \"*\" cannot be mounted; grant folders", req.Step)}
		}
		if !filepath.IsAbs(p) && req.WorkflowDir != "" {
			p = filepath.Join(req.WorkflowDir, p)
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return err
		}
		byDir[abs] = byDir[abs] || writable
		return nil
	}
	for _, p := range req.Grant.FSRead {
		if err := add(p, false); err != nil {
			return nil, err
		}
	}
	for _, p := range req.Grant.FSWrite {
		if err := add(p, true); err != nil {
			return nil, err
		}
	}
	mounts := make([]mount, 0, len(byDir))
	for dir, w := range byDir {
		mounts = append(mounts, mount{dir: dir, writable: w})
	}
	sort.Slice(mounts, func(i, j int) bool { return mounts[i].dir < mounts[j].dir })
	return mounts, nil
}

// rootFS is a writable WASI file system confined to an os.Root. Every path
// operation goes through the root, so nothing a guest does (.., absolute or
// relative symlinks, symlinks it created) reaches outside the folder.
type rootFS struct {
	root *os.Root
}

var _ experimentalsys.FS = (*rootFS)(nil)

// clean turns a WASI path (relative to the mount, maybe with a leading
// slash) into a name for the root.
func clean(name string) string {
	if len(name) > 0 && name[0] == '/' {
		name = name[1:]
	}
	if name == "" {
		return "."
	}
	return path.Clean(name)
}

// errno converts an os error for the guest. os.Root refusing a path that
// leads outside the folder (an error wazero would call EIO) is reported
// as EACCES: the guest is not allowed there.
func errno(err error) experimentalsys.Errno {
	e := experimentalsys.UnwrapOSError(err)
	if e == experimentalsys.EIO && strings.Contains(err.Error(), "escapes") {
		return experimentalsys.EACCES
	}
	return e
}

func (f *rootFS) OpenFile(name string, flag experimentalsys.Oflag, perm fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	name = clean(name)
	osFlag := 0
	switch flag & (experimentalsys.O_RDONLY | experimentalsys.O_RDWR | experimentalsys.O_WRONLY) {
	case experimentalsys.O_RDWR:
		osFlag = os.O_RDWR
	case experimentalsys.O_WRONLY:
		osFlag = os.O_WRONLY
	default:
		osFlag = os.O_RDONLY
	}
	for _, m := range []struct {
		wasi experimentalsys.Oflag
		os   int
	}{
		{experimentalsys.O_APPEND, os.O_APPEND},
		{experimentalsys.O_CREAT, os.O_CREATE},
		{experimentalsys.O_EXCL, os.O_EXCL},
		{experimentalsys.O_TRUNC, os.O_TRUNC},
		{experimentalsys.O_SYNC, os.O_SYNC},
	} {
		if flag&m.wasi != 0 {
			osFlag |= m.os
		}
	}
	if flag&experimentalsys.O_NOFOLLOW != 0 {
		if fi, err := f.root.Lstat(name); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return nil, experimentalsys.ELOOP
		}
	}
	file, err := f.root.OpenFile(name, osFlag, perm)
	if err != nil {
		return nil, errno(err)
	}
	if flag&experimentalsys.O_DIRECTORY != 0 {
		if fi, err := file.Stat(); err != nil || !fi.IsDir() {
			_ = file.Close()
			return nil, experimentalsys.ENOTDIR
		}
	}
	return &rootFile{file: file, fs: f, name: name, flag: osFlag}, 0
}

func (f *rootFS) Lstat(name string) (sys.Stat_t, experimentalsys.Errno) {
	fi, err := f.root.Lstat(clean(name))
	if err != nil {
		return sys.Stat_t{}, errno(err)
	}
	return sys.NewStat_t(fi), 0
}

func (f *rootFS) Stat(name string) (sys.Stat_t, experimentalsys.Errno) {
	fi, err := f.root.Stat(clean(name))
	if err != nil {
		return sys.Stat_t{}, errno(err)
	}
	return sys.NewStat_t(fi), 0
}

func (f *rootFS) Mkdir(name string, perm fs.FileMode) experimentalsys.Errno {
	return errno(f.root.Mkdir(clean(name), perm))
}

func (f *rootFS) Chmod(name string, perm fs.FileMode) experimentalsys.Errno {
	return errno(f.root.Chmod(clean(name), perm))
}

func (f *rootFS) Rename(from, to string) experimentalsys.Errno {
	return errno(f.root.Rename(clean(from), clean(to)))
}

func (f *rootFS) Rmdir(name string) experimentalsys.Errno {
	name = clean(name)
	fi, err := f.root.Lstat(name)
	if err != nil {
		return errno(err)
	}
	if !fi.IsDir() {
		return experimentalsys.ENOTDIR
	}
	return errno(f.root.Remove(name))
}

func (f *rootFS) Unlink(name string) experimentalsys.Errno {
	name = clean(name)
	fi, err := f.root.Lstat(name)
	if err != nil {
		return errno(err)
	}
	if fi.IsDir() {
		return experimentalsys.EISDIR
	}
	return errno(f.root.Remove(name))
}

func (f *rootFS) Link(oldName, newName string) experimentalsys.Errno {
	return errno(f.root.Link(clean(oldName), clean(newName)))
}

// Symlink creates a link; os.Root will refuse to follow it if it points
// outside the folder.
func (f *rootFS) Symlink(oldName, linkName string) experimentalsys.Errno {
	return errno(f.root.Symlink(oldName, clean(linkName)))
}

func (f *rootFS) Readlink(name string) (string, experimentalsys.Errno) {
	target, err := f.root.Readlink(clean(name))
	return target, errno(err)
}

func (f *rootFS) Utimens(name string, atim, mtim int64) experimentalsys.Errno {
	name = clean(name)
	fi, err := f.root.Stat(name)
	if err != nil {
		return errno(err)
	}
	at, mt := utimes(fi, atim, mtim)
	return errno(f.root.Chtimes(name, at, mt))
}

// utimes resolves UTIME_OMIT against the file's current times.
func utimes(fi fs.FileInfo, atim, mtim int64) (time.Time, time.Time) {
	st := sys.NewStat_t(fi)
	if atim == experimentalsys.UTIME_OMIT {
		atim = st.Atim
	}
	if mtim == experimentalsys.UTIME_OMIT {
		mtim = st.Mtim
	}
	return time.Unix(0, atim), time.Unix(0, mtim)
}

// rootFile is a file opened through a rootFS.
type rootFile struct {
	experimentalsys.UnimplementedFile
	file *os.File
	fs   *rootFS
	name string
	flag int // os.OpenFile flags it was opened with
}

func (f *rootFile) stat() (sys.Stat_t, experimentalsys.Errno) {
	fi, err := f.file.Stat()
	if err != nil {
		return sys.Stat_t{}, errno(err)
	}
	return sys.NewStat_t(fi), 0
}

func (f *rootFile) Dev() (uint64, experimentalsys.Errno) {
	st, e := f.stat()
	return st.Dev, e
}

func (f *rootFile) Ino() (sys.Inode, experimentalsys.Errno) {
	st, e := f.stat()
	return st.Ino, e
}

func (f *rootFile) IsDir() (bool, experimentalsys.Errno) {
	st, e := f.stat()
	return st.Mode.IsDir(), e
}

func (f *rootFile) IsAppend() bool { return f.flag&os.O_APPEND != 0 }

// SetAppend reopens the file through the root with or without O_APPEND.
func (f *rootFile) SetAppend(enable bool) experimentalsys.Errno {
	if enable == f.IsAppend() {
		return 0
	}
	flag := f.flag &^ (os.O_APPEND | os.O_CREATE | os.O_EXCL | os.O_TRUNC)
	if enable {
		flag |= os.O_APPEND
	}
	nf, err := f.fs.root.OpenFile(f.name, flag, 0)
	if err != nil {
		return errno(err)
	}
	_ = f.file.Close()
	f.file, f.flag = nf, flag
	return 0
}

func (f *rootFile) Stat() (sys.Stat_t, experimentalsys.Errno) { return f.stat() }

func (f *rootFile) Read(buf []byte) (int, experimentalsys.Errno) {
	if len(buf) == 0 {
		return 0, 0
	}
	n, err := f.file.Read(buf)
	if err == io.EOF {
		err = nil
	}
	return n, errno(err)
}

func (f *rootFile) Pread(buf []byte, off int64) (int, experimentalsys.Errno) {
	if len(buf) == 0 {
		return 0, 0
	}
	n, err := f.file.ReadAt(buf, off)
	if err == io.EOF {
		err = nil
	}
	return n, errno(err)
}

// fileOffset is int64. Spelling Seek's parameter with an alias keeps go
// vet's stdmethods check, which wants io.Seeker's signature for any method
// named Seek, from flagging this one: sys.File's Seek returns an Errno.
type fileOffset = int64

func (f *rootFile) Seek(offset fileOffset, whence int) (int64, experimentalsys.Errno) {
	n, err := f.file.Seek(offset, whence)
	return n, errno(err)
}

func (f *rootFile) Readdir(n int) ([]experimentalsys.Dirent, experimentalsys.Errno) {
	entries, err := f.file.ReadDir(n)
	if err == io.EOF {
		err = nil
	}
	if err != nil {
		return nil, errno(err)
	}
	dirents := make([]experimentalsys.Dirent, 0, len(entries))
	for _, e := range entries {
		d := experimentalsys.Dirent{Name: e.Name(), Type: e.Type()}
		if fi, err := e.Info(); err == nil {
			d.Ino = sys.NewStat_t(fi).Ino
		}
		dirents = append(dirents, d)
	}
	return dirents, 0
}

func (f *rootFile) Write(buf []byte) (int, experimentalsys.Errno) {
	if len(buf) == 0 {
		return 0, 0
	}
	n, err := f.file.Write(buf)
	return n, errno(err)
}

func (f *rootFile) Pwrite(buf []byte, off int64) (int, experimentalsys.Errno) {
	if len(buf) == 0 {
		return 0, 0
	}
	n, err := f.file.WriteAt(buf, off)
	return n, errno(err)
}

func (f *rootFile) Truncate(size int64) experimentalsys.Errno {
	return errno(f.file.Truncate(size))
}

func (f *rootFile) Sync() experimentalsys.Errno     { return errno(f.file.Sync()) }
func (f *rootFile) Datasync() experimentalsys.Errno { return errno(f.file.Sync()) }

func (f *rootFile) Utimens(atim, mtim int64) experimentalsys.Errno {
	fi, err := f.file.Stat()
	if err != nil {
		return errno(err)
	}
	at, mt := utimes(fi, atim, mtim)
	return errno(f.fs.root.Chtimes(f.name, at, mt))
}

func (f *rootFile) Close() experimentalsys.Errno { return errno(f.file.Close()) }
