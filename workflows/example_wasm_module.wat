;; hwe's own source for workflows/example_wasm_module.wasm, the module the
;; reference's wasm workflow calls. It uses the reference calling convention:
;; no imports, exported functions return an i32 status code (0 = success).
;; Rebuild with `make wasm-fixtures` (wat2wasm from Debian's wabt).
(module
  (memory (export "memory") 16)
  ;; The reference module (built by rustc) also exports these two linker
  ;; globals; they are kept so the export list matches.
  (global $data_end (export "__data_end") i32 (i32.const 1048576))
  (global $heap_base (export "__heap_base") i32 (i32.const 1048576))

  ;; compute_fibonacci(n): the n-th Fibonacci number, iteratively
  ;; (fib(0) = 0, fib(1) = 1); wraps on overflow like the original.
  (func $fib (export "compute_fibonacci") (param $n i32) (result i32)
    (local $a i32) (local $b i32) (local $t i32)
    (local.set $b (i32.const 1))
    (block $done
      (loop $next
        (br_if $done (i32.le_s (local.get $n) (i32.const 0)))
        (local.set $t (i32.add (local.get $a) (local.get $b)))
        (local.set $a (local.get $b))
        (local.set $b (local.get $t))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $a))

  ;; add(a, b) = a + b (wrapping).
  (func (export "add") (param i32 i32) (result i32)
    (i32.add (local.get 0) (local.get 1)))

  ;; run(): checks fib(10) = 55 and returns 0, or 1 if the check fails.
  (func (export "run") (result i32)
    (if (result i32) (i32.eq (call $fib (i32.const 10)) (i32.const 55))
      (then (i32.const 0))
      (else (i32.const 1))))

  ;; process_data(): fills 100 words of memory with i*3, sums them back
  ;; (3 * 4950 = 14850) and returns 0 if the sum is right, 1 otherwise.
  (func (export "process_data") (result i32)
    (local $i i32) (local $sum i32)
    (block $filled
      (loop $fill
        (br_if $filled (i32.ge_u (local.get $i) (i32.const 100)))
        (i32.store (i32.shl (local.get $i) (i32.const 2))
                   (i32.mul (local.get $i) (i32.const 3)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $fill)))
    (local.set $i (i32.const 0))
    (block $summed
      (loop $sum_loop
        (br_if $summed (i32.ge_u (local.get $i) (i32.const 100)))
        (local.set $sum (i32.add (local.get $sum)
          (i32.load (i32.shl (local.get $i) (i32.const 2)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $sum_loop)))
    (if (result i32) (i32.eq (local.get $sum) (i32.const 14850))
      (then (i32.const 0))
      (else (i32.const 1))))

  ;; complex_computation(): the sum of squares 1..100 must be 338350:
  ;; 0 if it is, 2 otherwise.
  (func (export "complex_computation") (result i32)
    (local $i i32) (local $sum i32)
    (local.set $i (i32.const 1))
    (block $done
      (loop $next
        (br_if $done (i32.gt_u (local.get $i) (i32.const 100)))
        (local.set $sum (i32.add (local.get $sum)
          (i32.mul (local.get $i) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (if (result i32) (i32.eq (local.get $sum) (i32.const 338350))
      (then (i32.const 0))
      (else (i32.const 2))))
)
