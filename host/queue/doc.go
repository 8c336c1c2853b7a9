// Package queue runs workflow steps on other machines through NATS
// JetStream: an engine.Executor for the coordinator (`hwe serve`), the
// worker loop behind `hwe worker`, and an embedded NATS server.
//
// # How a step travels
//
//	engine ──Execute──► Executor ──publish──► <prefix>.task.<language>.<labels>  (work-queue stream)
//	                        │                        │ one durable consumer per subject,
//	                        │ record "queued"        ▼ shared by the workers that serve it
//	                        │ in the KV bucket    worker: heartbeats (in-progress acks),
//	                        │                     runs the step with its runners,
//	                        │◄── host API calls ── proxies the step's host calls back,
//	                        │    (request/reply)  publishes the result, acks the task
//	                        ▼
//	              result consumer ◄── <prefix>.result.<run>  (work-queue stream)
//	              records it (idempotently) and hands it to Execute
//
// Code, inputs, outputs and host-call bodies above the inline limit, and
// every WASM module, travel through a JetStream object store under the
// SHA-256 of their content, so workers need no shared file system.
//
// # Guarantees
//
// Delivery is at least once; completion is exactly once. Each execution of
// a step attempt has a generation number (its message id), and the run-state
// KV record of the attempt (run.step.attempt) is only ever moved from
// "queued" to a terminal state by a compare-and-set for that generation, so a
// result that arrives twice is applied once and a result of an older
// execution is ignored.
//
// A worker that stops answering loses its lease (ExecutorConfig.Lease) and
// the step goes to another worker; each hand-over counts as a delivery, and
// the worker that receives delivery MaxDeliveries+1 fails the step instead of
// running it, through the durable result stream (so the failure is recorded
// even if the coordinator is down at that moment). Retries the workflow asks
// for are the engine's: each is a new attempt with a new key and message.
//
// A coordinator that restarts resumes from the KV bucket: Execute of an
// attempt recorded as succeeded returns the recorded output; one recorded as
// queued waits for the execution already out on a worker instead of sending
// it again (JetStream's duplicate detection cannot be trusted for that: it
// forgets acknowledged messages across a server restart). Results that
// arrived while no coordinator ran are applied before anything is published,
// and the result consumer is re-created at start so results a dead
// coordinator had fetched come back at once, not after their ack wait.
//
// # Host API on workers
//
// A step on a worker gets a Host whose every call (log, progress, KV,
// secrets, HTTP) goes to the coordinator on <prefix>.host.<key>.<gen> and is
// performed there by the Host the engine built for the step. Grants, tenant
// scoping, the KV store, secrets and the audit trail are therefore exactly
// those of the server; workers hold no secrets and no KV data. Log lines are
// sent without waiting; before its result a worker makes one request that
// returns after every earlier line was handled, so a step's log always
// precedes its finish in the run's events.
package queue
