;; too_large: a module of more than 2 MiB, the host's default limit.
;;
;; A file that large is not stored here, so this file is the module without its bulk:
;; `corelane_modules::hostile()` builds the binary from it and appends a custom section of
;; 2 MiB of padding. Loaded from this file alone, the module is small and harmless.
;;
;; Reducers:
;;
;;   noop  args: ignored   result: empty
;;
;; Hostile case: a module over 2 MB. Creating it must fail with ModuleError::TooLarge, before
;; the host parses or compiles any of it.
(module
  (memory (export "memory") 1)
  (func (export "noop") (param i32 i32) (result i64)
    (i64.const 0))
)
