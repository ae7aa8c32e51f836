;; The chaos test's Wasm tenant: a counter whose instances remember whether they ever
;; trapped or were interrupted.
;;
;; Every reducer but `increment` first scribbles a bogus count into the database, a write
;; that must never become visible. `trap` and `spin` then mark their instance as poisoned
;; before they trap or loop past their budget. A poisoned instance answers every later call
;; with code -99, so one that the host wrongly reused shows up as a `Failed { code: -99 }`.
;;
;;   increment  adds 1 to the u64 under "n"; result: the new count (8 bytes, little-endian)
;;   trap       scribbles, poisons, traps (unreachable)
;;   spin       scribbles, poisons, loops until the budget interrupts it
;;   refuse     scribbles, returns code -7 (the instance stays healthy)
(module
  (import "corelane" "get" (func $get (param i32 i32 i32 i32) (result i32)))
  (import "corelane" "put" (func $put (param i32 i32 i32 i32)))

  (memory (export "memory") 1)
  (data (i32.const 16) "n")
  (global $poisoned (mut i32) (i32.const 0))

  ;; The stored count, read into the buffer at 1024; 0 when the key is absent.
  (func $load (result i64)
    (if (i32.eq
          (call $get (i32.const 16) (i32.const 1) (i32.const 1024) (i32.const 8))
          (i32.const -1))
      (then (return (i64.const 0))))
    (i64.load (i32.const 1024)))

  (func $store (param $count i64)
    (i64.store (i32.const 1024) (local.get $count))
    (call $put (i32.const 16) (i32.const 1) (i32.const 1024) (i32.const 8)))

  (func (export "increment") (param i32 i32) (result i64)
    (if (global.get $poisoned) (then (return (i64.const -99))))
    (call $store (i64.add (call $load) (i64.const 1)))
    ;; The 8 bytes at 1024: the pointer in the high half, the length in the low half.
    (i64.const 0x0000_0400_0000_0008))

  (func (export "trap") (param i32 i32) (result i64)
    (if (global.get $poisoned) (then (return (i64.const -99))))
    (call $store (i64.const 0x7777))
    (global.set $poisoned (i32.const 1))
    unreachable)

  (func (export "spin") (param i32 i32) (result i64)
    (if (global.get $poisoned) (then (return (i64.const -99))))
    (call $store (i64.const 0x7777))
    (global.set $poisoned (i32.const 1))
    (loop $forever (br $forever))
    unreachable)

  (func (export "refuse") (param i32 i32) (result i64)
    (if (global.get $poisoned) (then (return (i64.const -99))))
    (call $store (i64.const 0x7777))
    (i64.const -7))
)
