;; wrong_import: imports the host's `put` with the wrong type.
;;
;; The host offers `corelane::put` as (i32 key_ptr, i32 key_len, i32 val_ptr, i32 val_len)
;; with no result (docs/abi.md); this module asks for (i32, i32) -> i32, so a call through
;; it would read arguments that were never passed.
;;
;; Reducers:
;;
;;   store  args: a value   result: empty
;;
;; Hostile case: an import with the wrong type. Creating it must fail with
;; ModuleError::ImportTypeMismatch, naming `corelane::put`, the type the module wants and the
;; type the host offers.
(module
  (import "corelane" "put" (func $put (param i32 i32) (result i32)))
  (memory (export "memory") 1)

  (func (export "store") (param $args_ptr i32) (param $args_len i32) (result i64)
    (drop (call $put (local.get $args_ptr) (local.get $args_len)))
    (i64.const 0))
)
