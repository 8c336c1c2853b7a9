;; Test fixture for a reference-convention guest (WASI only, no Extism
;; imports) whose own allocator gives up: it writes Go's report of running
;; out of memory to stderr, then traps or exits with a failure.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "fatal error: out of memory\n")  ;; 27 bytes
  ;; Writes the report (with its newline, or without) to stderr.
  (func $report (param $len i32)
    (i32.store (i32.const 64) (i32.const 0))      ;; iovec: base
    (i32.store (i32.const 68) (local.get $len))   ;; iovec: length
    (drop (call $fd_write (i32.const 2) (i32.const 64) (i32.const 1) (i32.const 72))))
  (func (export "oom_trap") (result i32)
    (call $report (i32.const 27))
    unreachable)
  (func (export "oom_unterminated_trap") (result i32)
    (call $report (i32.const 26))
    unreachable)
  (func (export "oom_exit") (result i32)
    (call $report (i32.const 27))
    (call $proc_exit (i32.const 2))
    (i32.const 0))
  (func (export "trap") (result i32) unreachable)
)
