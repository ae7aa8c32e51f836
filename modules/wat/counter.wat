;; counter: a u64 counter stored under the key "count".
;;
;; Reducers (integers are little-endian):
;;
;;   increment  args: ignored      adds 1 to the count; result: the new count, u64 (8 bytes)
;;   add        args: u64 delta    adds delta to the count; result: the new count, u64
;;   get        args: ignored      result: the count, u64
;;
;; An absent key counts as 0. The count wraps around modulo 2^64.
;;
;; Failure codes (each with a message through `fail`):
;;
;;   -3  malformed arguments: add takes exactly 8 bytes
;;   -5  the value stored under "count" is not 8 bytes long
(module
  (import "corelane" "get" (func $host_get (param i32 i32 i32 i32) (result i32)))
  (import "corelane" "put" (func $host_put (param i32 i32 i32 i32)))
  (import "corelane" "fail" (func $host_fail (param i32 i32)))

  (memory (export "memory") 1)

  ;; Constant data: the key, then the failure messages.
  (data (i32.const 16) "count")
  (data (i32.const 32) "counter.add: the arguments must be a u64 delta (8 bytes)")
  (data (i32.const 96) "counter: the stored count is not 8 bytes long")

  ;; ---- The heap: a bump allocator, the same in every sample ----
  ;;
  ;; Memory layout: [0, 1024) is kept for constant data (the data segments above, if any),
  ;; and the heap is [$heap_base = 1024, end of memory); the memory grows when the heap needs
  ;; more.
  ;;
  ;; 1. corelane_alloc(len) starts a fresh heap at $heap_base and returns the arguments'
  ;;    buffer from it. The host calls it at most once per call, before the reducer.
  ;; 2. Every reducer first calls $reset_heap, which moves the heap to just past its
  ;;    arguments (to $heap_base when there are none): nothing of an earlier call is kept,
  ;;    and the arguments are never handed out again.
  ;; 3. $alloc hands out 8-aligned blocks at or above $heap_base, so the heap never overlaps
  ;;    the constant data. It traps rather than reach 2 GiB, so every result pointer is below
  ;;    2^31 and a packed success result is never negative.

  (global $heap_base i32 (i32.const 1024))
  (global $heap_next (mut i32) (i32.const 1024))

  (func (export "corelane_alloc") (param $len i32) (result i32)
    ;; Step 1: a call begins.
    (global.set $heap_next (global.get $heap_base))
    (call $alloc (local.get $len)))

  (func $reset_heap (param $args_ptr i32) (param $args_len i32)
    (local $args_end i32)
    ;; Step 2: with no arguments, args_ptr and args_len are 0 and the heap restarts at its base.
    (local.set $args_end (i32.add (local.get $args_ptr) (local.get $args_len)))
    (global.set $heap_next
      (select
        (local.get $args_end)
        (global.get $heap_base)
        (i32.gt_u (local.get $args_end) (global.get $heap_base)))))

  (func $alloc (param $len i32) (result i32)
    (local $start i64)
    (local $end i64)
    ;; Step 3, in i64 so that nothing wraps.
    (local.set $start
      (i64.and
        (i64.add (i64.extend_i32_u (global.get $heap_next)) (i64.const 7))
        (i64.const -8)))
    (local.set $end (i64.add (local.get $start) (i64.extend_i32_u (local.get $len))))
    (call $ensure_memory (local.get $end))
    (global.set $heap_next (i32.wrap_i64 (local.get $end)))
    (i32.wrap_i64 (local.get $start)))

  ;; Grows the memory to cover [0, end), or traps when it cannot (see step 3).
  (func $ensure_memory (param $end i64)
    (local $size i64)
    (if (i64.ge_u (local.get $end) (i64.const 0x8000_0000))
      (then unreachable))
    (local.set $size (i64.shl (i64.extend_i32_u (memory.size)) (i64.const 16)))
    (if (i64.gt_u (local.get $end) (local.get $size))
      (then
        ;; The missing bytes, rounded up to whole 64 KiB pages.
        (if (i32.eq
              (memory.grow
                (i32.wrap_i64
                  (i64.shr_u
                    (i64.add (i64.sub (local.get $end) (local.get $size)) (i64.const 0xffff))
                    (i64.const 16))))
              (i32.const -1))
          (then unreachable)))))

  ;; A success result: the pointer in the high 32 bits, the length in the low 32 bits.
  (func $pack (param $ptr i32) (param $len i32) (result i64)
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
      (i64.extend_i32_u (local.get $len))))

  ;; Hands the message (the constant at ptr, len) to the host and returns `code`.
  (func $fail (param $code i64) (param $ptr i32) (param $len i32) (result i64)
    (call $host_fail (local.get $ptr) (local.get $len))
    (local.get $code))

  ;; The stored count (0 when absent), and 1 if it could be read, 0 if it is not 8 bytes.
  (func $load_count (result i64 i32)
    (local $buffer i32)
    (local $len i32)
    (local.set $buffer (call $alloc (i32.const 8)))
    (local.set $len
      (call $host_get (i32.const 16) (i32.const 5) (local.get $buffer) (i32.const 8)))
    (if (i32.eq (local.get $len) (i32.const -1))
      (then (return (i64.const 0) (i32.const 1))))
    (i64.load (local.get $buffer))
    (i32.eq (local.get $len) (i32.const 8)))

  ;; Adds delta to the count, stores it, and returns it as the 8-byte result.
  (func $add_to_count (param $delta i64) (result i64)
    (local $count i64)
    (local $readable i32)
    (local $buffer i32)
    (call $load_count)
    (local.set $readable)
    (local.set $count)
    (if (i32.eqz (local.get $readable))
      (then (return (call $fail (i64.const -5) (i32.const 96) (i32.const 45)))))

    ;; One buffer serves as the value to put and as the result.
    (local.set $buffer (call $alloc (i32.const 8)))
    (i64.store (local.get $buffer) (i64.add (local.get $count) (local.get $delta)))
    (call $host_put (i32.const 16) (i32.const 5) (local.get $buffer) (i32.const 8))
    (call $pack (local.get $buffer) (i32.const 8)))

  (func (export "increment") (param $args_ptr i32) (param $args_len i32) (result i64)
    (call $reset_heap (local.get $args_ptr) (local.get $args_len))
    (call $add_to_count (i64.const 1)))

  (func (export "add") (param $args_ptr i32) (param $args_len i32) (result i64)
    (call $reset_heap (local.get $args_ptr) (local.get $args_len))
    (if (i32.ne (local.get $args_len) (i32.const 8))
      (then (return (call $fail (i64.const -3) (i32.const 32) (i32.const 56)))))
    (call $add_to_count (i64.load (local.get $args_ptr))))

  (func (export "get") (param $args_ptr i32) (param $args_len i32) (result i64)
    (local $count i64)
    (local $readable i32)
    (local $buffer i32)
    (call $reset_heap (local.get $args_ptr) (local.get $args_len))
    (call $load_count)
    (local.set $readable)
    (local.set $count)
    (if (i32.eqz (local.get $readable))
      (then (return (call $fail (i64.const -5) (i32.const 96) (i32.const 45)))))
    (local.set $buffer (call $alloc (i32.const 8)))
    (i64.store (local.get $buffer) (local.get $count))
    (call $pack (local.get $buffer) (i32.const 8)))
)
