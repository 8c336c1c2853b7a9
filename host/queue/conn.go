package queue

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Environment variables read by Connect for credentials that do not belong
// on a command line.
const (
	EnvNATSToken = "HWE_NATS_TOKEN" // a token the server requires (else none, or the URL's user part)
	EnvNATSCreds = "HWE_NATS_CREDS" // a NATS credentials file (JWT + nkey)
)

// connect dials NATS with settings suited to a long-lived coordinator or
// worker: reconnect forever, and buffer publishes while reconnecting.
func connect(urls, name string, extra []nats.Option) (*nats.Conn, error) {
	if urls == "" {
		return nil, errors.New("no NATS URL given")
	}
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectBufSize(64 << 20),
		nats.PingInterval(5 * time.Second),
		nats.MaxPingsOutstanding(3),
		nats.RetryOnFailedConnect(false),
	}
	if t := os.Getenv(EnvNATSToken); t != "" && !urlHasUser(urls) {
		opts = append(opts, nats.Token(t))
	}
	if f := os.Getenv(EnvNATSCreds); f != "" {
		opts = append(opts, nats.UserCredentials(f))
	}
	opts = append(opts, extra...)
	nc, err := nats.Connect(urls, opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to NATS at %s: %w", redactURLs(urls), err)
	}
	return nc, nil
}

func urlHasUser(urls string) bool {
	for _, u := range strings.Split(urls, ",") {
		if p, err := url.Parse(strings.TrimSpace(u)); err == nil && p.User != nil {
			return true
		}
	}
	return false
}

// redactURLs hides tokens and passwords in URLs for messages.
func redactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, u := range parts {
		if p, err := url.Parse(strings.TrimSpace(u)); err == nil && p.User != nil {
			p.User = url.User("***")
			parts[i] = p.String()
		}
	}
	return strings.Join(parts, ",")
}

// setup creates (or updates) the streams and buckets of a deployment. Only
// the coordinator calls it; workers wait for them (waitForSetup).
//
//   - tasks: a work queue (a message is gone once a worker acks it) on
//     <prefix>.task.<language>.<labels>, one durable consumer per subject.
//   - results: a work queue read by the coordinator's one durable consumer.
//   - run state: a KV bucket, one key per step attempt, one revision kept.
//   - blobs: an object store for large code, inputs, outputs and WASM
//     modules, named by their SHA-256.
type deployment struct {
	n       names
	js      jetstream.JetStream
	tasks   jetstream.Stream
	results jetstream.Stream
	state   jetstream.KeyValue
	blobs   *blobStore
}

// setupDeployment is retried while JetStream is not ready yet (a cluster
// still electing its leader answers "temporarily unavailable").
func setupDeployment(ctx context.Context, js jetstream.JetStream, n names, replicas int, keep time.Duration) (*deployment, error) {
	if replicas <= 0 {
		replicas = 1
	}
	d := &deployment{n: n, js: js}
	err := retryUnavailable(ctx, func(ctx context.Context) error {
		var err error
		d.tasks, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        n.taskStream(),
			Description: "hwe: steps waiting for a worker",
			Subjects:    []string{n.taskWildcard()},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
			Duplicates:  2 * time.Minute,
		})
		if err != nil {
			return fmt.Errorf("creating the task stream: %w", err)
		}
		d.results, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        n.resultStream(),
			Description: "hwe: step results for the coordinator",
			Subjects:    []string{n.resultWildcard()},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
			Duplicates:  2 * time.Minute,
		})
		if err != nil {
			return fmt.Errorf("creating the result stream: %w", err)
		}
		d.state, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      n.stateBucket(),
			Description: "hwe: state of step attempts out on workers",
			History:     1,
			TTL:         keep,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
		})
		if err != nil {
			return fmt.Errorf("creating the run-state bucket: %w", err)
		}
		obj, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket:      n.blobBucket(),
			Description: "hwe: code, inputs, outputs and WASM modules by SHA-256",
			TTL:         keep,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
		})
		if err != nil {
			return fmt.Errorf("creating the blob store: %w", err)
		}
		d.blobs = newBlobStore(obj)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// bindDeployment opens streams and buckets the coordinator created, waiting
// for them to exist.
func bindDeployment(ctx context.Context, js jetstream.JetStream, n names, onWait func(error)) (*deployment, error) {
	d := &deployment{n: n, js: js}
	waited := false
	for {
		err := func() error {
			var err error
			if d.tasks, err = js.Stream(ctx, n.taskStream()); err != nil {
				return err
			}
			if d.results, err = js.Stream(ctx, n.resultStream()); err != nil {
				return err
			}
			if d.state, err = js.KeyValue(ctx, n.stateBucket()); err != nil {
				return err
			}
			obj, err := js.ObjectStore(ctx, n.blobBucket())
			if err != nil {
				return err
			}
			d.blobs = newBlobStore(obj)
			return nil
		}()
		if err == nil {
			return d, nil
		}
		if !waited && onWait != nil {
			onWait(err)
			waited = true
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the coordinator's streams: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// retryUnavailable calls f until it succeeds, ctx ends, or it fails with an
// error other than JetStream being (temporarily) unavailable. Each call gets
// callTimeout: a JetStream API request sent before a cluster has elected its
// leader is never answered, and must be sent again.
func retryUnavailable(ctx context.Context, f func(context.Context) error) error {
	return retryEach(ctx, callTimeout, f)
}

// callTimeout bounds one JetStream request. Answers normally take
// milliseconds; a request lost while a cluster moves a stream's leader is
// sent again after this long (publishes carry message ids, so a request that
// did arrive is not stored twice).
const callTimeout = 2 * time.Second

func retryEach(ctx context.Context, callTimeout time.Duration, f func(context.Context) error) error {
	for {
		callCtx, cancel := context.WithTimeout(ctx, callTimeout)
		err := f(callCtx)
		cancel()
		if err == nil || !transient(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// transient reports errors worth retrying: no JetStream leader yet, a
// timeout, a connection that is reconnecting.
func transient(err error) bool {
	for _, target := range []error{context.DeadlineExceeded, nats.ErrTimeout, nats.ErrNoResponders,
		nats.ErrConnectionReconnecting, nats.ErrDisconnected, jetstream.ErrNoStreamResponse} {
		if errors.Is(err, target) {
			return true
		}
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.Code == 503 || apiErr.Code == 408 || apiErr.Code == 500) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "temporarily unavailable") || strings.Contains(msg, "no suitable peers") ||
		strings.Contains(msg, "insufficient resources")
}
