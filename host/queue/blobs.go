package queue

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultInlineLimit is the size above which code, inputs, outputs and host
// call bodies go through the object store instead of inside a message
// (NATS's default maximum message is 1 MiB).
const DefaultInlineLimit = 256 << 10

// blobStore keeps content-addressed blobs in a JetStream object store: a
// blob's name is "sha256-<hex>" of its bytes, so the same WASM module or code
// is stored once however many steps use it, and a reader can check what it got.
type blobStore struct {
	obj jetstream.ObjectStore

	mu    sync.Mutex
	known map[string]time.Time // refs known to be stored, and when that was checked
}

func newBlobStore(obj jetstream.ObjectStore) *blobStore {
	return &blobStore{obj: obj, known: map[string]time.Time{}}
}

// recheckAfter is how long a blob known to be stored is trusted without
// asking (blobs expire with the bucket's TTL).
const recheckAfter = 10 * time.Minute

func blobRef(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256-" + hex.EncodeToString(sum[:])
}

// put stores data unless it is already stored, and returns its ref.
func (b *blobStore) put(ctx context.Context, data []byte) (string, error) {
	ref := blobRef(data)
	b.mu.Lock()
	checked, ok := b.known[ref]
	b.mu.Unlock()
	if ok && time.Since(checked) < recheckAfter {
		return ref, nil
	}
	if _, err := b.obj.GetInfo(ctx, ref); err != nil {
		if !errors.Is(err, jetstream.ErrObjectNotFound) {
			return "", fmt.Errorf("blob store: %w", err)
		}
		if _, err := b.obj.PutBytes(ctx, ref, data); err != nil {
			return "", fmt.Errorf("blob store: storing %s: %w", ref, err)
		}
	}
	b.mu.Lock()
	if len(b.known) > 100_000 {
		clear(b.known)
	}
	b.known[ref] = time.Now()
	b.mu.Unlock()
	return ref, nil
}

// get returns a blob's bytes, checked against its name.
func (b *blobStore) get(ctx context.Context, ref string) ([]byte, error) {
	data, err := b.obj.GetBytes(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("blob store: reading %s: %w", ref, err)
	}
	if blobRef(data) != ref {
		return nil, fmt.Errorf("blob store: %s is corrupt", ref)
	}
	return data, nil
}

// getFile returns the path of a file in dir holding the blob, downloading
// it on first use. Files are written under a temporary name and renamed, so
// concurrent steps never see half a module.
func (b *blobStore) getFile(ctx context.Context, ref, dir, suffix string) (string, error) {
	if !strings.HasPrefix(ref, "sha256-") || strings.ContainsAny(ref, `/\`) {
		return "", fmt.Errorf("blob store: bad ref %q", ref)
	}
	path := filepath.Join(dir, ref+suffix)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	data, err := b.get(ctx, ref)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, ".download-*")
	if err != nil {
		return "", err
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if werr != nil || cerr != nil {
		os.Remove(tmp.Name())
		return "", errors.Join(werr, cerr)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return "", err
	}
	return path, nil
}

// spill returns data inline when it is small, else stores it and returns a ref.
func (b *blobStore) spill(ctx context.Context, data []byte, limit int) (inline []byte, ref string, err error) {
	if len(data) <= limit {
		return data, "", nil
	}
	ref, err = b.put(ctx, data)
	return nil, ref, err
}

// pack returns a message as is when it is small, else the ref of a blob
// holding it. Messages are JSON objects, so a ref is never mistaken for one.
func (b *blobStore) pack(ctx context.Context, data []byte, limit int) ([]byte, error) {
	if len(data) <= limit {
		return data, nil
	}
	ref, err := b.put(ctx, data)
	if err != nil {
		return nil, err
	}
	return []byte(ref), nil
}

// unpack reverses pack.
func (b *blobStore) unpack(ctx context.Context, data []byte) ([]byte, error) {
	if !isBlobRef(data) {
		return data, nil
	}
	return b.get(ctx, string(data))
}

func isBlobRef(data []byte) bool { return len(data) == 71 && string(data[:7]) == "sha256-" }
