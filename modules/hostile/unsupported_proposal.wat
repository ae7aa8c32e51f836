;; unsupported_proposal: a reducer module that needs the threads proposal.
;;
;; Its memory is shared and its reducer uses an atomic instruction. corelane's engine leaves
;; threads off (host/src/host.rs enables no proposal, and the workspace builds Wasmtime
;; without its `threads` feature): a database's instances run on its lane one call at a
;; time, and a memory that other threads could touch would escape that order.
;;
;; Reducers:
;;
;;   count  args: ignored   result: the 4 bytes at offset 0, after adding 1 to them
;;
;; Hostile case: a module that needs an unsupported proposal. It is valid WebAssembly with
;; threads on, so creating it must fail with ModuleError::UnsupportedProposal, not
;; ModuleError::InvalidBytes.
(module
  (memory (export "memory") 1 1 shared)

  (func (export "count") (param $args_ptr i32) (param $args_len i32) (result i64)
    (drop (i32.atomic.rmw.add (i32.const 0) (i32.const 1)))
    ;; The result: 4 bytes at offset 0.
    (i64.const 4))
)
