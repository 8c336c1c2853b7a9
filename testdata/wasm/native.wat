;; Test fixture for hwe's native calling convention (Extism's guest ABI):
;; the step's inputs arrive as JSON through the Extism kernel, the output is
;; set with output_set, and errors with error_set. Host functions hwe_v1_*
;; come from "extism:host/user"; each takes and returns a JSON document in
;; kernel memory.
(module
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u64" (func $input_load_u64 (param i64) (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "free" (func $free (param i64)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "load_u64" (func $load_u64 (param i64) (result i64)))
  (import "extism:host/env" "load_u8" (func $load_u8 (param i64) (result i32)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "error_set" (func $error_set (param i64)))
  (import "extism:host/env" "log_info" (func $log_info (param i64)))
  (import "extism:host/user" "hwe_v1_log" (func $hwe_log (param i64) (result i64)))
  (import "extism:host/user" "hwe_v1_progress" (func $hwe_progress (param i64) (result i64)))
  (import "extism:host/user" "hwe_v1_http_fetch" (func $hwe_http_fetch (param i64) (result i64)))
  (import "extism:host/user" "hwe_v1_kv_get" (func $hwe_kv_get (param i64) (result i64)))
  (import "extism:host/user" "hwe_v1_kv_put" (func $hwe_kv_put (param i64) (result i64)))
  (import "extism:host/user" "hwe_v1_secret" (func $hwe_secret (param i64) (result i64)))

  (memory (export "memory") 2)
  ;; Static strings live below 1024; the working buffer starts at $buf.
  (data (i32.const 0) "guest says no")          ;; 13 bytes
  (data (i32.const 16) "not json")               ;; 8 bytes
  (data (i32.const 32) "hello from extism log")  ;; 21 bytes
  (data (i32.const 64) "out of memory: no block for 1 GiB")  ;; 33 bytes
  (global $buf i32 (i32.const 65536))

  ;; Makes sure guest memory reaches byte offset $end, growing it if needed.
  (func $ensure (param $end i32)
    (local $have i32)
    (local.set $have (i32.shl (memory.size) (i32.const 16)))
    (if (i32.gt_u (local.get $end) (local.get $have))
      (then
        (if (i32.eq
              (memory.grow (i32.add (i32.shr_u (i32.sub (local.get $end) (local.get $have)) (i32.const 16)) (i32.const 1)))
              (i32.const -1))
          (then unreachable)))))

  ;; Copies $len bytes at guest $ptr into a new kernel block; returns its offset.
  (func $to_kernel (param $ptr i32) (param $len i32) (result i64)
    (local $off i64) (local $i i32)
    (local.set $off (call $alloc (i64.extend_i32_u (local.get $len))))
    (block $done
      (loop $words
        (br_if $done (i32.gt_u (i32.add (local.get $i) (i32.const 8)) (local.get $len)))
        (call $store_u64 (i64.add (local.get $off) (i64.extend_i32_u (local.get $i)))
                         (i64.load (i32.add (local.get $ptr) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $words)))
    (block $done
      (loop $bytes
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (call $store_u8 (i64.add (local.get $off) (i64.extend_i32_u (local.get $i)))
                        (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $bytes)))
    (local.get $off))

  ;; Copies the kernel block at $off to guest $dst; returns its length.
  (func $from_kernel (param $off i64) (param $dst i32) (result i32)
    (local $len i32) (local $i i32)
    (local.set $len (i32.wrap_i64 (call $length (local.get $off))))
    (call $ensure (i32.add (local.get $dst) (local.get $len)))
    (block $done
      (loop $words
        (br_if $done (i32.gt_u (i32.add (local.get $i) (i32.const 8)) (local.get $len)))
        (i64.store (i32.add (local.get $dst) (local.get $i))
                   (call $load_u64 (i64.add (local.get $off) (i64.extend_i32_u (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $words)))
    (block $done
      (loop $bytes
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (i32.store8 (i32.add (local.get $dst) (local.get $i))
                    (call $load_u8 (i64.add (local.get $off) (i64.extend_i32_u (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $bytes)))
    (local.get $len))

  ;; Copies the step input to guest $dst; returns its length.
  (func $read_input (param $dst i32) (result i32)
    (local $len i32) (local $i i32)
    (local.set $len (i32.wrap_i64 (call $input_length)))
    (call $ensure (i32.add (local.get $dst) (local.get $len)))
    (block $done
      (loop $words
        (br_if $done (i32.gt_u (i32.add (local.get $i) (i32.const 8)) (local.get $len)))
        (i64.store (i32.add (local.get $dst) (local.get $i))
                   (call $input_load_u64 (i64.extend_i32_u (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $words)))
    (block $done
      (loop $bytes
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (i32.store8 (i32.add (local.get $dst) (local.get $i))
                    (call $input_load_u8 (i64.extend_i32_u (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $bytes)))
    (local.get $len))

  (func $output (param $ptr i32) (param $len i32)
    (call $output_set (call $to_kernel (local.get $ptr) (local.get $len))
                      (i64.extend_i32_u (local.get $len))))

  (func $fail (param $ptr i32) (param $len i32) (result i32)
    (call $error_set (call $to_kernel (local.get $ptr) (local.get $len)))
    (i32.const 1))

  ;; Sends the step input as the request to a host function (by table index)
  ;; and outputs the response, or fails with it when it is {"error":...}.
  (type $hostfn (func (param i64) (result i64)))
  (table 6 funcref)
  (elem (i32.const 0) $hwe_log $hwe_progress $hwe_http_fetch $hwe_kv_get $hwe_kv_put $hwe_secret)
  (func $forward (param $which i32) (result i32)
    (local $len i32) (local $resp i64)
    (local.set $len (call $read_input (global.get $buf)))
    (local.set $resp (call_indirect (type $hostfn)
      (call $to_kernel (global.get $buf) (local.get $len)) (local.get $which)))
    (local.set $len (call $from_kernel (local.get $resp) (global.get $buf)))
    (call $free (local.get $resp))
    (if (i32.and (i32.ge_u (local.get $len) (i32.const 8))
                 (i64.eq (i64.load (global.get $buf)) (i64.const 0x22726f727265227b))) ;; {"error"
      (then (return (call $fail (global.get $buf) (local.get $len)))))
    (call $output (global.get $buf) (local.get $len))
    (i32.const 0))
  (func (export "fwd_log") (result i32) (call $forward (i32.const 0)))
  (func (export "fwd_progress") (result i32) (call $forward (i32.const 1)))
  (func (export "fwd_http_fetch") (result i32) (call $forward (i32.const 2)))
  (func (export "fwd_kv_get") (result i32) (call $forward (i32.const 3)))
  (func (export "fwd_kv_put") (result i32) (call $forward (i32.const 4)))
  (func (export "fwd_secret") (result i32) (call $forward (i32.const 5)))

  ;; Outputs {"echo":<input>}.
  (func (export "echo") (result i32)
    (local $len i32)
    (local.set $len (call $read_input (global.get $buf)))
    ;; '{"echo":' just before the input, '}' just after it.
    (i64.store (i32.sub (global.get $buf) (i32.const 8)) (i64.const 0x3a226f686365227b)) ;; {"echo": little-endian
    (call $ensure (i32.add (i32.add (global.get $buf) (local.get $len)) (i32.const 1)))
    (i32.store8 (i32.add (global.get $buf) (local.get $len)) (i32.const 125))           ;; }
    (call $output (i32.sub (global.get $buf) (i32.const 8)) (i32.add (local.get $len) (i32.const 9)))
    (i32.const 0))

  ;; Outputs the input unchanged.
  (func (export "identity") (result i32)
    (local $len i32)
    (local.set $len (call $read_input (global.get $buf)))
    (call $output (global.get $buf) (local.get $len))
    (i32.const 0))

  ;; Outputs the JSON string "aaa…" of 100000 letters (100002 bytes).
  (func (export "big_output") (result i32)
    (call $ensure (i32.add (global.get $buf) (i32.const 100002)))
    (memory.fill (i32.add (global.get $buf) (i32.const 1)) (i32.const 97) (i32.const 100000))
    (i32.store8 (global.get $buf) (i32.const 34))
    (i32.store8 (i32.add (global.get $buf) (i32.const 100001)) (i32.const 34))
    (call $output (global.get $buf) (i32.const 100002))
    (i32.const 0))

  (func (export "noop") (result i32) (i32.const 0))
  (func (export "void_ok"))
  (func (export "fail") (result i32) (call $fail (i32.const 0) (i32.const 13)))
  (func (export "rc_only") (result i32) (i32.const 3))
  (func (export "bad_json") (result i32)
    (call $output (i32.const 16) (i32.const 8))
    (i32.const 0))
  (func (export "extism_log") (result i32)
    (call $log_info (call $to_kernel (i32.const 32) (i32.const 21)))
    (i32.const 0))
  (func (export "trap") (result i32) unreachable)
  ;; A guest whose own allocator gives up: it says so (in its log, or as
  ;; its error) and traps, or says so and carries on.
  (func (export "oom_log_trap") (result i32)
    (call $log_info (call $to_kernel (i32.const 64) (i32.const 33)))
    unreachable)
  (func (export "oom_error_trap") (result i32)
    (call $error_set (call $to_kernel (i32.const 64) (i32.const 33)))
    unreachable)
  (func (export "oom_log_ok") (result i32)
    (call $log_info (call $to_kernel (i32.const 64) (i32.const 33)))
    (i32.const 0))
  (func (export "spin") (result i32)
    (loop $forever (br $forever))
    (i32.const 0))
  (func (export "grow") (result i32)
    (block $refused
      (loop $more
        (br_if $refused (i32.eq (memory.grow (i32.const 16)) (i32.const -1)))
        (br $more)))
    unreachable)
  (func (export "two_args") (param i32 i32) (result i32) (i32.const 0))

  ;; Counts calls in a global: a fresh instance returns 0 with no output;
  ;; a reused one returns the number of earlier calls as an error code.
  (global $calls (mut i32) (i32.const 0))
  (func (export "count_calls") (result i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (i32.sub (global.get $calls) (i32.const 1)))
)
