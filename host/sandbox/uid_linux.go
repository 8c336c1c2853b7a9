package sandbox

import (
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// Steps run as uids from a range no account uses. A uid is held through a
// lock file, so concurrent steps get distinct uids even across processes
// (each subprocess runner is its own plugin process): RLIMIT_NPROC counts
// per uid, and a step must not be able to signal or read another's files.
const (
	firstStepUID = 100000
	stepUIDCount = 4096
	// Steps of one run share a group, derived from its TempDir, so they can
	// share /tmp files with each other and with no other run.
	firstRunGID = 200000
	runGIDCount = 1 << 16
)

// uidLockDir holds one lock file per uid in use. Only root allocates uids.
var uidLockDir = "/run/hwe-sandbox/uids"

type uidLease struct {
	uid  int
	file *os.File
}

var uidMu sync.Mutex

// allocateUID takes the lowest free step uid.
func allocateUID() (*uidLease, error) {
	uidMu.Lock()
	defer uidMu.Unlock()
	if err := os.MkdirAll(uidLockDir, 0o700); err != nil {
		return nil, fmt.Errorf("uid locks: %w", err)
	}
	for i := 0; i < stepUIDCount; i++ {
		uid := firstStepUID + i
		f, err := os.OpenFile(filepath.Join(uidLockDir, strconv.Itoa(uid)), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, fmt.Errorf("uid locks: %w", err)
		}
		// flock is per open file: a second lock from this same process on
		// a fresh descriptor fails too, which is what we want.
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		return &uidLease{uid: uid, file: f}, nil
	}
	return nil, fmt.Errorf("all %d sandbox uids are in use", stepUIDCount)
}

func (l *uidLease) release() {
	if l == nil || l.file == nil {
		return
	}
	// Nothing may still run as this uid when the next step gets it.
	killUID(l.uid)
	l.file.Close()
	l.file = nil
}

// runGID is the group shared by the steps of the run that owns tempDir.
func runGID(tempDir string) int {
	if tempDir == "" {
		return firstRunGID
	}
	h := fnv.New32a()
	h.Write([]byte(tempDir))
	return firstRunGID + int(h.Sum32()%runGIDCount)
}

// killUID kills every process running as uid (processes that escaped the
// process group and PID namespace, if there was none).
func killUID(uid int) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(filepath.Join("/proc", e.Name()), &st) == nil && int(st.Uid) == uid {
			unix.Kill(pid, unix.SIGKILL)
		}
	}
}
