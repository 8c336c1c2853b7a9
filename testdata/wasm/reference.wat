;; Test fixture for the reference calling convention: no imports, exported
;; functions whose return value is the step's return code.
(module
  (memory (export "memory") 1)

  (func (export "rc0") (result i32) (i32.const 0))
  (func (export "rc1") (result i32) (i32.const 1))
  (func (export "rc10") (result i32) (i32.const 10))
  (func (export "rc11") (result i32) (i32.const 11))
  (func (export "rc_neg1") (result i32) (i32.const -1))

  ;; () -> (): hwe treats a void function that returns as return code 0.
  (func (export "void") nop)

  ;; (i32) -> i32: hwe passes the number of inputs; this returns it, so a
  ;; step with 3 inputs gets return code 3 (a warning).
  (func (export "echo_arg") (param i32) (result i32) (local.get 0))

  ;; A signature hwe cannot call.
  (func (export "add") (param i32 i32) (result i32)
    (i32.add (local.get 0) (local.get 1)))

  ;; Traps.
  (func (export "trap") (result i32) unreachable)
  (func (export "divide_by_zero") (result i32)
    (i32.div_s (i32.const 1) (i32.const 0)))

  ;; Never returns: hwe must stop it at the step's timeout.
  (func (export "spin") (result i32)
    (loop $forever (br $forever))
    (i32.const 0))

  ;; Grows memory one page at a time until the cap refuses, then traps.
  (func (export "grow") (result i32)
    (block $refused
      (loop $more
        (br_if $refused (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
        (br $more)))
    unreachable)

  ;; Counts up in a global so tests can see whether state leaks between steps:
  ;; a fresh instance returns 0, a reused one would return 1 or more.
  (global $calls (mut i32) (i32.const 0))
  (func (export "count_calls") (result i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (i32.sub (global.get $calls) (i32.const 1)))
)
