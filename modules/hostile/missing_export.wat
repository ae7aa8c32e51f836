;; missing_export: a reducer module that does not export its memory as `memory`.
;;
;; The ABI requires the export `memory`, through which arguments and results pass
;; (docs/abi.md). This module has a reducer and a memory, but exports the memory as `heap`,
;; so the host could never read its results.
;;
;; Reducers:
;;
;;   hello  args: ignored   result: "hello" (5 bytes at offset 0)
;;
;; Hostile case: a missing export. Creating it must fail with ModuleError::MissingExport,
;; naming `memory`.
(module
  (memory (export "heap") 1)
  (data (i32.const 0) "hello")

  (func (export "hello") (param $args_ptr i32) (param $args_len i32) (result i64)
    ;; The result: 5 bytes at offset 0.
    (i64.const 5))
)
