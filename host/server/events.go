package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/hwe-run/hwe/host/store"
)

// keepAlive is how often an idle event stream gets a comment line, so
// proxies keep it open and a vanished client is noticed.
var keepAlive = 15 * time.Second

// handleEvents streams a run's events as server-sent events: first every
// event recorded so far (or after Last-Event-ID / ?after=), then live ones
// until the run finishes, when an `end` event closes the stream. Each event
// has `id:` = its sequence number and `event:` = its type; data is the
// event's JSON. Nothing is lost if the client is slow: it re-reads from the
// store.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request, id *identity) {
	run, ok := s.lookupRun(w, r, id)
	if !ok {
		return
	}
	var last int64
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		last, _ = strconv.ParseInt(v, 10, 64)
	} else if v := r.URL.Query().Get("after"); v != "" {
		last, _ = strconv.ParseInt(v, 10, 64)
	}
	// Subscribe before reading history, so no event falls between the two.
	sub := s.hub.subscribe(run.ID)
	defer s.hub.unsubscribe(run.ID, sub)
	s.metrics.streams.Add(1)
	defer s.metrics.streams.Add(-1)

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	send := func(ev store.Event) error {
		var data bytes.Buffer
		enc := json.NewEncoder(&data)
		enc.SetEscapeHTML(false) // outputs and log lines exactly as produced
		if err := enc.Encode(ev); err != nil {
			return err
		}
		_, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.Seq, ev.Type, bytes.TrimRight(data.Bytes(), "\n"))
		last = ev.Seq
		return err
	}
	// catchUp sends everything stored after the last event sent.
	catchUp := func() (finished bool, err error) {
		evs, err := s.cfg.Store.Events(r.Context(), run.ID, store.EventFilter{After: last})
		if err != nil {
			return false, err
		}
		for _, ev := range evs {
			if err := send(ev); err != nil {
				return false, err
			}
			finished = ev.Type == store.EventRunFinished || ev.Type == store.EventRunInterrupted
		}
		return finished, rc.Flush()
	}
	end := func() {
		st := run.Status
		if r2, err := s.cfg.Store.GetRun(r.Context(), run.ID); err == nil {
			st = r2.Status
		}
		fmt.Fprintf(w, "event: end\ndata: {\"status\":%q}\n\n", st)
		rc.Flush()
	}
	finished, err := catchUp()
	if err != nil {
		return
	}
	if finished {
		// The last event recorded ends the current attempt (a retry would
		// have recorded run_resumed after it).
		end()
		return
	}
	if !s.runs.isActive(run.ID) {
		// Finished (or not ours to run): one more look in case it finished
		// between reading and checking, then close.
		if _, err := catchUp(); err == nil {
			end()
		}
		return
	}
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-sub.done:
			catchUp()
			return
		case ev := <-sub.ch:
			if ev.Seq <= last {
				continue
			}
			var finished bool
			var err error
			if ev.Seq == last+1 {
				err = send(ev)
				if err == nil {
					err = rc.Flush()
				}
				finished = ev.Type == store.EventRunFinished
			} else { // missed some: read them from the store
				finished, err = catchUp()
			}
			if err != nil {
				return
			}
			if finished {
				end()
				return
			}
		case <-sub.wake:
			finished, err := catchUp()
			if err != nil {
				return
			}
			if finished {
				end()
				return
			}
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
			if !s.runs.isActive(run.ID) {
				if _, err := catchUp(); err == nil {
					end()
				}
				return
			}
		}
	}
}
