package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hwe-run/hwe/host/api"
	"github.com/nats-io/nats.go"
)

// remoteHost is the api.Host a step on a worker gets. Every call travels to
// the coordinator on the execution's host subject and is performed there by
// the Host the engine built for the step, so grants, tenant scoping, the KV
// store and secrets are exactly those of the server: a worker holds no
// secrets and no KV data, and cannot widen what a step may do.
//
// Log lines and progress are sent without waiting; sync (before the result)
// makes sure they have all arrived.
type remoteHost struct {
	w       *worker
	subject string
	ctx     context.Context // the step's: calls end with it
	sent    atomic.Int64    // one-way messages sent (log lines, progress)
}

var _ api.Host = (*remoteHost)(nil)

// hostCallPatience is how long a call waits for a coordinator to take it
// (one that restarts resumes its runs, then answers again).
const hostCallPatience = 2 * time.Minute

func (h *remoteHost) send(c *hostCall) {
	data, err := json.Marshal(c)
	if err != nil {
		return
	}
	if len(data) > h.w.shared.InlineLimit {
		if data, err = h.w.d.blobs.pack(h.ctx, data, h.w.shared.InlineLimit); err != nil {
			return
		}
	}
	h.sent.Add(1)
	_ = h.w.nc.Publish(h.subject, data)
}

func (h *remoteHost) Log(stream, line string) {
	h.send(&hostCall{Op: "log", Stream: stream, Line: line})
}

func (h *remoteHost) Progress(fraction float64, message string) {
	h.send(&hostCall{Op: "progress", Fraction: fraction, Message: message})
}

// sync waits until the coordinator has handled every earlier message.
func (h *remoteHost) sync() {
	ctx, cancel := context.WithTimeout(h.w.resultBase, 10*time.Second)
	defer cancel()
	_, _ = h.call(ctx, &hostCall{Op: "sync"})
}

// call sends a request and waits for its answer, waiting through a
// coordinator restart (no responders, or "inactive") up to hostCallPatience.
func (h *remoteHost) call(ctx context.Context, c *hostCall) (*hostReply, error) {
	data, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	if data, err = h.w.d.blobs.pack(ctx, data, h.w.shared.InlineLimit); err != nil {
		return nil, err
	}
	giveUp := time.Now().Add(hostCallPatience)
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		msg, err := h.w.nc.RequestWithContext(rctx, h.subject, data)
		cancel()
		var reply hostReply
		if err == nil {
			body, uerr := h.w.d.blobs.unpack(ctx, msg.Data)
			if uerr == nil {
				uerr = json.Unmarshal(body, &reply)
			}
			if uerr != nil {
				return nil, fmt.Errorf("host call %s: bad reply: %w", c.Op, uerr)
			}
			if !reply.Inactive {
				return &reply, nil
			}
		} else if !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, context.DeadlineExceeded) &&
			!errors.Is(err, nats.ErrTimeout) && !errors.Is(err, nats.ErrConnectionReconnecting) {
			return nil, fmt.Errorf("host call %s: %w", c.Op, err)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if time.Now().After(giveUp) {
			return nil, fmt.Errorf("host call %s: no coordinator is running this step", c.Op)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (h *remoteHost) HTTPFetch(ctx context.Context, req api.HTTPRequest) (*api.HTTPResponse, error) {
	r, err := h.call(ctx, &hostCall{Op: "http", HTTP: &req})
	if err != nil {
		return nil, err
	}
	if r.Error != nil {
		return nil, r.Error.decode()
	}
	if r.HTTP == nil {
		return nil, errors.New("host call http: empty reply")
	}
	return r.HTTP, nil
}

func (h *remoteHost) KVGet(ctx context.Context, key string) ([]byte, bool, error) {
	r, err := h.call(ctx, &hostCall{Op: "kv_get", Key: key})
	if err != nil {
		return nil, false, err
	}
	return r.Value, r.Found, r.Error.decode()
}

func (h *remoteHost) KVPut(ctx context.Context, key string, value []byte) error {
	r, err := h.call(ctx, &hostCall{Op: "kv_put", Key: key, Value: value})
	if err != nil {
		return err
	}
	return r.Error.decode()
}

func (h *remoteHost) Secret(ctx context.Context, name string) (string, error) {
	r, err := h.call(ctx, &hostCall{Op: "secret", Name: name})
	if err != nil {
		return "", err
	}
	return r.Secret, r.Error.decode()
}
