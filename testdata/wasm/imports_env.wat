;; Imports a function hwe does not provide: validation must say so.
(module
  (import "env" "mystery" (func $mystery (result i32)))
  (func (export "run") (result i32) (call $mystery)))
